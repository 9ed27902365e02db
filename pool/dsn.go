package pool

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// Kind names a storage backend.
type Kind string

// Storage backends.
const (
	// KindSQLite is the embedded default: one file, one host.
	KindSQLite Kind = "sqlite"
	// KindMySQL is MariaDB or MySQL; Health reports "galera" when the
	// server runs wsrep.
	KindMySQL Kind = "mysql"
)

// DefaultDSNFile is where the DSN is read from when neither --db nor
// MNPOOL_DB is set.
const DefaultDSNFile = "/etc/mnpool/db"

// EnvDSN is the environment variable that holds the DSN.
const EnvDSN = "MNPOOL_DB"

// DSN is a parsed data source name.
//
// Forms a person types:
//
//	sqlite:/var/lib/mnpool/pool.db
//	mysql:USER:PASS@tcp(HOST:PORT)/DB
//	mysql:USER:PASS@tcp(HOST1:PORT)/DB,mysql:USER:PASS@tcp(HOST2:PORT)/DB
//
// With several MySQL DSNs (one per Galera node) the first is preferred (it
// should name the local node); the others are used when it is unhealthy.
// A later element may omit "mysql:" and the credentials; it then inherits
// them from the first: mysql:u:p@tcp(a:3306)/pool,tcp(b:3306),tcp(c:3306).
type DSN struct {
	Kind   Kind
	Path   string          // SQLite file
	MySQL  []*mysql.Config // one per Galera node, preferred first
	source string
}

// String returns the DSN with passwords masked, for messages and logs.
func (d DSN) String() string {
	if d.Kind == KindSQLite {
		return "sqlite:" + d.Path
	}
	parts := make([]string, len(d.MySQL))
	for i, c := range d.MySQL {
		parts[i] = fmt.Sprintf("mysql:%s:***@%s(%s)/%s", c.User, c.Net, c.Addr, c.DBName)
	}
	return strings.Join(parts, ",")
}

// ParseDSN parses the forms described on DSN. Errors wrap ErrInvalid and
// name the element at fault; the password is never repeated in them.
func ParseDSN(s string) (DSN, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return DSN{}, fmt.Errorf("%w: empty database DSN (want sqlite:PATH or mysql:USER:PASS@tcp(HOST:PORT)/DB)", ErrInvalid)
	case strings.HasPrefix(s, "sqlite:"):
		p := strings.TrimPrefix(s, "sqlite:")
		p = strings.TrimPrefix(p, "//")
		if p == "" {
			return DSN{}, fmt.Errorf("%w: sqlite DSN %q has no path (want sqlite:PATH)", ErrInvalid, s)
		}
		if strings.ContainsAny(p, "?\x00") {
			return DSN{}, fmt.Errorf("%w: sqlite path %q may not contain '?' or NUL", ErrInvalid, p)
		}
		return DSN{Kind: KindSQLite, Path: p, source: s}, nil
	case strings.HasPrefix(s, "mysql:"):
		var cfgs []*mysql.Config
		for i, el := range splitDSNList(s) {
			el = strings.TrimSpace(el)
			var cfg *mysql.Config
			var err error
			switch {
			case strings.HasPrefix(el, "mysql:"):
				cfg, err = mysql.ParseDSN(strings.TrimPrefix(el, "mysql:"))
			case i > 0 && strings.HasPrefix(el, "tcp("):
				cfg = cfgs[0].Clone()
				addr, rest, ok := strings.Cut(strings.TrimPrefix(el, "tcp("), ")")
				if !ok || (rest != "" && rest != "/"+cfg.DBName) {
					err = errors.New("want tcp(HOST:PORT)")
				}
				cfg.Addr = addr
			default:
				err = errors.New("want mysql:USER:PASS@tcp(HOST:PORT)/DB")
			}
			if err != nil {
				return DSN{}, fmt.Errorf("%w: element %d of the mysql DSN list (%s): %v", ErrInvalid, i+1, maskElement(el), err)
			}
			if cfg.DBName == "" {
				return DSN{}, fmt.Errorf("%w: element %d of the mysql DSN list (%s) names no database (want .../DB)", ErrInvalid, i+1, maskElement(el))
			}
			cfgs = append(cfgs, cfg)
		}
		return DSN{Kind: KindMySQL, MySQL: cfgs, source: s}, nil
	default:
		return DSN{}, fmt.Errorf("%w: database DSN %s has an unknown scheme (want sqlite:PATH or mysql:USER:PASS@tcp(HOST:PORT)/DB)", ErrInvalid, maskElement(s))
	}
}

// splitDSNList splits on commas that are not inside parentheses.
func splitDSNList(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func maskElement(el string) string {
	at := strings.LastIndex(el, "@")
	if at < 0 {
		if len(el) > 40 {
			return fmt.Sprintf("%q", el[:40]+"...")
		}
		return fmt.Sprintf("%q", el)
	}
	head := el[:at]
	if c := strings.LastIndex(head, ":"); c > 0 && c > strings.Index(head, ":") {
		head = head[:c] + ":***"
	}
	return fmt.Sprintf("%q", head+el[at:])
}

// ResolveDSN picks the DSN the way every mnpool command does: the flag
// value if set, else $MNPOOL_DB, else the first non-comment line of file
// (DefaultDSNFile when file is ""). It returns the source it used, for
// error messages.
func ResolveDSN(flag, file string) (dsn, source string, err error) {
	if strings.TrimSpace(flag) != "" {
		return flag, "--db", nil
	}
	if v := os.Getenv(EnvDSN); strings.TrimSpace(v) != "" {
		return v, EnvDSN, nil
	}
	if file == "" {
		file = DefaultDSNFile
	}
	b, err := os.ReadFile(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", "", fmt.Errorf("%w: no database given: use --db, set %s, or write the DSN into %s", ErrInvalid, EnvDSN, file)
		}
		return "", "", fmt.Errorf("pool: reading DSN file: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		return line, file, nil
	}
	return "", "", fmt.Errorf("%w: DSN file %s is empty", ErrInvalid, file)
}

// MaskDSN returns dsn with passwords masked, for messages; an unparsable
// DSN comes back as "(bad DSN)".
func MaskDSN(dsn string) string {
	d, err := ParseDSN(dsn)
	if err != nil {
		return "(bad DSN)"
	}
	return d.String()
}
