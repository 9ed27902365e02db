package pool_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/mnpool/mnpool/internal/storetest"
	"github.com/mnpool/mnpool/pool"
)

var moveModes = []struct {
	name string
	mode pool.MoveWrite
}{{"case", pool.MoveWriteCase}, {"rows", pool.MoveWriteRows}, {"join", pool.MoveWriteJoin}, {"values", pool.MoveWriteValues}}

// benchMove moves all n nodes between sn1 and sn2 on every op (snmove -s
// sn1 -d sn2, then back): the database part of snmove (read, plan,
// batched conditional writes, audit), no node reconfiguration.
func benchMove(b *testing.B, dsn func(testing.TB) string, n, batch int, mode pool.MoveWrite) {
	ctx := context.Background()
	s := storetest.Open(b, dsn(b), pool.WithBatchSize(batch))
	storetest.Seed(b, s, 0)
	if err := s.AddNodes(ctx, nodesWithList(n, "sn1", "sn2"), pool.AddOptions{}); err != nil {
		b.Fatal(err)
	}
	src, dst := "sn1", "sn2"
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := s.MoveWith(ctx, pool.MoveRequest{Source: src, Target: dst}, mode, nil)
		if err != nil {
			b.Fatal(err)
		}
		if res.Counts.Moved != n {
			b.Fatalf("moved %d of %d nodes: %+v", res.Counts.Moved, n, res.Counts)
		}
		src, dst = dst, src
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/op")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "nodes/s")
}

// BenchmarkMove10k moves 10,000 nodes per op on each backend, with each
// write mode and several batch sizes.
//
//	go test -run '^$' -bench 'Move10k' -benchtime 5x -count 5 ./pool/
func BenchmarkMove10k(b *testing.B) {
	for _, be := range storetest.Backends() {
		for _, m := range moveModes {
			for _, batch := range []int{500, 2000} {
				b.Run(fmt.Sprintf("%s/%s/batch%d", be.Name, m.name, batch), func(b *testing.B) {
					benchMove(b, be.DSN, 10_000, batch, m.mode)
				})
			}
		}
	}
}

// BenchmarkMove100kSQLite moves 100,000 nodes per op on SQLite.
//
//	go test -run '^$' -bench 'Move100kSQLite' -benchtime 3x -count 5 ./pool/
func BenchmarkMove100kSQLite(b *testing.B) {
	for _, m := range moveModes {
		b.Run(m.name, func(b *testing.B) {
			benchMove(b, storetest.Backends()[0].DSN, 100_000, pool.DefaultBatchSizeForTest, m.mode)
		})
	}
}

// BenchmarkMovePlan10k is the fixed part of a move of 10,000 nodes: read
// the members and nodes, select and plan (a dry run).
func BenchmarkMovePlan10k(b *testing.B) {
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			ctx := context.Background()
			s := storetest.Open(b, be.DSN(b))
			storetest.Seed(b, s, 0)
			if err := s.AddNodes(ctx, nodesWithList(10_000, "sn1", "sn2"), pool.AddOptions{}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := s.Move(ctx, pool.MoveRequest{Source: "sn1", Target: "sn2", DryRun: true})
				if err != nil || res.Counts.Planned != 10_000 {
					b.Fatal(err, res.Counts)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/op")
		})
	}
}
