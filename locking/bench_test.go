package locking_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mnpool/mnpool/locking"
)

// BenchmarkLockUnlock: one uncontended Lock plus Unlock (two transactions).
func BenchmarkLockUnlock(b *testing.B) {
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			e := be.open(b)
			lk := newLocker(b, e.store(b, 0), locking.WithTTL(30*time.Second))
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				l, err := lk.Lock(ctx, "bench")
				if err != nil {
					b.Fatal(err)
				}
				if err := l.Unlock(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkContended: 4 clients take the same lock in a loop and hold it
// for 1ms; one op is one acquisition (with its release). "members" are 4 Lockers on 4 stores
// (Galera: spread over the nodes), which learn of a release only by
// polling (every 20ms here); "local" is 4 goroutines sharing one Locker,
// which Unlock wakes at once.
func BenchmarkContended(b *testing.B) {
	const clients = 4
	for _, be := range backends() {
		for _, mode := range []string{"members", "local"} {
			b.Run(be.name+"/"+mode, func(b *testing.B) {
				e := be.open(b)
				lks := make([]*locking.Locker, clients)
				for i := range lks {
					if mode == "members" || i == 0 {
						lks[i] = newLocker(b, e.store(b, i), locking.WithTTL(30*time.Second))
					} else {
						lks[i] = lks[0]
					}
				}
				var left atomic.Int64
				left.Store(int64(b.N))
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				var wg sync.WaitGroup
				for _, lk := range lks {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for left.Add(-1) >= 0 {
							l, err := lk.Lock(ctx, "contended")
							if err != nil {
								b.Error(err)
								return
							}
							time.Sleep(time.Millisecond)
							if err := l.Unlock(ctx); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
			})
		}
	}
}
