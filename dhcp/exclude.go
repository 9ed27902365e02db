package dhcp

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/mnpool/mnpool/pool"
)

// Excluded returns the nodes whose host entries were removed with
// `makedhcp -d` (MakeOptions.Delete) and not brought back since. Every
// member leaves them out: makedhcp, makemn's sync and the agent.
func Excluded(ctx context.Context, s *pool.Store) (map[string]bool, error) {
	if err := ensureSchema(ctx, s); err != nil {
		return nil, err
	}
	var names []string
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		names = names[:0]
		return tx.SelectContext(ctx, &names, "SELECT node FROM dhcp_excluded")
	})
	if err != nil {
		return nil, fmt.Errorf("dhcp: reading the nodes removed with makedhcp -d: %w", err)
	}
	out := make(map[string]bool, len(names))
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

// exclusionChange is what a makedhcp run changes in dhcp_excluded.
type exclusionChange struct {
	add, remove []string // nodes to exclude / bring back
	purge       []string // rows of nodes no longer in the pool
}

func (c exclusionChange) empty() bool { return len(c.add)+len(c.remove)+len(c.purge) == 0 }

// writeExclusions applies c in batches, each with an audit record (which
// moves the change counter, so every member's agent renders again).
func writeExclusions(ctx context.Context, s *pool.Store, c exclusionChange) error {
	if err := ensureSchema(ctx, s); err != nil {
		return err
	}
	now := time.Now().UnixMicro()
	ins := s.Dialect().InsertIgnore("dhcp_excluded", []string{"node", "at_us", "member"})
	batch := max(s.BatchSize(), 1)
	do := func(names []string, action string, stmt func(tx *sqlx.Tx, n string) error) error {
		sort.Strings(names)
		for start := 0; start < len(names); start += batch {
			chunk := names[start:min(start+batch, len(names))]
			err := s.Tx(ctx, func(tx *sqlx.Tx) error {
				for _, n := range chunk {
					if err := stmt(tx, n); err != nil {
						return err
					}
				}
				return s.Audit(ctx, tx, action, rangeLabel(chunk), nil)
			})
			if err != nil {
				return fmt.Errorf("dhcp: %s: %w", action, err)
			}
		}
		return nil
	}
	del := func(tx *sqlx.Tx, n string) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM dhcp_excluded WHERE node = ?", n)
		return err
	}
	if err := do(c.add, "dhcp.exclude", func(tx *sqlx.Tx, n string) error {
		_, err := tx.ExecContext(ctx, ins, n, now, s.Self())
		return err
	}); err != nil {
		return err
	}
	if err := do(c.remove, "dhcp.include", del); err != nil {
		return err
	}
	return do(c.purge, "dhcp.exclude.purge", del)
}

func rangeLabel(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return fmt.Sprintf("%s..%s (%d nodes)", names[0], names[len(names)-1], len(names))
}

// excludedList returns the sorted names of a set.
func excludedList(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for n, on := range m {
		if on {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
