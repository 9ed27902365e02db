package pool_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/pool"
)

// BenchmarkApplyNodesIP10k changes the IP of 10,000 existing nodes the way
// `node import --replace` of a node,ip file does (each row a conditional
// update, each node audited with before and after), on each backend.
//
//	go test -run '^$' -bench 'ApplyNodesIP10k' -benchtime 3x -count 3 ./pool/
func BenchmarkApplyNodesIP10k(b *testing.B) {
	const n = 10_000
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			ctx := context.Background()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				s := storetest.Open(b, be.DSN(b))
				storetest.Seed(b, s, n)
				ups := make([]pool.NodeUpdate, n)
				for j := range ups {
					ups[j] = pool.NodeUpdate{Name: fmt.Sprintf("cn%05d", j+1), Changes: []pool.NodeChange{{Attr: pool.AttrIP, Op: pool.OpSet, Value: fmt.Sprintf("10.2.%d.%d", j/250, j%250+1)}}}
				}
				b.StartTimer()
				if _, err := s.ApplyNodes(ctx, ups, pool.SetOptions{}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				s.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/op")
		})
	}
}
