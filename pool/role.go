package pool

import (
	"context"

	"github.com/jmoiron/sqlx"
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

// MemberRole returns the role of member from the master record alone (it
// does not load the whole pool) and the master record's epoch, read
// together.
func (s *Store) MemberRole(ctx context.Context, member string) (Role, int64, error) {
	var role Role
	var epoch int64
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		m, err := readMaster(ctx, tx)
		if err != nil {
			return err
		}
		var n int
		if err := tx.GetContext(ctx, &n, "SELECT COUNT(*) FROM members WHERE name = ?", member); err != nil {
			return err
		}
		role, epoch = RoleNone, m.Epoch
		switch {
		case n == 0:
		case m.Member == member:
			role = RoleMN
		default:
			role = RoleSN
		}
		return nil
	})
	return role, epoch, err
}
