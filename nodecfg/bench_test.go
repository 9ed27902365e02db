package nodecfg_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/mnpool/mnpool/nodecfg"
	"github.com/mnpool/mnpool/nodecfg/nodecfgtest"
)

// BenchmarkPushAll reconfigures 32 fake SSH nodes on loopback (4 files
// each; the route alternates, so every push rewrites and applies one
// file and finds three up to date), 8 at a
// time: connect, log in, run the 4 install scripts, apply.
//
//	go test -run '^$' -bench PushAll -benchtime 5x -count 5 ./nodecfg/
func BenchmarkPushAll(b *testing.B) {
	client := nodecfgtest.NewKey(b)
	var nodes []*nodecfgtest.Node
	for i := 0; i < 32; i++ {
		nodes = append(nodes, nodecfgtest.Start(b, client.PublicKey(), nodecfgtest.OK, "127.0.0.1:0"))
	}
	p := pusher(client, true, nodes...)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var jobs []nodecfg.Job
		for j, n := range nodes {
			jobs = append(jobs, nodecfg.Job{Target: nodecfg.Target{Node: fmt.Sprintf("cn%02d", j), Addr: n.Addr}, Files: testFiles(fmt.Sprintf("10.0.0.%d", 4+i%2))})
		}
		for _, r := range nodecfg.PushAll(ctx, p, jobs, nodecfg.PushOptions{Parallel: 8}) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/32/1e6, "ms/node")
}
