// Package rolefiles keeps xCAT's role files, etc/xCATMN on the MN and
// etc/xCATSN on the other members, in step with the pool's master record:
// Sync on its own, or Step as a poolsync step.
package rolefiles

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mnpool/mnpool/atomicfile"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/poolsync"
)

// The xCAT role files, relative to the root directory. xCAT's tools test
// only whether they exist.
const (
	MN = "etc/xCATMN"
	SN = "etc/xCATSN"
)

// Report is what Sync found and did.
type Report struct {
	Role  pool.Role `json:"role"`
	Epoch int64     `json:"epoch"`
	// Changed is true when a file was created or removed.
	Changed bool `json:"changed"`
}

// Sync keeps the xCAT role files of member self under root ("/"
// in production) in step with the master record: root/etc/xCATMN exists
// only on the MN, root/etc/xCATSN only on the other members, and neither
// when self is not a member. Files are created atomically (empty, mode
// 0644) and left alone when already right.
func Sync(ctx context.Context, s *pool.Store, self, root string) (Report, error) {
	if err := pool.ValidateName("member", self); err != nil {
		return Report{}, err
	}
	role, epoch, err := s.MemberRole(ctx, self)
	out := Report{Role: role, Epoch: epoch}
	if err != nil {
		return Report{}, err
	}
	out.Changed, err = Write(root, out.Role)
	return out, err
}

// Write makes the role files under root match role.
func Write(root string, role pool.Role) (changed bool, err error) {
	if root == "" {
		return false, fmt.Errorf("%w: role files need a root directory (\"/\" in production)", pool.ErrInvalid)
	}
	want := map[string]bool{
		MN: role == pool.RoleMN,
		SN: role == pool.RoleSN,
	}
	for _, rel := range []string{MN, SN} {
		path := filepath.Join(root, rel)
		if want[rel] {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return changed, fmt.Errorf("pool: role file: %w", err)
			}
			if _, err := os.Stat(path); err == nil {
				continue
			}
			c, err := atomicfile.Write(path, nil, atomicfile.Options{Mode: 0o644})
			if err != nil {
				return changed, fmt.Errorf("pool: role file %s: %w", path, err)
			}
			changed = changed || c
			continue
		}
		err := os.Remove(path)
		switch {
		case err == nil:
			changed = true
		case errors.Is(err, fs.ErrNotExist):
		default:
			return changed, fmt.Errorf("pool: role file %s: %w", path, err)
		}
	}
	return changed, nil
}

// Step keeps the xCAT role files under root ("/" in production)
// in step with the snapshot's master record (Write): root/etc/xCATMN
// only on the MN, root/etc/xCATSN only on the other members, neither on a
// host that is not a member.
func Step(root string) poolsync.Step {
	return poolsync.StepFunc("role-files", func(_ context.Context, in *poolsync.Input) (poolsync.Change, error) {
		changed, err := Write(root, in.Role)
		if err != nil {
			return poolsync.Change{Changed: changed}, err
		}
		what := "no role file (not a member)"
		switch in.Role {
		case pool.RoleMN:
			what = filepath.Join(root, MN)
		case pool.RoleSN:
			what = filepath.Join(root, SN)
		}
		if changed {
			return poolsync.Change{Changed: true, Detail: fmt.Sprintf("set for %s: %s", in.Role, what)}, nil
		}
		return poolsync.Change{Detail: fmt.Sprintf("already set for %s: %s", in.Role, what)}, nil
	})
}
