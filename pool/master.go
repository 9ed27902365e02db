package pool

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/pool/siteschema"
)

func readMaster(ctx context.Context, tx *sqlx.Tx) (Master, error) {
	var m Master
	err := tx.QueryRowxContext(ctx, "SELECT member, epoch FROM master WHERE id = 1").Scan(&m.Member, &m.Epoch)
	return m, err
}

// Master returns the master record.
func (s *Store) Master(ctx context.Context) (Master, error) {
	var m Master
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		var err error
		m, err = readMaster(ctx, tx)
		return err
	})
	return m, err
}

// MasterAndMembers returns the master record and the members, read
// together in one transaction (so the members are those of that master
// record's moment).
func (s *Store) MasterAndMembers(ctx context.Context) (Master, []Member, error) {
	var cur Master
	var members []Member
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		var err error
		if cur, err = readMaster(ctx, tx); err != nil {
			return err
		}
		members, err = readMembers(ctx, tx)
		return err
	})
	return cur, members, err
}

// InitOptions are the arguments of Init.
type InitOptions struct {
	// MN is the first management node. It is created when it is not a
	// member yet.
	MN Member
	// Site values to set; siteschema.Defaults fills the keys
	// not given.
	Site map[string]string
}

// Init prepares a new pool: it applies the schema, writes the site
// defaults, adds the first MN as a member and makes it the MN of epoch 1.
// Running it again with the same MN changes nothing; with another MN it
// fails with ErrConflict (use makemn to change the MN).
func (s *Store) Init(ctx context.Context, o InitOptions) (Master, error) {
	if err := ValidateName("member", o.MN.Name); err != nil {
		return Master{}, err
	}
	site := siteschema.Defaults()
	for k, v := range o.Site {
		if err := siteschema.ValidateKey(k); err != nil {
			return Master{}, err
		}
		if err := siteschema.ValidateValue(k, v); err != nil {
			return Master{}, err
		}
		if k == siteschema.Master {
			return Master{}, fmt.Errorf("%w: site.master is set from the MN name", ErrInvalid)
		}
		site[k] = v
	}
	if err := s.Migrate(ctx); err != nil {
		return Master{}, err
	}
	var out Master
	err := s.Tx(ctx, func(tx *sqlx.Tx) error {
		cur, err := readMaster(ctx, tx)
		if err != nil {
			return err
		}
		if cur.Member != "" && cur.Member != o.MN.Name {
			return fmt.Errorf("%w: the pool is initialized already; its MN is %s (epoch %d); use makemn to change it", ErrConflict, cur.Member, cur.Epoch)
		}
		var exists int
		if err := tx.GetContext(ctx, &exists, "SELECT COUNT(*) FROM members WHERE name = ?", o.MN.Name); err != nil {
			return err
		}
		if exists == 0 {
			m := o.MN
			m.Addresses = cloneAddrs(m.Addresses)
			if len(m.Services) == 0 {
				m.Services = service.All()
			}
			if err := validateMember(ctx, tx, &m); err != nil {
				return err
			}
			if err := s.writeMember(ctx, tx, m, false); err != nil {
				return err
			}
		}
		ins := s.Dialect().InsertIgnore("site", []string{"name", "value"})
		for k, v := range site {
			q := ins
			if _, given := o.Site[k]; given {
				q = s.Dialect().Upsert("site", []string{"name"}, []string{"name", "value"})
			}
			if _, err := tx.ExecContext(ctx, q, k, v); err != nil {
				return err
			}
		}
		if cur.Member == "" {
			// Decision by a conditional update (docs/DESIGN.md, *conditional-update*): only one
			// init can take an empty master record.
			res, err := tx.ExecContext(ctx, "UPDATE master SET member = ?, epoch = epoch + 1 WHERE id = 1 AND member = '' AND epoch = ?", o.MN.Name, cur.Epoch)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != 1 {
				now, _ := readMaster(ctx, tx)
				return fmt.Errorf("%w: another init won; the MN is %s (epoch %d)", ErrConflict, now.Member, now.Epoch)
			}
			cur = Master{Member: o.MN.Name, Epoch: cur.Epoch + 1}
		}
		up := s.Dialect().Upsert("site", []string{"name"}, []string{"name", "value"})
		if _, err := tx.ExecContext(ctx, up, siteschema.Master, cur.Member); err != nil {
			return err
		}
		out = cur
		return s.Audit(ctx, tx, "pool.init", o.MN.Name, map[string]any{"epoch": cur.Epoch})
	})
	return out, err
}
