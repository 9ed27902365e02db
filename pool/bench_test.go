package pool_test

import (
	"context"
	"testing"

	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/pool"
)

// BenchmarkAddNodes100k inserts 100,000 nodes (batched, validated) into an
// empty pool, on each backend.
//
//	go test -run '^$' -bench 'AddNodes100k|LoadState100k' -benchtime 3x -count 5 ./pool/
func BenchmarkAddNodes100k(b *testing.B) {
	nodes := storetest.MakeNodes(100_000)
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			ctx := context.Background()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				s := storetest.Open(b, be.DSN(b))
				storetest.Seed(b, s, 0)
				b.StartTimer()
				if err := s.AddNodes(ctx, nodes, pool.AddOptions{}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				s.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/op")
		})
	}
}

// BenchmarkLoadState100k reads the full pool state (100,000 nodes, their
// MACs, members, networks, site) in one snapshot.
func BenchmarkLoadState100k(b *testing.B) {
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			ctx := context.Background()
			s := storetest.Open(b, be.DSN(b))
			storetest.Seed(b, s, 100_000)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				st, err := s.LoadState(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if len(st.Nodes) != 100_000 {
					b.Fatalf("loaded %d nodes", len(st.Nodes))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/op")
		})
	}
}
