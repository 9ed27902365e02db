package testgalera

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Environment variables read by Open and the fault methods.
const (
	// EnvDSNs holds the comma-separated node DSNs printed by
	// `scripts/galera.sh up`, each `mysql:USER:PASS@tcp(HOST:PORT)/DB`.
	EnvDSNs = "MNPOOL_TEST_DSNS"
	// EnvRequire, when "1" (or another true value of strconv.ParseBool),
	// turns the skip for a missing EnvDSNs into a test failure (CI).
	EnvRequire = "MNPOOL_REQUIRE_GALERA"
	// EnvDir is the cluster's state directory (scripts/galera.sh default:
	// ${TMPDIR:-/tmp}/mnpool-galera); faults.lock lives there.
	EnvDir = "MNPOOL_GALERA_DIR"
	// EnvScript overrides where the cluster script is found.
	EnvScript = "MNPOOL_GALERA_SCRIPT"
)

// dialTimeout bounds connecting to a node that is down or paused.
const dialTimeout = 5 * time.Second

// DSNScheme prefixes every DSN in mnpool's format.
const DSNScheme = "mysql:"

// Errors returned by the configuration helpers; match them with errors.Is.
var (
	// ErrNotConfigured: EnvDSNs is unset or empty.
	ErrNotConfigured = errors.New("testgalera: no Galera cluster configured")
	// ErrBadDSN: a DSN in EnvDSNs is not `mysql:USER:PASS@tcp(HOST:PORT)/DB`.
	ErrBadDSN = errors.New("testgalera: bad DSN")
)

// node is one Galera node as given in EnvDSNs.
type node struct {
	cfg *mysql.Config // parsed driver configuration; DBName is the base database
}

// parseDSN parses one DSN in mnpool's format.
func parseDSN(s string) (node, error) {
	rest, ok := strings.CutPrefix(s, DSNScheme)
	if !ok {
		return node{}, fmt.Errorf("%w %q: must start with %q", ErrBadDSN, s, DSNScheme)
	}
	cfg, err := mysql.ParseDSN(rest)
	if err != nil {
		return node{}, fmt.Errorf("%w %q: %w", ErrBadDSN, s, err)
	}
	if cfg.Net != "tcp" {
		return node{}, fmt.Errorf("%w %q: network %q, only tcp(HOST:PORT) is allowed", ErrBadDSN, s, cfg.Net)
	}
	// The driver fills in a default port; mnpool's format names it.
	_, after, _ := strings.Cut(rest, "@tcp(")
	addr, _, _ := strings.Cut(after, ")")
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return node{}, fmt.Errorf("%w %q: address %q is not HOST:PORT", ErrBadDSN, s, addr)
	}
	if cfg.User == "" {
		return node{}, fmt.Errorf("%w %q: no user", ErrBadDSN, s)
	}
	return node{cfg: cfg}, nil
}

// parseDSNs parses the value of EnvDSNs.
func parseDSNs(v string) ([]node, error) {
	if strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("%w: %s is empty", ErrNotConfigured, EnvDSNs)
	}
	var nodes []node
	for i, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, fmt.Errorf("%w: %s entry %d is empty", ErrBadDSN, EnvDSNs, i+1)
		}
		n, err := parseDSN(s)
		if err != nil {
			return nil, fmt.Errorf("%s entry %d: %w", EnvDSNs, i+1, err)
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// formatDSN renders a node's DSN in mnpool's format with database db.
func (n node) formatDSN(db string) string {
	cfg := n.cfg.Clone()
	cfg.DBName = db
	return DSNScheme + cfg.FormatDSN()
}

// driverConfig returns a go-sql-driver configuration for database db with
// a dial timeout, so that a dead node fails fast.
func (n node) driverConfig(db string) *mysql.Config {
	cfg := n.cfg.Clone()
	cfg.DBName = db
	if cfg.Timeout == 0 {
		cfg.Timeout = dialTimeout
	}
	return cfg
}

// decision is what Open does when the environment has no cluster.
type decision int

const (
	useCluster decision = iota
	skipTest
	failTest
)

// settings is the environment Open runs in.
type settings struct {
	nodes   []node
	dir     string
	action  decision
	message string // why the test is skipped or failed
}

// loadSettings decides, from the environment, whether Open uses the cluster,
// skips the test or fails it.
func loadSettings(getenv func(string) string) settings {
	s := settings{dir: getenv(EnvDir)}
	if s.dir == "" {
		tmp := getenv("TMPDIR")
		if tmp == "" {
			tmp = "/tmp"
		}
		s.dir = filepath.Join(tmp, "mnpool-galera")
	}
	nodes, err := parseDSNs(getenv(EnvDSNs))
	switch {
	case errors.Is(err, ErrNotConfigured):
		s.message = fmt.Sprintf("testgalera: %s is not set; start the local cluster with "+
			"`scripts/galera.sh up && eval \"$(scripts/galera.sh env)\"`", EnvDSNs)
		s.action = skipTest
		if required(getenv(EnvRequire)) {
			s.action = failTest
			s.message += fmt.Sprintf(" (%s is set, so this is a failure, not a skip)", EnvRequire)
		}
	case err != nil:
		s.action = failTest
		s.message = err.Error()
	default:
		s.nodes = nodes
	}
	return s
}

func required(v string) bool {
	b, err := strconv.ParseBool(v)
	return err == nil && b
}
