package makemn_test

import (
	"context"
	"testing"
	"time"

	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/internal/testgalera"
	"github.com/mnpool/mnpool/makemn"
	"github.com/mnpool/mnpool/mnguard"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
	"github.com/mnpool/mnpool/poolsync"
	"github.com/mnpool/mnpool/rolefiles"
)

// BenchmarkGaleraMakeMNOldMNDown measures the wall time of one makemn on
// the three-node Galera cluster while the old MN's host (and its database
// node) is down: open the store as the CLI does, run every check, promote,
// hold, sync the role files, close. The SN made MN alternates between sn1
// and sn2, so every operation is a real hand-over. "default-guard" uses
// the production guard timing (hold 8 s: the hand-over wait dominates);
// "hold=0" shows the rest. Timing starts once the survivors have dropped
// the dead node; right after a crash, reads wait for Galera's failure
// detection (2-3 s on the test cluster, up to 20 s with Galera's defaults).
func BenchmarkGaleraMakeMNOldMNDown(b *testing.B) {
	env := testgalera.Open(b, testgalera.WithFaults())
	storetest.GaleraPool(b, env)
	env.Kill(b, 1)
	ctx := context.Background()
	// Time makemn, not Galera's failure detection: wait until the
	// survivors have dropped node 1 (reads wait for that view change).
	settle := storetest.OpenMember(b, env.NodeDSN(2), "sn1")
	for deadline := time.Now().Add(testenv.Timeout(time.Minute)); ; time.Sleep(100 * time.Millisecond) {
		if h, err := settle.Health(ctx); err == nil && h.Healthy && h.ClusterSize == 2 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("node 1 was not dropped from the cluster within a minute")
		}
	}
	for _, bc := range []struct {
		name  string
		guard []mnguard.Option
	}{
		{"default-guard", nil},
		{"hold=0", []mnguard.Option{mnguard.WithHold(0)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			root := b.TempDir()
			i := 0
			for b.Loop() {
				target := []string{"sn1", "sn2"}[i%2]
				i++
				s, err := pool.Open(ctx, memberDSN(b, env, target), pool.WithSelf(target), pool.WithMigrate())
				if err != nil {
					b.Fatal(err)
				}
				_, err = makemn.RunUnlocked(ctx, s, makemn.Request{
					Target:   target,
					Liveness: liveness.Static{"mn1": liveness.Dead},
					Guard:    bc.guard,
					Sync:     poolsync.Options{Steps: []poolsync.Step{rolefiles.Step(root)}},
				})
				s.Close()
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
