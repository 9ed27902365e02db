package cli_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/cli"
)

func makedhcpCmd(db string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cli.Makedhcp(context.Background(), append([]string{"--db", db, "--self", "mn1"}, args...), cli.IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

// TestOutputFlags: an empty, directory or symlink --out/--output/--file
// is a bad command line (exit 2) naming the flag, and nothing is written
// (before the fix, `makedhcp -n --out ”` wrote /etc/dhcp/dhcpd.conf).
func TestOutputFlags(t *testing.T) {
	db := newPool(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "shadow")
	require.NoError(t, os.WriteFile(secret, []byte("root:$6$secrethash:19000::::::\n"), 0o600))
	evil := filepath.Join(dir, "evil.conf")
	require.NoError(t, os.Symlink(secret, evil))

	commands := []struct {
		name string
		flag string
		run  func(path string) (int, string, string)
	}{
		{"makedhcp", "out", func(p string) (int, string, string) { return makedhcpCmd(db, "-n", "-a", "--no-check", "--out", p) }},
		{"dns resolvconf", "output", func(p string) (int, string, string) {
			return mnpool(t, db, "--self", "mn1", "dns", "resolvconf", "--member", "sn1", "--output", p)
		}},
		{"ntp chrony", "output", func(p string) (int, string, string) {
			return mnpool(t, db, "--self", "mn1", "ntp", "chrony", "--member", "sn1", "--output", p)
		}},
		{"gateway keepalived", "output", func(p string) (int, string, string) {
			return mnpool(t, db, "--self", "mn1", "gateway", "keepalived", "--member", "sn1", "--output", p)
		}},
		{"console conserver", "file", func(p string) (int, string, string) {
			return mnpool(t, db, "--self", "mn1", "console", "conserver", "--member", "sn1", "--file", p)
		}},
	}
	for _, c := range commands {
		for _, tc := range []struct {
			name, path, want string
		}{
			{"empty", "", "--" + c.flag + " is empty"},
			{"directory", dir, "--" + c.flag + " " + dir + " is a directory"},
			{"symlink", evil, "--" + c.flag + " " + evil + " is a symbolic link"},
		} {
			t.Run(c.name+"/"+tc.name, func(t *testing.T) {
				code, out, errs := c.run(tc.path)
				require.Equal(t, 2, code, "stdout %q stderr %q", out, errs)
				require.Contains(t, errs, tc.want)
				require.NotContains(t, out+errs, "secrethash")
				require.NoFileExists(t, evil+".bak")
				require.NoFileExists(t, filepath.Join(dir, ".bak"))
			})
		}
	}
	b, err := os.ReadFile(secret)
	require.NoError(t, err)
	require.Equal(t, "root:$6$secrethash:19000::::::\n", string(b))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 2, "nothing written beside the two files")
}

// TestOutputKeepsMode: --output over a 0600 file keeps it 0600, and the
// backup too.
func TestOutputKeepsMode(t *testing.T) {
	db := newPool(t)
	p := filepath.Join(t.TempDir(), "resolv.conf")
	require.NoError(t, os.WriteFile(p, []byte("# old\n"), 0o600))
	code, out, errs := mnpool(t, db, "--self", "mn1", "dns", "resolvconf", "--member", "sn1", "--output", p)
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, p+" written")
	for _, f := range []string{p, p + ".bak"} {
		st, err := os.Stat(f)
		require.NoError(t, err)
		require.Equal(t, fs.FileMode(0o600), st.Mode().Perm(), f)
	}
}
