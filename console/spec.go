package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/mnpool/mnpool/pool"
)

// Kind is how a node's console is reached.
type Kind string

// Console kinds.
const (
	// KindTCP: a terminal-server port (or a BMC's raw serial port):
	// connect to Address and exchange bytes.
	KindTCP Kind = "tcp"
	// KindCommand: run Argv under a pseudo-terminal and exchange bytes
	// with it, such as `ipmitool -I lanplus -H BMC -U USER -f PWFILE sol
	// activate`. Argv is executed directly, never through a shell.
	KindCommand Kind = "command"
)

// Limits of a command console's argv.
const (
	MaxArgs     = 64
	MaxArgLen   = 1024
	MaxArgvSize = 8192
	// NodePlaceholder in an address or argument is replaced by the node
	// name by Spec.Expand, so one template serves a noderange.
	NodePlaceholder = "{node}"
)

var (
	absProgRE  = regexp.MustCompile(`^/[A-Za-z0-9._+/-]+$`)
	bareProgRE = regexp.MustCompile(`^[A-Za-z0-9_+][A-Za-z0-9._+-]*$`)
)

// Spec is where a node's console is and who may serve it (a row of the
// consoles table).
type Spec struct {
	Node string `json:"node"`
	Kind Kind   `json:"kind"`
	// Address is HOST:PORT for KindTCP (HOST an IP address or a DNS
	// name), empty for KindCommand.
	Address string `json:"address,omitempty"`
	// Argv is the program and its arguments for KindCommand, empty for
	// KindTCP. The program is an absolute path, or a bare name looked up
	// in CommandPath. No shell is involved, so no value is interpreted.
	Argv []string `json:"argv,omitempty"`
	// Servers, when not empty, replaces the node's servicenode list as
	// the ordered list of members allowed to serve the console.
	Servers []string `json:"servers,omitempty"`
}

// Endpoint describes the console endpoint for people: "tcp HOST:PORT" or
// "command ARGV..." (arguments quoted when they contain spaces).
func (s Spec) Endpoint() string {
	switch s.Kind {
	case KindTCP:
		return "tcp " + s.Address
	case KindCommand:
		parts := make([]string, len(s.Argv))
		for i, a := range s.Argv {
			if a == "" || strings.ContainsAny(a, " \t\"'\\") {
				a = strconv.Quote(a)
			}
			parts[i] = a
		}
		return "command " + strings.Join(parts, " ")
	}
	return string(s.Kind)
}

// Expand returns a copy of s for node: Node set and every NodePlaceholder
// in Address and Argv replaced by the node name.
func (s Spec) Expand(node string) Spec {
	out := s
	out.Node = node
	out.Address = strings.ReplaceAll(s.Address, NodePlaceholder, node)
	out.Argv = make([]string, len(s.Argv))
	for i, a := range s.Argv {
		out.Argv[i] = strings.ReplaceAll(a, NodePlaceholder, node)
	}
	if len(out.Argv) == 0 {
		out.Argv = nil
	}
	out.Servers = slices.Clone(s.Servers)
	return out
}

// ParseKind checks a console kind.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(strings.ToLower(strings.TrimSpace(s))); k {
	case KindTCP, KindCommand:
		return k, nil
	}
	return "", fmt.Errorf("%w: console kind %q: want tcp or command", ErrInvalid, s)
}

// Validate checks a spec on its own (not against the pool).
func (s Spec) Validate() error {
	if err := pool.ValidateName("node", s.Node); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	switch s.Kind {
	case KindTCP:
		if len(s.Argv) > 0 {
			return fmt.Errorf("%w: console of %s: a tcp console takes an address, not a command", ErrInvalid, s.Node)
		}
		if err := ValidateTCPAddress(s.Address); err != nil {
			return fmt.Errorf("console of %s: %w", s.Node, err)
		}
	case KindCommand:
		if s.Address != "" {
			return fmt.Errorf("%w: console of %s: a command console takes argv, not an address", ErrInvalid, s.Node)
		}
		if err := ValidateArgv(s.Argv); err != nil {
			return fmt.Errorf("console of %s: %w", s.Node, err)
		}
	default:
		return fmt.Errorf("%w: console of %s: kind %q: want tcp or command", ErrInvalid, s.Node, s.Kind)
	}
	seen := map[string]bool{}
	for _, m := range s.Servers {
		if err := pool.ValidateName("member", m); err != nil {
			return fmt.Errorf("%w: console of %s: servers: %v", ErrInvalid, s.Node, err)
		}
		if seen[m] {
			return fmt.Errorf("%w: console of %s: servers list %q names %s twice", ErrInvalid, s.Node, strings.Join(s.Servers, ","), m)
		}
		seen[m] = true
	}
	return nil
}

// ValidateTCPAddress checks HOST:PORT: HOST an IP address or a DNS name,
// PORT 1 to 65535.
func ValidateTCPAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Errorf("%w: console address %q: want HOST:PORT, such as 10.0.0.5:2001 or ts1:7001", ErrInvalid, addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%w: console address %q: port %q must be 1-65535", ErrInvalid, addr, port)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if err := pool.ValidateDomain(host); err != nil {
		return fmt.Errorf("%w: console address %q: host %q is neither an IP address nor a DNS name", ErrInvalid, addr, host)
	}
	return nil
}

// ValidateArgv checks a command console's argv: 1 to MaxArgs values of
// printable UTF-8 (no control characters), each up to MaxArgLen bytes and
// MaxArgvSize in all; the program an absolute path or a bare name (no
// relative path).
func ValidateArgv(argv []string) error {
	if len(argv) == 0 {
		return fmt.Errorf("%w: console command is empty: give the program and its arguments", ErrInvalid)
	}
	if len(argv) > MaxArgs {
		return fmt.Errorf("%w: console command has %d arguments, at most %d allowed", ErrInvalid, len(argv), MaxArgs)
	}
	prog := argv[0]
	if !absProgRE.MatchString(prog) && !bareProgRE.MatchString(prog) || strings.Contains(prog, "/../") || strings.HasSuffix(prog, "/..") {
		return fmt.Errorf("%w: console program %q: want an absolute path or a bare program name (letters, digits, '.', '_', '+', '-', '/')", ErrInvalid, prog)
	}
	total := 0
	for i, a := range argv {
		total += len(a)
		if len(a) > MaxArgLen {
			return fmt.Errorf("%w: console command argument %d is %d bytes, at most %d allowed", ErrInvalid, i, len(a), MaxArgLen)
		}
		if !utf8.ValidString(a) {
			return fmt.Errorf("%w: console command argument %d %q is not valid UTF-8", ErrInvalid, i, a)
		}
		for _, r := range a {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				return fmt.Errorf("%w: console command argument %d %q contains a control character", ErrInvalid, i, a)
			}
		}
	}
	if total > MaxArgvSize {
		return fmt.Errorf("%w: console command is %d bytes, at most %d allowed", ErrInvalid, total, MaxArgvSize)
	}
	return nil
}

// specRow is a row of the consoles table.
type specRow struct {
	Node    string `db:"node"`
	Kind    string `db:"kind"`
	Address string `db:"address"`
	Argv    string `db:"argv"`
	Servers string `db:"servers"`
}

func (r specRow) spec() (Spec, error) {
	s := Spec{Node: r.Node, Kind: Kind(r.Kind), Address: r.Address}
	if r.Argv != "" && r.Argv != "[]" {
		if err := json.Unmarshal([]byte(r.Argv), &s.Argv); err != nil {
			return Spec{}, fmt.Errorf("%w: console of %s: stored argv %q is not a JSON list: %v", ErrInvalid, r.Node, r.Argv, err)
		}
	}
	if r.Servers != "" {
		s.Servers = strings.Split(r.Servers, ",")
	}
	return s, nil
}

func rowOf(s Spec) (specRow, error) {
	argv := []string{}
	if len(s.Argv) > 0 {
		argv = s.Argv
	}
	b, err := json.Marshal(argv)
	if err != nil {
		return specRow{}, err
	}
	return specRow{Node: s.Node, Kind: string(s.Kind), Address: s.Address, Argv: string(b), Servers: strings.Join(s.Servers, ",")}, nil
}

// SetSpecs creates or replaces the console of each spec. Every spec is
// validated first, nodes must exist and servers must be members; on any
// error nothing is written. Changes are audited ("console.set").
func SetSpecs(ctx context.Context, s *pool.Store, specs []Spec) error {
	if len(specs) == 0 {
		return fmt.Errorf("%w: no console to set", ErrInvalid)
	}
	seen := map[string]bool{}
	rows := make([]specRow, 0, len(specs))
	for _, sp := range specs {
		if err := sp.Validate(); err != nil {
			return err
		}
		if seen[sp.Node] {
			return fmt.Errorf("%w: node %s given twice", ErrInvalid, sp.Node)
		}
		seen[sp.Node] = true
		r, err := rowOf(sp)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	st, err := s.LoadState(ctx)
	if err != nil {
		return err
	}
	nodes := map[string]bool{}
	for _, n := range st.Nodes {
		nodes[n.Name] = true
	}
	var unknown []string
	for _, sp := range specs {
		if !nodes[sp.Node] {
			unknown = append(unknown, sp.Node)
		}
		for _, m := range sp.Servers {
			if _, ok := st.Member(m); !ok {
				return fmt.Errorf("%w: console of %s: server %q is not a pool member", ErrInvalid, sp.Node, m)
			}
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("%w: not nodes of the pool: %s; nothing was set", ErrNotFound, strings.Join(unknown, ","))
	}
	if err := ensureSchema(ctx, s); err != nil {
		return err
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Node < rows[j].Node })
	q := s.Dialect().Upsert("consoles", []string{"node"}, []string{"node", "kind", "address", "argv", "servers"})
	for start := 0; start < len(rows); start += s.BatchSize() {
		batch := rows[start:min(start+s.BatchSize(), len(rows))]
		err := s.Tx(ctx, func(tx *sqlx.Tx) error {
			kinds := map[string]int{}
			names := make([]string, len(batch))
			for i, r := range batch {
				if _, err := tx.ExecContext(ctx, q, r.Node, r.Kind, r.Address, r.Argv, r.Servers); err != nil {
					return err
				}
				kinds[r.Kind]++
				names[i] = r.Node
			}
			return s.Audit(ctx, tx, "console.set", strings.Join(names, ","), map[string]any{"nodes": len(batch), "kinds": kinds})
		})
		if err != nil {
			return fmt.Errorf("console: setting consoles (%d of %d written before): %w", start, len(rows), err)
		}
	}
	return nil
}

// Specs returns every configured console, sorted by node.
func Specs(ctx context.Context, s *pool.Store) ([]Spec, error) {
	if err := ensureSchema(ctx, s); err != nil {
		return nil, err
	}
	var rows []specRow
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		rows = rows[:0]
		return tx.SelectContext(ctx, &rows, "SELECT node, kind, address, argv, servers FROM consoles ORDER BY node")
	})
	if err != nil {
		return nil, err
	}
	out := make([]Spec, 0, len(rows))
	for _, r := range rows {
		sp, err := r.spec()
		if err != nil {
			return nil, err
		}
		out = append(out, sp)
	}
	return out, nil
}

// SpecOf returns the console of node; ErrNotFound when it has none.
func SpecOf(ctx context.Context, s *pool.Store, node string) (Spec, error) {
	if err := ensureSchema(ctx, s); err != nil {
		return Spec{}, err
	}
	var rows []specRow
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		rows = rows[:0]
		return tx.SelectContext(ctx, &rows, "SELECT node, kind, address, argv, servers FROM consoles WHERE node = ?", node)
	})
	if err != nil {
		return Spec{}, err
	}
	if len(rows) == 0 {
		return Spec{}, fmt.Errorf("%w: node %s has no console configured (mnpool console set %s --tcp HOST:PORT | --command -- ARGV...)", ErrNotFound, node, node)
	}
	return rows[0].spec()
}

// RemoveSpecs removes the consoles of nodes. Nodes without a console are
// an error naming them all, and then nothing is removed. Audited
// ("console.remove"). Lease rows stay, so lease tokens keep growing if
// the console is configured again.
func RemoveSpecs(ctx context.Context, s *pool.Store, nodes []string) error {
	have, err := Specs(ctx, s)
	if err != nil {
		return err
	}
	exists := map[string]bool{}
	for _, sp := range have {
		exists[sp.Node] = true
	}
	var missing []string
	for _, n := range nodes {
		if !exists[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: no console configured for %s; nothing was removed", ErrNotFound, strings.Join(missing, ","))
	}
	for start := 0; start < len(nodes); start += s.BatchSize() {
		batch := nodes[start:min(start+s.BatchSize(), len(nodes))]
		err := s.Tx(ctx, func(tx *sqlx.Tx) error {
			q, args, err := sqlx.In("DELETE FROM consoles WHERE node IN (?)", batch)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return err
			}
			return s.Audit(ctx, tx, "console.remove", strings.Join(batch, ","), map[string]any{"nodes": len(batch)})
		})
		if err != nil {
			return err
		}
	}
	return nil
}
