package locking

import (
	"context"
	"sort"
	"time"

	"github.com/jmoiron/sqlx"
)

// Info describes one lock for people (mnpool lock list).
type Info struct {
	Name string `json:"name"`
	// Held is false for a lock that was released; Token is then the
	// token of its last holding.
	Held    bool   `json:"held"`
	Member  string `json:"member,omitempty"`
	Session string `json:"session,omitempty"`
	Info    string `json:"info,omitempty"`
	Token   int64  `json:"token"`
	// Lease is the renewal counter; it moves while the holder is alive.
	Lease int64 `json:"lease"`
	TTL   int64 `json:"ttl_ms"`
	// Since is when the holding began by the holder's clock: for reading,
	// never for deciding anything.
	Since   time.Time `json:"since,omitzero"`
	Waiters int       `json:"waiters"`
}

// List returns every lock the database knows, held or not, and the
// number of sessions queued for each, sorted by name.
func (lk *Locker) List(ctx context.Context) ([]Info, error) {
	var rows []lockRow
	var counts []struct {
		Name string `db:"name"`
		N    int    `db:"n"`
	}
	err := lk.s.Read(ctx, func(tx *sqlx.Tx) error {
		rows, counts = rows[:0], counts[:0]
		if err := tx.SelectContext(ctx, &rows, `SELECT name, holder, member, info, token, lease, ttl_ms, since_us FROM locks`); err != nil {
			return err
		}
		return tx.SelectContext(ctx, &counts, `SELECT name, COUNT(*) AS n FROM lock_waiters GROUP BY name`)
	})
	if err != nil {
		return nil, err
	}
	byName := map[string]*Info{}
	for _, r := range rows {
		in := &Info{Name: r.Name, Held: r.Holder != "", Token: r.Token, Lease: r.Lease}
		if in.Held {
			in.Member, in.Session, in.Info, in.TTL = r.Member, r.Holder, r.Info, r.TTLms
			if r.SinceUS > 0 {
				in.Since = time.UnixMicro(r.SinceUS).UTC()
			}
		}
		byName[r.Name] = in
	}
	for _, c := range counts {
		in := byName[c.Name]
		if in == nil {
			in = &Info{Name: c.Name}
			byName[c.Name] = in
		}
		in.Waiters = c.N
	}
	out := make([]Info, 0, len(byName))
	for _, in := range byName {
		out = append(out, *in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
