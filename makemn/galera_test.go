package makemn_test

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/testgalera"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
)

// TestGaleraThreeMakemnAtOnce: three makemn processes, on three members,
// each through its own Galera node, are started together, ten rounds in a
// row. In every round exactly one exits 0, the other two exit 1 naming
// the holder of the makemn lock, and the epoch grows by exactly one.
func TestGaleraThreeMakemnAtOnce(t *testing.T) {
	env := testgalera.Open(t)
	require.GreaterOrEqual(t, env.N(), 3)
	ctx := context.Background()
	s, err := pool.Open(ctx, env.DSN(), pool.WithMigrate(), pool.WithSelf("test"))
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.AddNetwork(ctx, pool.Network{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16")}, false))
	_, err = s.Init(ctx, pool.InitOptions{MN: pool.Member{Name: "mn1", Addresses: map[string]netip.Addr{"mgmt": netip.MustParseAddr("10.0.0.1")}}})
	require.NoError(t, err)
	members := []string{"mn1", "sn1", "sn2", "sn3"}
	for i, m := range members[1:] {
		require.NoError(t, s.AddMember(ctx, pool.Member{Name: m, Services: service.All(),
			Addresses: map[string]netip.Addr{"mgmt": netip.AddrFrom4([4]byte{10, 0, 0, byte(2 + i)})}}, false))
	}
	root := t.TempDir()
	for round := 1; round <= 10; round++ {
		before, err := s.Master(ctx)
		require.NoError(t, err)
		var contenders []string
		for _, m := range members {
			if m != before.Member {
				contenders = append(contenders, m)
			}
		}
		res := startTogether(t, env, root, contenders)
		var winners []string
		for i, r := range res {
			switch r.code {
			case 0:
				winners = append(winners, contenders[i])
			case 1:
				require.Contains(t, r.stderr, "holds the makemn lock with token", "round %d, %s:\n%s%s", round, contenders[i], r.stdout, r.stderr)
			default:
				t.Fatalf("round %d: makemn on %s exited %d:\n%s%s", round, contenders[i], r.code, r.stdout, r.stderr)
			}
		}
		require.Len(t, winners, 1, "round %d: winners %v\n%s", round, winners, describe(contenders, res))
		after, err := s.Master(ctx)
		require.NoError(t, err)
		require.Equal(t, pool.Master{Member: winners[0], Epoch: before.Epoch + 1}, after, "round %d\n%s", round, describe(contenders, res))
		t.Logf("round %d: %s won epoch %d", round, winners[0], after.Epoch)
	}
}

type procResult struct {
	code           int
	stdout, stderr string
}

// startTogether starts makemn on each member, member i through Galera
// node i+1, and waits for all.
func startTogether(t *testing.T, env *testgalera.Env, root string, members []string) []procResult {
	t.Helper()
	out := make([]procResult, len(members))
	cmds := make([]*exec.Cmd, len(members))
	bufs := make([][2]bytes.Buffer, len(members))
	for i, m := range members {
		cmd := exec.Command(os.Args[0], "--db", env.NodeDSN(i%env.N()+1), "--self", m, "--root", filepath.Join(root, m),
			"--force", "--hold", "1s", "--dhcp-format", "none")
		cmd.Env = append(os.Environ(), envChild+"=1")
		cmd.Stdout, cmd.Stderr = &bufs[i][0], &bufs[i][1]
		cmds[i] = cmd
	}
	for _, cmd := range cmds {
		require.NoError(t, cmd.Start())
	}
	var wg sync.WaitGroup
	for i, cmd := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(3 * time.Minute):
				_ = cmd.Process.Kill()
				<-done
			}
			out[i] = procResult{code: cmd.ProcessState.ExitCode(), stdout: bufs[i][0].String(), stderr: bufs[i][1].String()}
		}()
	}
	wg.Wait()
	return out
}

func describe(members []string, res []procResult) string {
	var b bytes.Buffer
	for i, r := range res {
		fmt.Fprintf(&b, "--- %s: exit %d\n%s%s", members[i], r.code, r.stdout, r.stderr)
	}
	return b.String()
}
