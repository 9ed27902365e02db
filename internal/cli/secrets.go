package cli

import (
	"fmt"

	"github.com/mnpool/mnpool/pool"
)

// warnSecretFiles prints, once per command, a warning for each file
// holding a database password that group or others can read: the DSN
// file (when the DSN came from one) and any password file. src is where
// ResolveDSN found dsn.
func (g *globals) warnSecretFiles(dsn, src string) {
	if g.warned {
		return
	}
	g.warned = true
	d, err := pool.ParseDSN(dsn)
	if err != nil {
		return // Open reports it
	}
	file := src
	if src == "--db" || src == pool.EnvDSN {
		file = ""
	}
	for _, w := range d.SecretFileWarnings(file) {
		fmt.Fprintf(g.io.Err, "mnpool: warning: %s\n", w)
	}
}
