package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/mnpool/mnpool/atomicfile"
	"github.com/mnpool/mnpool/pool/dsn"
)

// warnSecretFiles prints, once per command, a warning for each file
// holding a database password that group or others can read: the DSN
// file (when the DSN came from one) and any password file. src is where
// dsn.Resolve found source.
func (g *globals) warnSecretFiles(source, src string) {
	if g.warned {
		return
	}
	g.warned = true
	d, err := dsn.Parse(source)
	if err != nil {
		return // Open reports it
	}
	file := src
	if src == "--db" || src == dsn.Env {
		file = ""
	}
	for _, w := range d.SecretFileWarnings(file) {
		fmt.Fprintf(g.io.Err, "mnpool: warning: %s\n", w)
	}
}

// minTokenLen is the shortest --http-token-file token accepted.
const minTokenLen = 16

// readTokenFile reads the bearer token of --http-token-file: the first
// line of a regular file that only its owner may read. "" reads nothing.
// A bad file is a bad command line (exit 2).
func readTokenFile(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := atomicfile.ReadFile(path)
	if err != nil {
		return "", usagef("--http-token-file: %v", err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return "", usagef("--http-token-file %s is readable by group or others (mode %04o); run: chmod 600 %s", path, st.Mode().Perm(), path)
	}
	tok, _, _ := strings.Cut(string(b), "\n")
	tok = strings.TrimSpace(tok)
	if len(tok) < minTokenLen || strings.ContainsAny(tok, " \t") {
		return "", usagef("--http-token-file %s: want one line of at least %d characters without blanks (e.g. openssl rand -hex 32)", path, minTokenLen)
	}
	return tok, nil
}
