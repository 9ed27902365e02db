package cli

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/locking"
	"github.com/mnpool/mnpool/makemn"
	"github.com/mnpool/mnpool/pool"
)

// TestMakemnFailsAtOnceWhileAnotherRuns: while sn2 holds the makemn lock
// (a makemn running there), makemn on sn1 exits 1 at once, names sn2 and
// the token, and changes nothing: no promotion, no role file. Once the
// lock is free, makemn runs as before.
func TestMakemnFailsAtOnceWhileAnotherRuns(t *testing.T) {
	db := makemnPool(t)
	ctx := context.Background()
	s, err := pool.Open(ctx, db, pool.WithSelf("sn2"))
	require.NoError(t, err)
	defer s.Close()
	lk, err := locking.New(s)
	require.NoError(t, err)
	l, err := lk.TryLock(ctx, makemn.LockName, locking.WithInfo("makemn sn2 (test)"))
	require.NoError(t, err)
	before, err := s.Version(ctx)
	require.NoError(t, err)

	root := t.TempDir()
	code, out, errOut := cliRun(t, Makemn, "--db", db, "--self", "sn1", "--root", root, "--hold", "0")
	require.Equal(t, 1, code, out+errOut)
	require.Contains(t, errOut, fmt.Sprintf("member sn2 holds the makemn lock with token %d", l.Token()))
	require.Contains(t, out, "[failed]  lock")
	require.Contains(t, out, "makemn: FAILED; nothing was changed")
	m, err := s.Master(ctx)
	require.NoError(t, err)
	require.Equal(t, pool.Master{Member: "mn1", Epoch: 1}, m)
	after, err := s.Version(ctx)
	require.NoError(t, err)
	require.Equal(t, before, after, "the change counter moved: something was written")
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Empty(t, entries, "no role file, no DHCP file, no directory")

	// --json says who holds it.
	code, out, _ = cliRun(t, Makemn, "--db", db, "--self", "sn1", "--root", root, "--hold", "0", "--dhcp-format", "none", "--json")
	require.Equal(t, 1, code)
	require.Contains(t, out, `"member": "sn2"`)

	require.NoError(t, l.Unlock(ctx))
	code, out, errOut = cliRun(t, Makemn, "--db", db, "--self", "sn1", "--root", root, "--hold", "0", "--dhcp-format", "none")
	require.Equal(t, 0, code, out+errOut)
	require.Contains(t, out, "makemn: done: sn1 is the MN of epoch 2")
}
