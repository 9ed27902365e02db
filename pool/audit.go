package pool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// AuditEntry is one record of the audit log: who, from which member, did
// what to what, and when (by the clock of the member that wrote it; use
// it to read the log, never to order or decide).
type AuditEntry struct {
	ID     string    `json:"id" db:"id"`
	At     time.Time `json:"at" db:"-"`
	AtUS   int64     `json:"-" db:"at_us"`
	Member string    `json:"member" db:"member"`
	Actor  string    `json:"actor" db:"actor"`
	Action string    `json:"action" db:"action"`
	Target string    `json:"target" db:"target"`
	Detail string    `json:"detail" db:"detail"`
}

// Audit writes an audit record inside tx and increments the change
// counter (see Watch). detail is marshalled to JSON unless it is a string.
// Packages that change the pool in their own transactions call it so every
// change is on record and followers re-render.
func (s *Store) Audit(ctx context.Context, tx *sqlx.Tx, action, target string, detail any) error {
	var d string
	switch v := detail.(type) {
	case nil:
	case string:
		d = v
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		d = string(b)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO audit (id, at_us, member, actor, action, target, detail) VALUES (?,?,?,?,?,?,?)`,
		hex.EncodeToString(id[:]), time.Now().UnixMicro(), s.o.self, s.o.actor, action, truncate(target, 4000), d)
	if err != nil {
		return err
	}
	return bumpVersion(ctx, tx)
}

// AuditLog returns the newest limit audit records, newest first.
func (s *Store) AuditLog(ctx context.Context, limit int) ([]AuditEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []AuditEntry
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		out = out[:0]
		return tx.SelectContext(ctx, &out, `SELECT id, at_us, member, actor, action, target, detail FROM audit ORDER BY at_us DESC, id LIMIT ?`, limit)
	})
	for i := range out {
		out[i].At = time.UnixMicro(out[i].AtUS).UTC()
	}
	return out, err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// CheckReport is what Store.Check found: the parts of an existing pool that
// break today's rules. Check changes nothing; the administrator decides.
type CheckReport struct {
	// Names that break the one-name-space rule.
	Names []NameProblem `json:"names"`
	// Site values that break the site schema.
	Site []siteschema.Problem `json:"site"`
	// CustomSiteKeys are stored keys the schema does not know (kept, not
	// used by mnpool).
	CustomSiteKeys []string `json:"custom_site_keys"`
	// Networks that break the network rules (CheckNetwork, overlaps).
	Networks []string `json:"networks"`
	// Addresses: nodes with a MAC but no IP, or an IP but no MAC.
	Addresses []AddressWarning `json:"addresses"`
}

// OK reports whether the check found nothing to fix (custom keys and
// address warnings are information, not faults).
func (r CheckReport) OK() bool {
	return len(r.Names) == 0 && len(r.Site) == 0 && len(r.Networks) == 0
}

// Check reads the pool and reports what breaks the rules the store
// enforces on new data: names, site values, networks. Nothing is changed.
func (s *Store) Check(ctx context.Context) (CheckReport, error) {
	st, err := s.LoadState(ctx)
	if err != nil {
		return CheckReport{}, err
	}
	return CheckState(st), nil
}

// CheckState is Check on a snapshot.
func CheckState(st *State) CheckReport {
	var r CheckReport
	members := make([]string, len(st.Members))
	for i, m := range st.Members {
		members[i] = m.Name
	}
	nodes := make([]string, len(st.Nodes))
	groups := map[string]bool{}
	for i, n := range st.Nodes {
		nodes[i] = n.Name
		for _, g := range n.Groups {
			groups[g] = true
		}
	}
	r.Names = nameProblems(members, nodes, groups)
	r.Site, r.CustomSiteKeys = siteschema.Check(st.Site)
	for i, n := range st.Networks {
		if err := CheckNetwork(n); err != nil {
			r.Networks = append(r.Networks, err.Error())
		}
		if err := checkAgainst(n, st.Networks[:i]); err != nil {
			r.Networks = append(r.Networks, err.Error())
		}
	}
	r.Addresses = AddressWarnings(st.Nodes)
	return r
}

// AddressWarning names a node that DHCP cannot serve as it is: a MAC but
// no IP (no reservation can be written), or an IP but no MAC (the node
// is only reachable once it has one).
type AddressWarning struct {
	Node    string `json:"node"`
	Problem string `json:"problem"`
}

// Address problems.
const (
	AddrMACNoIP = "has a MAC but no IP: DHCP gives it no reservation"
	AddrIPNoMAC = "has an IP but no MAC: DHCP cannot recognise it"
)

// AddressWarnings lists the nodes with a MAC but no IP and those with an
// IP but no MAC, in the order of nodes. makedhcp and status print them so
// a node is never skipped without a word.
func AddressWarnings(nodes []Node) []AddressWarning {
	var out []AddressWarning
	for _, n := range nodes {
		switch {
		case len(n.MACs) > 0 && !n.IP.IsValid():
			out = append(out, AddressWarning{Node: n.Name, Problem: AddrMACNoIP})
		case len(n.MACs) == 0 && n.IP.IsValid():
			out = append(out, AddressWarning{Node: n.Name, Problem: AddrIPNoMAC})
		}
	}
	return out
}
