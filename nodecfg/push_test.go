package nodecfg_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/nodecfg"
)

// slowPusher takes d per node and records how many run at once.
type slowPusher struct {
	d         time.Duration
	cur, peak atomic.Int32
}

func (p *slowPusher) Push(ctx context.Context, t nodecfg.Target, files []nodecfg.File) nodecfg.Result {
	n := p.cur.Add(1)
	defer p.cur.Add(-1)
	for {
		old := p.peak.Load()
		if n <= old || p.peak.CompareAndSwap(old, n) {
			break
		}
	}
	select {
	case <-time.After(p.d):
		return nodecfg.Result{Node: t.Node, Changed: true}
	case <-ctx.Done():
		return nodecfg.Result{Node: t.Node, Err: ctx.Err()}
	}
}

func TestPushAllBoundsParallelism(t *testing.T) {
	p := &slowPusher{d: 20 * time.Millisecond}
	var jobs []nodecfg.Job
	for i := 0; i < 20; i++ {
		jobs = append(jobs, nodecfg.Job{Target: nodecfg.Target{Node: fmt.Sprintf("cn%02d", i)}})
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	res := nodecfg.PushAll(context.Background(), p, jobs, nodecfg.PushOptions{Parallel: 3, Done: func(r nodecfg.Result) {
		mu.Lock()
		defer mu.Unlock()
		seen[r.Node] = true
	}})
	require.Equal(t, int32(3), p.peak.Load())
	require.Len(t, seen, 20)
	for i, r := range res {
		require.Equal(t, jobs[i].Target.Node, r.Node)
		require.NoError(t, r.Err)
	}
}

func TestPushAllTimeoutWrapsPusherError(t *testing.T) {
	p := &slowPusher{d: time.Hour}
	res := nodecfg.PushAll(context.Background(), p, []nodecfg.Job{{Target: nodecfg.Target{Node: "cn01"}}}, nodecfg.PushOptions{Timeout: 50 * time.Millisecond})
	require.ErrorIs(t, res[0].Err, nodecfg.ErrTimeout)
	require.ErrorIs(t, res[0].Err, context.DeadlineExceeded)
	require.ErrorContains(t, res[0].Err, "node cn01 after")
}

func TestPushAllStopsStartingWhenContextEnds(t *testing.T) {
	p := &slowPusher{d: time.Hour}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	jobs := []nodecfg.Job{{Target: nodecfg.Target{Node: "a"}}, {Target: nodecfg.Target{Node: "b"}}}
	res := nodecfg.PushAll(ctx, p, jobs, nodecfg.PushOptions{Parallel: 1})
	require.ErrorIs(t, res[0].Err, nodecfg.ErrTimeout)
	require.ErrorIs(t, res[1].Err, nodecfg.ErrTimeout)
	require.ErrorContains(t, res[1].Err, "not started")
}
