package pool

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mnpool/mnpool/internal/atomicfile"
)

// Role names used in sync reports. A member is the MN iff the master
// record names it; every other member is an SN.
const (
	SyncRoleMN   = "MN"
	SyncRoleSN   = "SN"
	SyncRoleNone = "none" // not a member of the pool
)

// SyncInput is what a sync step is given: a fresh snapshot of the pool,
// read through a healthy database node, and what it means for this member.
type SyncInput struct {
	Self  string
	State *State
	// Role is SyncRoleMN, SyncRoleSN or SyncRoleNone.
	Role string
	// ServeDynamic is true only when Self is the MN of the snapshot and the
	// sync's DynamicGate (the MN guard) allows it; DynamicEpoch is then the
	// epoch (the fencing token) under which the range is served. A step
	// that renders DHCP renders the dynamic range only when ServeDynamic
	// is true.
	ServeDynamic bool
	DynamicEpoch int64
}

// SyncChange is what a step did.
type SyncChange struct {
	Changed bool
	// Detail is one line for a person ("created /etc/xCATMN").
	Detail string
}

// SyncStep is one part of bringing a member's local state in line with
// the database: role files, DHCP configuration, ... Steps must be
// idempotent; Sync runs them in order, every time.
type SyncStep interface {
	Name() string
	Sync(ctx context.Context, in *SyncInput) (SyncChange, error)
}

// SyncStepFunc adapts a function to a SyncStep. The dhcp package fills one
// in to re-render its configuration.
func SyncStepFunc(name string, fn func(ctx context.Context, in *SyncInput) (SyncChange, error)) SyncStep {
	return syncFunc{name: name, fn: fn}
}

type syncFunc struct {
	name string
	fn   func(ctx context.Context, in *SyncInput) (SyncChange, error)
}

func (f syncFunc) Name() string { return f.name }
func (f syncFunc) Sync(ctx context.Context, in *SyncInput) (SyncChange, error) {
	return f.fn(ctx, in)
}

// DynamicGate says whether this member may serve the DHCP dynamic range
// now, and under which epoch. *MNGuard implements it.
type DynamicGate interface {
	ServeDynamic() (epoch int64, ok bool)
}

// SyncOptions are the arguments of Sync.
type SyncOptions struct {
	// Steps run in order.
	Steps []SyncStep
	// Gate, when set, must agree before the dynamic range is served (the
	// MN guard of a long-running agent). Without a gate the fresh read of
	// the master record decides, which suits a one-shot sync.
	Gate DynamicGate
}

// SyncStepResult is the outcome of one step.
type SyncStepResult struct {
	Step    string `json:"step"`
	Changed bool   `json:"changed"`
	Detail  string `json:"detail,omitempty"`
	Error   string `json:"error,omitempty"`
	Err     error  `json:"-"`
}

// SyncReport is what Sync found and did.
type SyncReport struct {
	Self         string           `json:"self"`
	Role         string           `json:"role"`
	Master       Master           `json:"master"`
	ServeDynamic bool             `json:"serve_dynamic"`
	DynamicEpoch int64            `json:"dynamic_epoch,omitempty"`
	Steps        []SyncStepResult `json:"steps"`
}

// Failed returns the names of the steps that failed.
func (r SyncReport) Failed() []string {
	var out []string
	for _, st := range r.Steps {
		if st.Err != nil {
			out = append(out, st.Step)
		}
	}
	return out
}

// Sync brings the local state of member self in line with the database:
// it loads one snapshot of the pool, derives self's role and whether it
// may serve the dynamic range, and runs every step in order. A failing
// step does not stop the others (they are independent); the returned
// error joins the failures, each naming its step. When the snapshot
// cannot be read no step runs.
//
// The new MN runs Sync at the end of makemn; every member runs it when
// the pool changes (the agent) or by hand (`mnpool sync`).
func Sync(ctx context.Context, s *Store, self string, o SyncOptions) (SyncReport, error) {
	if err := ValidateName("member", self); err != nil {
		return SyncReport{}, err
	}
	seen := map[string]bool{}
	for i, st := range o.Steps {
		if st == nil || st.Name() == "" {
			return SyncReport{}, fmt.Errorf("%w: sync step %d has no name", ErrInvalid, i+1)
		}
		if seen[st.Name()] {
			return SyncReport{}, fmt.Errorf("%w: sync step %q given twice", ErrInvalid, st.Name())
		}
		seen[st.Name()] = true
	}
	st, err := s.LoadState(ctx)
	if err != nil {
		return SyncReport{}, fmt.Errorf("pool: sync of %s: reading the pool: %w", self, err)
	}
	in := &SyncInput{Self: self, State: st, Role: roleIn(st, self)}
	if in.Role == SyncRoleMN {
		in.ServeDynamic, in.DynamicEpoch = true, st.Master.Epoch
		if o.Gate != nil {
			e, ok := o.Gate.ServeDynamic()
			in.ServeDynamic = ok && e == st.Master.Epoch
			if !in.ServeDynamic {
				in.DynamicEpoch = 0
			}
		}
	}
	rep := SyncReport{Self: self, Role: in.Role, Master: st.Master, ServeDynamic: in.ServeDynamic, DynamicEpoch: in.DynamicEpoch}
	var errs []error
	for _, step := range o.Steps {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		ch, err := step.Sync(ctx, in)
		r := SyncStepResult{Step: step.Name(), Changed: ch.Changed, Detail: ch.Detail}
		if err != nil {
			r.Err, r.Error = err, err.Error()
			errs = append(errs, fmt.Errorf("pool: sync step %s: %w", step.Name(), err))
		}
		rep.Steps = append(rep.Steps, r)
	}
	return rep, errors.Join(errs...)
}

func roleIn(st *State, self string) string {
	if _, ok := st.Member(self); !ok {
		return SyncRoleNone
	}
	if st.IsMN(self) {
		return SyncRoleMN
	}
	return SyncRoleSN
}

// The xCAT role files, relative to the root directory.
const (
	syncRoleFileMN = "etc/xCATMN"
	syncRoleFileSN = "etc/xCATSN"
)

// RoleFilesStep keeps the xCAT role files under root ("/" in production)
// in step with the master record: root/etc/xCATMN only on the MN,
// root/etc/xCATSN only on the other members, neither on a host that is
// not a member.
//
// INTERIM: this writer stands in for pool.SyncRoleFiles of the membership
// code; once that is on main this step calls it and writeRoleFilesInterim
// goes away.
func RoleFilesStep(root string) SyncStep {
	return SyncStepFunc("role-files", func(ctx context.Context, in *SyncInput) (SyncChange, error) {
		return writeRoleFilesInterim(root, in.Role)
	})
}

func writeRoleFilesInterim(root, role string) (SyncChange, error) {
	if root == "" {
		return SyncChange{}, fmt.Errorf("%w: role files need a root directory (\"/\" in production)", ErrInvalid)
	}
	want := map[string]bool{syncRoleFileMN: role == SyncRoleMN, syncRoleFileSN: role == SyncRoleSN}
	var did []string
	for _, rel := range []string{syncRoleFileMN, syncRoleFileSN} {
		path := filepath.Join(root, rel)
		if want[rel] {
			if _, err := os.Stat(path); err == nil {
				continue
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return SyncChange{}, fmt.Errorf("role file %s: %w", path, err)
			}
			if _, err := atomicfile.Write(path, nil, atomicfile.Options{Mode: 0o644}); err != nil {
				return SyncChange{}, fmt.Errorf("role file %s: %w", path, err)
			}
			did = append(did, "created "+path)
			continue
		}
		switch err := os.Remove(path); {
		case err == nil:
			did = append(did, "removed "+path)
		case errors.Is(err, fs.ErrNotExist):
		default:
			return SyncChange{Changed: len(did) > 0, Detail: strings.Join(did, ", ")}, fmt.Errorf("role file %s: %w", path, err)
		}
	}
	if len(did) == 0 {
		return SyncChange{Detail: "role files already right for role " + role}, nil
	}
	return SyncChange{Changed: true, Detail: strings.Join(did, ", ")}, nil
}
