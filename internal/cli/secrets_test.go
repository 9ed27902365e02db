package cli_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// TestDSNPasswordNeverPrinted: whatever is wrong with --db, and when the
// server cannot be reached, no part of the password reaches the terminal.
func TestDSNPasswordNeverPrinted(t *testing.T) {
	addr := closedAddr(t)
	for _, pw := range []string{"Top:SecretPW", "Top,SecretPW", "Top@SecretPW", "Top#SecretPW"} {
		esc := strings.NewReplacer(":", "%3A", ",", "%2C", "@", "%40", "#", "%23").Replace(pw)
		for _, db := range []string{
			"mysql:root:" + pw + "tcp(127.0.0.1:1)/mnpool",
			"mysql:root:" + esc + "#tcp(127.0.0.1:1)/mnpool",
			"mysql:root:" + esc + "@tcp(" + addr + ")/mnpool",
			"mysql:root:" + esc + "@udp(" + addr + ")/mnpool",
		} {
			code, out, errs := mnpool(t, db, "--self", "mn1", "node", "list")
			require.NotEqual(t, 0, code, db)
			require.NotContains(t, out+errs, "SecretPW", db)
			require.NotContains(t, out+errs, esc, db)
		}
	}
}

// TestDSNFileWarning: a DSN file with a password that others can read
// draws one warning per command.
func TestDSNFileWarning(t *testing.T) {
	t.Setenv("MNPOOL_DB", "")
	file := filepath.Join(t.TempDir(), "db")
	require.NoError(t, os.WriteFile(file, []byte("mysql:root:SecretPW@tcp("+closedAddr(t)+")/mnpool\n"), 0o644))
	require.NoError(t, os.Chmod(file, 0o644))
	code, _, errs := mnpool(t, "", "--db-file", file, "--self", "mn1", "node", "list")
	require.Equal(t, 1, code)
	require.Equal(t, 1, strings.Count(errs, "warning: "+file+" holds the database password"), errs)
	require.NotContains(t, errs, "SecretPW")
	require.NoError(t, os.Chmod(file, 0o600))
	_, _, errs = mnpool(t, "", "--db-file", file, "--self", "mn1", "node", "list")
	require.NotContains(t, errs, "warning")
}
