package pool

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/jmoiron/sqlx"

	"github.com/mnpool/mnpool/atomicfile"
)

// Role is a member's role, derived from the master record only: the member
// it names is the MN, every other member is an SN.
type Role string

// Roles.
const (
	RoleMN Role = "MN"
	RoleSN Role = "SN"
	// RoleNone: the host is not a member of the pool.
	RoleNone Role = "none"
)

// The xCAT role files, relative to the root directory. xCAT's tools test
// only whether they exist.
const (
	RoleFileMN = "etc/xCATMN"
	RoleFileSN = "etc/xCATSN"
)

// RoleOf returns the role of member in st.
func RoleOf(st *State, member string) Role {
	if _, ok := st.Member(member); !ok {
		return RoleNone
	}
	if st.IsMN(member) {
		return RoleMN
	}
	return RoleSN
}

// RoleFiles is what SyncRoleFiles found and did.
type RoleFiles struct {
	Role  Role  `json:"role"`
	Epoch int64 `json:"epoch"`
	// Changed is true when a file was created or removed.
	Changed bool `json:"changed"`
}

// SyncRoleFiles keeps the xCAT role files of member self under root ("/"
// in production) in step with the master record: root/etc/xCATMN exists
// only on the MN, root/etc/xCATSN only on the other members, and neither
// when self is not a member. Files are created atomically (empty, mode
// 0644) and left alone when already right.
func SyncRoleFiles(ctx context.Context, s *Store, self, root string) (RoleFiles, error) {
	if err := ValidateName("member", self); err != nil {
		return RoleFiles{}, err
	}
	var out RoleFiles
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		m, err := readMaster(ctx, tx)
		if err != nil {
			return err
		}
		var n int
		if err := tx.GetContext(ctx, &n, "SELECT COUNT(*) FROM members WHERE name = ?", self); err != nil {
			return err
		}
		out = RoleFiles{Role: RoleNone, Epoch: m.Epoch}
		switch {
		case n == 0:
		case m.Member == self:
			out.Role = RoleMN
		default:
			out.Role = RoleSN
		}
		return nil
	})
	if err != nil {
		return RoleFiles{}, err
	}
	out.Changed, err = WriteRoleFiles(root, out.Role)
	return out, err
}

// WriteRoleFiles makes the role files under root match role.
func WriteRoleFiles(root string, role Role) (changed bool, err error) {
	if root == "" {
		return false, fmt.Errorf("%w: role files need a root directory (\"/\" in production)", ErrInvalid)
	}
	want := map[string]bool{
		RoleFileMN: role == RoleMN,
		RoleFileSN: role == RoleSN,
	}
	for _, rel := range []string{RoleFileMN, RoleFileSN} {
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
