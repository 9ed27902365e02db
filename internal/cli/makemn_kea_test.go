package cli

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/dhcp"
	"github.com/mnpool/mnpool/dns/dnstest"
	"github.com/mnpool/mnpool/pool"
)

// TestMakemnReloadsRunningKea: `makemn --dhcp-format kea` without a
// reload command makes a running kea-dhcp4 load the new configuration
// through its control socket (config-reload): Kea's own config-get then
// shows the pool's subnet, the dynamic range and the reservations.
func TestMakemnReloadsRunningKea(t *testing.T) {
	kea := dnstest.Tool(t, "kea-dhcp4", "kea-dhcp4-server")
	dir := t.TempDir()
	sock := filepath.Join(dir, "kea4.sock")
	leases := filepath.Join(dir, "leases4.csv")
	conf := filepath.Join(dir, "etc", "kea-dhcp4.conf")
	require.NoError(t, os.MkdirAll(filepath.Dir(conf), 0o755))
	// What Kea runs before makemn: no subnet at all.
	initial := `{"Dhcp4": {"interfaces-config": {"interfaces": []}, "control-socket": {"socket-type": "unix", "socket-name": "` + sock + `"},
  "lease-database": {"type": "memfile", "persist": false}}}`
	require.NoError(t, os.WriteFile(conf, []byte(initial), 0o644))
	cmd := exec.Command(kea, "-c", conf)
	cmd.Env = append(os.Environ(), "KEA_PIDFILE_DIR="+dir, "KEA_LOCKFILE_DIR="+dir)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	require.Eventually(t, func() bool {
		_, err := dhcp.KeaCommand(context.Background(), sock, "version-get", nil)
		return err == nil
	}, 30*time.Second, 50*time.Millisecond, "kea-dhcp4 did not answer on %s:\n%s", sock, out)
	require.Empty(t, keaSubnets(t, sock), "Kea starts without subnets")

	dsn := "sqlite:" + filepath.Join(dir, "pool.db")
	dhcpPool(t, dsn)
	// Kea listens on loopback only: it must not answer on real networks.
	s, err := pool.Open(context.Background(), dsn)
	require.NoError(t, err)
	require.NoError(t, s.SetSite(context.Background(), map[string]string{dhcp.SiteDHCPInterfaces: "lo"}))
	s.Close()

	code, stdout, stderr := cliRun(t, Makemn, "--db", dsn, "--self", "sn1", "--root", dir, "--hold", "0s", "--force",
		"--dhcp-format", "kea", "--dhcp-config", conf, "--kea-socket", sock, "--kea-lease-file", leases)
	require.Equal(t, 0, code, stdout+stderr)
	require.Contains(t, stdout, "config-reload via "+sock, stdout)

	subnets := keaSubnets(t, sock)
	require.Len(t, subnets, 1, "Kea's running configuration after makemn")
	require.Equal(t, "10.0.0.0/16", subnets[0].Subnet)
	require.Len(t, subnets[0].Pools, 1, "sn1 became the MN: Kea serves the dynamic range")
	var macs []string
	for _, r := range subnets[0].Reservations {
		macs = append(macs, r.HW)
	}
	require.ElementsMatch(t, []string{"00:1a:2b:3c:4d:01", "00:1a:2b:3c:4d:02", "00:1a:2b:3c:4d:03"}, macs)
}

type keaSubnet struct {
	Subnet string `json:"subnet"`
	Pools  []struct {
		Pool string `json:"pool"`
	} `json:"pools"`
	Reservations []struct {
		HW string `json:"hw-address"`
	} `json:"reservations"`
}

// keaSubnets asks the running Kea for its configuration.
func keaSubnets(t *testing.T, sock string) []keaSubnet {
	t.Helper()
	resp, err := dhcp.KeaCommand(context.Background(), sock, "config-get", nil)
	require.NoError(t, err)
	var cfg struct {
		Dhcp4 struct {
			Subnets []keaSubnet `json:"subnet4"`
		} `json:"Dhcp4"`
	}
	require.NoError(t, json.Unmarshal(resp.Arguments, &cfg))
	return cfg.Dhcp4.Subnets
}
