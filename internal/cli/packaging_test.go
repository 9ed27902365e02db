package cli_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/console"
	"github.com/mnpool/mnpool/internal/cli"
)

// The console broker and DNS units run the mnpool of the package, the same
// path `console conserver` writes into conserver.cf, with flags mnpool
// has; systemd-analyze accepts them.
func TestServiceUnits(t *testing.T) {
	mn := cli.NewMnpool(cli.IO{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}})
	for unit, sub := range map[string][]string{
		"mnpool-console.service": {"console", "serve"},
		"mnpool-dns.service":     {"dns", "serve"},
		"mnpoold.service":        nil,
	} {
		t.Run(unit, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("../../packaging/systemd", unit))
			require.NoError(t, err)
			var exe []string
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
					exe = strings.Fields(v)
				}
				if strings.HasPrefix(line, "EnvironmentFile=") {
					require.True(t, strings.HasPrefix(line, "EnvironmentFile=-/etc/mnpool/"), "unit options live under /etc/mnpool: %s", line)
				}
			}
			require.NotEmpty(t, exe, "no ExecStart")
			require.Equal(t, filepath.Dir(console.DefaultProgram), filepath.Dir(exe[0]), "the units and conserver.cf name the same directory")
			if sub == nil {
				return
			}
			require.Equal(t, console.DefaultProgram, exe[0])
			require.Equal(t, sub, exe[1:3])
			c, _, err := mn.Find(sub)
			require.NoError(t, err)
			require.Equal(t, sub[len(sub)-1], c.Name())
			analyze, err := exec.LookPath("systemd-analyze")
			if err != nil {
				t.Log("systemd-analyze not installed: unit syntax not verified")
				return
			}
			path := filepath.Join(t.TempDir(), unit)
			self, err := os.Executable()
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path, bytes.ReplaceAll(b, []byte(console.DefaultProgram), []byte(self)), 0o644))
			out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
			require.NoError(t, err, "systemd-analyze verify: %s", out)
			require.NotContains(t, string(out), unit, "systemd-analyze warns about the unit: %s", out)
		})
	}
}
