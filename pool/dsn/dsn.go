// Package dsn parses, resolves and masks the data source names of the
// pool database: "sqlite:PATH" for one host, or one
// "mysql:USER:PASS@tcp(HOST:PORT)/DB" per MariaDB Galera node (see DSN).
// pool.Open takes such a name; the CLI finds it with Resolve (--db,
// $MNPOOL_DB, DefaultFile) and prints it with Mask. Errors wrap
// pool.ErrInvalid.
package dsn

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/mnpool/mnpool/pool/internal/valid"
)

// Kind names a storage backend.
type Kind string

// Storage backends.
const (
	// SQLite is the embedded default: one file, one host.
	SQLite Kind = "sqlite"
	// MySQL is MariaDB or MySQL; Health reports "galera" when the
	// server runs wsrep.
	MySQL Kind = "mysql"
)

// DefaultFile is where the DSN is read from when neither --db nor
// MNPOOL_DB is set.
const DefaultFile = "/etc/mnpool/db"

// Env is the environment variable that holds the DSN.
const Env = "MNPOOL_DB"

// EnvPasswordFile names a file holding the MySQL password, for a DSN
// that gives none (see DSN).
const EnvPasswordFile = "MNPOOL_DB_PASSWORD_FILE"

// DSN is a parsed data source name.
//
// Forms a person types:
//
//	sqlite:/var/lib/mnpool/pool.db
//	mysql:USER:PASS@tcp(HOST:PORT)/DB
//	mysql:USER:PASS@tcp(HOST1:PORT)/DB,mysql:USER:PASS@tcp(HOST2:PORT)/DB
//	mysql:USER@tcp(HOST:PORT)/DB?passfile=/etc/mnpool/db.pass
//
// With several MySQL DSNs (one per Galera node) the first is preferred (it
// should name the local node); the others are used when it is unhealthy.
// A later element may omit "mysql:" and the credentials; it then inherits
// them from the first: mysql:u:p@tcp(a:3306)/pool,tcp(b:3306),tcp(c:3306).
//
// USER and PASS are URL-escaped: write %25 for %, %2C for a comma, and
// any other byte as %XX if you like (%3A for :, %40 for @, %23 for #,
// %2F for /). ":", "@", "#" and "/" also work unescaped in PASS (the
// credentials end at the last "@" before the address, the user at the
// first ":"); a comma must be escaped, as it separates the elements.
// Instead of PASS, the password may come from a file: the passfile=PATH
// parameter, or the file named by $MNPOOL_DB_PASSWORD_FILE when the DSN
// gives no password. The file's first line is the password, as is (no
// escaping).
//
// Error messages and String never show a password.
type DSN struct {
	Kind   Kind
	Path   string          // SQLite file
	MySQL  []*mysql.Config // one per Galera node, preferred first
	source string
	// passFiles are the password files read (passfile=, or
	// $MNPOOL_DB_PASSWORD_FILE).
	passFiles []string
}

// String returns the DSN with passwords masked, for messages and logs.
func (d DSN) String() string {
	if d.Kind == SQLite {
		return "sqlite:" + d.Path
	}
	parts := make([]string, len(d.MySQL))
	for i, c := range d.MySQL {
		parts[i] = fmt.Sprintf("mysql:%s:***@%s(%s)/%s", url.PathEscape(c.User), c.Net, c.Addr, c.DBName)
	}
	return strings.Join(parts, ",")
}

// Parse parses the forms described on DSN. Errors wrap valid.ErrInvalid and
// name the element at fault; the password is never repeated in them.
func Parse(s string) (DSN, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return DSN{}, fmt.Errorf("%w: empty database DSN (want sqlite:PATH or mysql:USER:PASS@tcp(HOST:PORT)/DB)", valid.ErrInvalid)
	case strings.HasPrefix(s, "sqlite:"):
		p := strings.TrimPrefix(s, "sqlite:")
		p = strings.TrimPrefix(p, "//")
		if p == "" {
			return DSN{}, fmt.Errorf("%w: sqlite DSN %q has no path (want sqlite:PATH)", valid.ErrInvalid, s)
		}
		if strings.ContainsAny(p, "?\x00") {
			return DSN{}, fmt.Errorf("%w: sqlite path %q may not contain '?' or NUL", valid.ErrInvalid, p)
		}
		return DSN{Kind: SQLite, Path: p, source: s}, nil
	case strings.HasPrefix(s, "mysql:"):
		var cfgs []*mysql.Config
		var passFiles []string
		for i, el := range splitDSNList(s) {
			el = strings.TrimSpace(el)
			var cfg *mysql.Config
			var err error
			switch {
			case strings.HasPrefix(el, "mysql:"):
				var pf string
				cfg, pf, err = parseMySQLElement(strings.TrimPrefix(el, "mysql:"))
				if pf != "" {
					passFiles = append(passFiles, pf)
				}
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
				return DSN{}, fmt.Errorf("%w: element %d of the mysql DSN list (%s): %v", valid.ErrInvalid, i+1, maskElement(el), err)
			}
			if cfg.DBName == "" {
				return DSN{}, fmt.Errorf("%w: element %d of the mysql DSN list (%s) names no database (want .../DB)", valid.ErrInvalid, i+1, maskElement(el))
			}
			cfgs = append(cfgs, cfg)
		}
		return DSN{Kind: MySQL, MySQL: cfgs, source: s, passFiles: passFiles}, nil
	default:
		return DSN{}, fmt.Errorf("%w: database DSN %s has an unknown scheme (want sqlite:PATH or mysql:USER:PASS@tcp(HOST:PORT)/DB)", valid.ErrInvalid, maskElement(s))
	}
}

// parseMySQLElement parses USER[:PASS]@NET(ADDR)/DB[?PARAMS] and returns
// the password file it read, if any. Errors never contain the
// credentials.
func parseMySQLElement(body string) (cfg *mysql.Config, passfile string, err error) {
	at := credentialsEnd(body)
	if at < 0 {
		return nil, "", errors.New("no '@tcp(' or '@unix(' after the credentials (want USER:PASS@tcp(HOST:PORT)/DB)")
	}
	user, pass, hasPass := strings.Cut(body[:at], ":")
	user, err1 := url.PathUnescape(user)
	pass, err2 := url.PathUnescape(pass)
	if err1 != nil || err2 != nil {
		return nil, "", errors.New("bad %-escape in the user or password (write %25 for a literal %)")
	}
	rest, passfile, err := cutPassfile(body[at+1:])
	if err != nil {
		return nil, "", err
	}
	if cfg, err = mysql.ParseDSN("@" + rest); err != nil {
		return nil, "", err
	}
	cfg.User, cfg.Passwd = user, pass
	if passfile == "" && !hasPass {
		passfile = os.Getenv(EnvPasswordFile)
	}
	if passfile != "" {
		if hasPass {
			return nil, "", errors.New("both a password and passfile= given; give one")
		}
		if cfg.Passwd, err = readPassFile(passfile); err != nil {
			return nil, "", err
		}
	}
	return cfg, passfile, nil
}

// HasPassword reports whether the DSN string itself carries a password
// (not one read from a password file).
func (d DSN) HasPassword() bool {
	return d.Kind == MySQL && len(d.passFiles) == 0 && len(d.secrets()) > 0
}

// SecretFileWarnings returns one warning for each file holding a database
// secret that group or others may read: dsnFile (where the DSN was read
// from; "" for none) when the DSN carries a password, and every password
// file the DSN used. The CLI prints them on every command.
func (d DSN) SecretFileWarnings(dsnFile string) []string {
	var files []string
	if dsnFile != "" && d.HasPassword() {
		files = append(files, dsnFile)
	}
	files = append(files, d.passFiles...)
	var out []string
	seen := map[string]bool{}
	for _, f := range files {
		if seen[f] {
			continue
		}
		seen[f] = true
		st, err := os.Stat(f)
		if err != nil || st.Mode().Perm()&0o077 == 0 {
			continue
		}
		out = append(out, fmt.Sprintf("%s holds the database password and is readable by group or others (mode %04o); run: chmod 600 %s", f, st.Mode().Perm(), f))
	}
	return out
}

// cutPassfile takes the passfile=PATH parameter (PATH unescaped: slashes
// need no %2F) out of ADDR/DB?PARAMS, which go to the driver.
func cutPassfile(rest string) (string, string, error) {
	base, query, ok := strings.Cut(rest, "?")
	if !ok {
		return rest, "", nil
	}
	var keep []string
	passfile := ""
	for _, kv := range strings.Split(query, "&") {
		v, isPF := strings.CutPrefix(kv, "passfile=")
		if !isPF {
			keep = append(keep, kv)
			continue
		}
		p, err := url.QueryUnescape(v)
		if err != nil || p == "" {
			return "", "", errors.New("passfile= wants a file name")
		}
		passfile = p
	}
	if len(keep) == 0 {
		return base, passfile, nil
	}
	return base + "?" + strings.Join(keep, "&"), passfile, nil
}

// credentialsEnd is the index of the "@" that ends the credentials: the
// last one followed by a network (tcp(, tcp4(, tcp6(, unix() or by "/";
// -1 when there is none. Nothing after another "@" is trusted not to be
// part of a password.
func credentialsEnd(body string) int {
	best := -1
	for _, net := range []string{"@tcp(", "@tcp4(", "@tcp6(", "@unix(", "@/"} {
		if i := strings.LastIndex(body, net); i > best {
			best = i
		}
	}
	return best
}

// readPassFile reads the password from the first line of path.
func readPassFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", fmt.Errorf("password file %s is empty", path)
	}
	return line, nil
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

// maskElement quotes a DSN element for an error message with everything
// after the user hidden: the password, and, when there is no "@" to tell
// where the credentials end, all the rest too.
func maskElement(el string) string {
	scheme, body, ok := strings.Cut(el, ":")
	if !ok {
		return fmt.Sprintf("%q", truncate(el, 40))
	}
	if strings.HasPrefix(body, "tcp(") || strings.HasPrefix(body, "unix(") || strings.HasPrefix(body, "//") {
		return fmt.Sprintf("%q", truncate(el, 40))
	}
	at := credentialsEnd(body)
	user, _, hasPass := strings.Cut(body, ":")
	switch {
	case at < 0 && hasPass:
		return fmt.Sprintf("%q", scheme+":"+truncate(user, 40)+":***")
	case at < 0:
		return fmt.Sprintf("%q", scheme+":***")
	}
	user, _, hasPass = strings.Cut(body[:at], ":")
	if hasPass {
		user += ":***"
	}
	return fmt.Sprintf("%q", scheme+":"+user+body[at:])
}

// secrets are the strings Redact hides: each password as given and as
// it may appear escaped.
func (d DSN) secrets() []string {
	var out []string
	for _, c := range d.MySQL {
		if c.Passwd != "" {
			out = append(out, c.Passwd, url.PathEscape(c.Passwd), url.QueryEscape(c.Passwd))
		}
	}
	return out
}

// Redact returns err with every password of d replaced by "***" in its
// message. errors.Is and errors.As still see the original chain.
func (d DSN) Redact(err error) error {
	return redact(err, d.secrets())
}

func redact(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	for _, s := range secrets {
		if s != "" {
			clean = strings.ReplaceAll(clean, s, "***")
		}
	}
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

// redactedError is an error whose message had a password removed.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Resolve picks the DSN the way every mnpool command does: the flag
// value if set, else $MNPOOL_DB, else the first non-comment line of file
// (DefaultFile when file is ""). It returns the source it used, for
// error messages.
func Resolve(flag, file string) (dsn, source string, err error) {
	if strings.TrimSpace(flag) != "" {
		return flag, "--db", nil
	}
	if v := os.Getenv(Env); strings.TrimSpace(v) != "" {
		return v, Env, nil
	}
	if file == "" {
		file = DefaultFile
	}
	b, err := os.ReadFile(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", "", fmt.Errorf("%w: no database given: use --db, set %s, or write the DSN into %s", valid.ErrInvalid, Env, file)
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
	return "", "", fmt.Errorf("%w: DSN file %s is empty", valid.ErrInvalid, file)
}

// Mask returns dsn with passwords masked, for messages; an unparsable
// DSN comes back as "(bad DSN)".
func Mask(dsn string) string {
	d, err := Parse(dsn)
	if err != nil {
		return "(bad DSN)"
	}
	return d.String()
}

// truncate shortens s to n bytes, marking the cut with "...".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
