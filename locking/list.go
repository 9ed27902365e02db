package locking

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/mnpool/mnpool/pool"
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
	if err := ensureSchema(ctx, lk.s); err != nil {
		return nil, err
	}
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

// Held returns the locks among names that are held now (all held locks
// whose name starts with prefix when names is nil), read from s without
// a Locker. It is how a user of the locks shows who holds what (mnpool
// console list reads the console leases this way). The result is keyed by
// lock name and carries no waiter counts.
func Held(ctx context.Context, s *pool.Store, prefix string, names []string) (map[string]Info, error) {
	if err := ensureSchema(ctx, s); err != nil {
		return nil, err
	}
	var rows []lockRow
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		rows = rows[:0]
		if names == nil {
			return tx.SelectContext(ctx, &rows, selectHeld+` AND name LIKE ? ESCAPE '!'`, likePrefix(prefix))
		}
		for start := 0; start < len(names); start += s.BatchSize() {
			q, args, err := sqlx.In(selectHeld+` AND name IN (?)`, names[start:min(start+s.BatchSize(), len(names))])
			if err != nil {
				return err
			}
			var part []lockRow
			if err := tx.SelectContext(ctx, &part, q, args...); err != nil {
				return err
			}
			rows = append(rows, part...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]Info, len(rows))
	for _, r := range rows {
		if !strings.HasPrefix(r.Name, prefix) { // LIKE may ignore case
			continue
		}
		in := Info{Name: r.Name, Held: true, Member: r.Member, Session: r.Holder, Info: r.Info, Token: r.Token, Lease: r.Lease, TTL: r.TTLms}
		if r.SinceUS > 0 {
			in.Since = time.UnixMicro(r.SinceUS).UTC()
		}
		out[r.Name] = in
	}
	return out, nil
}

const selectHeld = `SELECT name, holder, member, info, token, lease, ttl_ms, since_us FROM locks WHERE holder <> ''`

// likePrefix is a LIKE pattern (escape character '!') for names that
// start with prefix.
func likePrefix(prefix string) string {
	r := strings.NewReplacer("!", "!!", "%", "!%", "_", "!_")
	return r.Replace(prefix) + "%"
}
