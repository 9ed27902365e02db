package pool

import (
	"context"
	"fmt"
	"sort"

	"github.com/jmoiron/sqlx"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// Site returns the site table.
func (s *Store) Site(ctx context.Context) (map[string]string, error) {
	var out map[string]string
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		var err error
		out, err = readSite(ctx, tx)
		return err
	})
	return out, err
}

func readSite(ctx context.Context, tx *sqlx.Tx) (map[string]string, error) {
	rows, err := tx.QueryContext(ctx, "SELECT name, value FROM site")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}

// SiteOptions tune SetSiteWith.
type SiteOptions struct {
	// Custom allows keys the schema (siteschema.Keys) does not know. Their values
	// are only checked to be one line of printable text.
	Custom bool
}

// SetSite sets site keys of the schema (siteschema.Keys); see SetSiteWith.
func (s *Store) SetSite(ctx context.Context, kv map[string]string) error {
	return s.SetSiteWith(ctx, kv, SiteOptions{})
}

// SetSiteWith sets site keys. Every key and value is checked against the
// schema before anything is written; the error names the key, the value
// and the rule. Keys the schema does not know need o.Custom. The master key
// is not settable here: it follows the master record (see makemn).
func (s *Store) SetSiteWith(ctx context.Context, kv map[string]string, o SiteOptions) error {
	keys := make([]string, 0, len(kv))
	for k, v := range kv {
		if err := siteschema.ValidateKey(k); err != nil {
			return err
		}
		if k == siteschema.Master {
			return fmt.Errorf("%w: site.master follows the master record; use makemn to change the MN", ErrInvalid)
		}
		if _, known := siteschema.Lookup(k); !known && !o.Custom {
			return siteschema.UnknownKey(k)
		}
		if err := siteschema.ValidateValue(k, v); err != nil {
			return err
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return s.Tx(ctx, func(tx *sqlx.Tx) error {
		before, err := readSite(ctx, tx)
		if err != nil {
			return err
		}
		q := s.Dialect().Upsert("site", []string{"name"}, []string{"name", "value"})
		detail := map[string]map[string]*string{"before": {}, "after": {}}
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, q, k, kv[k]); err != nil {
				return err
			}
			v := kv[k]
			detail["after"][k] = &v
			if old, ok := before[k]; ok {
				detail["before"][k] = &old
			} else {
				detail["before"][k] = nil
			}
		}
		return s.Audit(ctx, tx, "site.set", joinList(keys), detail)
	})
}

// UnsetSite removes site keys. All must exist, else nothing is removed
// (ErrNotFound names the missing ones). master cannot be removed.
func (s *Store) UnsetSite(ctx context.Context, keys []string) error {
	for _, k := range keys {
		if k == siteschema.Master {
			return fmt.Errorf("%w: site.master follows the master record and cannot be removed", ErrInvalid)
		}
	}
	sort.Strings(keys)
	return s.Tx(ctx, func(tx *sqlx.Tx) error {
		before, err := readSite(ctx, tx)
		if err != nil {
			return err
		}
		var missing []string
		for _, k := range keys {
			if _, ok := before[k]; !ok {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%w: site keys %s are not set", ErrNotFound, joinList(missing))
		}
		removed := map[string]string{}
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, "DELETE FROM site WHERE name = ?", k); err != nil {
				return err
			}
			removed[k] = before[k]
		}
		return s.Audit(ctx, tx, "site.unset", joinList(keys), map[string]any{"before": removed})
	})
}
