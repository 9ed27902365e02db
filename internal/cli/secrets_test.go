package cli_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/cli"
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

// TestMnpooldTokenFile: the /healthz token file must be private and
// hold a real token; anything else is a bad command line.
func TestMnpooldTokenFile(t *testing.T) {
	db := newPool(t)
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		content string
		mode    os.FileMode
		want    string
	}{
		"readable by others": {"0123456789abcdef0123", 0o644, "readable by group or others (mode 0644)"},
		"too short":          {"q7Zx9", 0o600, "at least 16 characters"},
		"missing":            {"", 0, "no such file"},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
			if tc.mode != 0 {
				require.NoError(t, os.WriteFile(p, []byte(tc.content+"\n"), tc.mode))
				require.NoError(t, os.Chmod(p, tc.mode))
			}
			var out, errb bytes.Buffer
			code := cli.Mnpoold(context.Background(), []string{"--db", db, "--self", "sn1", "--http-token-file", p},
				cli.IO{In: strings.NewReader(""), Out: &out, Err: &errb})
			require.Equal(t, 2, code, errb.String())
			require.Contains(t, errb.String(), tc.want)
			if tc.content != "" {
				require.NotContains(t, errb.String(), tc.content, "the token is not echoed")
			}
		})
	}
}
