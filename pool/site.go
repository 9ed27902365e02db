package pool

import (
	"context"
	"fmt"
	"sort"

	"github.com/jmoiron/sqlx"
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

// SetSite sets site keys. The master key is not settable here: it follows
// the master record (see makemn). All keys are validated before anything is
// written.
func (s *Store) SetSite(ctx context.Context, kv map[string]string) error {
	keys := make([]string, 0, len(kv))
	for k, v := range kv {
		if err := ValidateSiteKey(k); err != nil {
			return err
		}
		if k == SiteMaster {
			return fmt.Errorf("%w: site.master follows the master record; use makemn to change the MN", ErrInvalid)
		}
		if err := ValidateSiteValue(k, v); err != nil {
			return err
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return s.Tx(ctx, func(tx *sqlx.Tx) error {
		q := s.Dialect().Upsert("site", []string{"name"}, []string{"name", "value"})
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, q, k, kv[k]); err != nil {
				return err
			}
		}
		return s.Audit(ctx, tx, "site.set", joinList(keys), kv)
	})
}
