package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/agent"
	"github.com/mnpool/mnpool/dhcp"
	"github.com/mnpool/mnpool/mnguard"
	"github.com/mnpool/mnpool/pool"
)

// TestMakedhcpMakemnAgentRenderTheSameFile: for the same pool, makedhcp
// (the CLI), makemn's sync step and the agent (mnpoold's DHCP step) write
// byte-identical files; after `makedhcp -d cn001` all three leave cn001
// out, and after `makedhcp cn001` all three bring it back.
func TestMakedhcpMakemnAgentRenderTheSameFile(t *testing.T) {
	for name, dsnFn := range dhcpBackends() {
		t.Run(name, func(t *testing.T) {
			dsn := dsnFn(t)
			dhcpPool(t, dsn)
			dir := t.TempDir()
			cliFile, mnFile, agentFile := filepath.Join(dir, "cli.conf"), filepath.Join(dir, "makemn.conf"), filepath.Join(dir, "agent.conf")

			r := makedhcp(t, "--db", dsn, "--self", "mn1", "--dhcp-config", cliFile, "--hold", "0s", "-n", "-a")
			require.Equal(t, 0, r.code, r.out+r.err)
			ag := startDHCPAgent(t, dsn, agentFile)
			makemnSync := func() {
				t.Helper()
				code, out, errOut := cliRun(t, Makemn, "--db", dsn, "--self", "mn1", "--root", filepath.Join(dir, "root"), "--hold", "0s", "--dhcp-config", mnFile, "--db-address", "mn1=127.0.0.11")
				require.Equal(t, 0, code, out+errOut)
			}
			makemnSync()
			sameFiles(t, ag, []string{"cn001", "cn002", "cn003"}, cliFile, mnFile, agentFile)

			r = makedhcp(t, "--db", dsn, "--self", "mn1", "--dhcp-config", cliFile, "--hold", "0s", "-d", "cn001")
			require.Equal(t, 0, r.code, r.out+r.err)
			makemnSync()
			sameFiles(t, ag, []string{"cn002", "cn003"}, cliFile, mnFile, agentFile)

			r = makedhcp(t, "--db", dsn, "--self", "mn1", "--dhcp-config", cliFile, "--hold", "0s", "cn001")
			require.Equal(t, 0, r.code, r.out+r.err)
			require.Contains(t, r.out, "brought back: cn001")
			makemnSync()
			sameFiles(t, ag, []string{"cn001", "cn002", "cn003"}, cliFile, mnFile, agentFile)
		})
	}
}

// startDHCPAgent runs an agent for mn1 whose only step is the DHCP step
// built the way mnpoold builds it, with a guard that serves at once.
func startDHCPAgent(t *testing.T, dsn, path string) context.CancelFunc {
	t.Helper()
	s, err := pool.Open(context.Background(), dsn, pool.WithSelf("mn1"), pool.WithActor("mnpoold"))
	require.NoError(t, err)
	ac := dhcp.ApplierConfig{Path: path}
	a, err := agent.New(s, agent.WithSteps(ac.SyncStep()), agent.WithWatchInterval(50*time.Millisecond),
		agent.WithGuardOptions(mnguard.WithTiming(200*time.Millisecond, time.Second), mnguard.WithHold(0)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; s.Close() })
	return cancel
}

// sameFiles waits (the agent follows the pool's change counter) until
// the agent's file equals the CLI's, then requires all files to be equal,
// with the dynamic range and exactly the nodes want.
func sameFiles(t *testing.T, _ context.CancelFunc, want []string, cliFile string, others ...string) {
	t.Helper()
	ref, err := os.ReadFile(cliFile)
	require.NoError(t, err)
	deadline := time.Now().Add(60 * time.Second)
	for _, f := range others {
		for {
			got, _ := os.ReadFile(f)
			if bytes.Equal(got, ref) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s differs from %s (-cli +other):\n%s", f, cliFile, cmp.Diff(string(ref), string(got)))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	in, err := dhcp.Parse(ref)
	require.NoError(t, err)
	require.True(t, in.Dynamic, "the MN's file serves the dynamic range")
	require.Equal(t, want, in.Nodes())
}
