package locking_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mnpool/mnpool/locking"
)

// TestContend: Contend takes a free lock, reports the holder of a held
// one (*HeldError), never takes over a lease that keeps moving however
// often it looks, and takes over an abandoned one only after its calls
// saw the lease stand still for the TTL; the token grows and the takeover
// is counted.
func TestContend(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		const ttl = 2 * time.Second
		a := e.locker(t, 1, locking.WithTTL(ttl))
		b := e.locker(t, 2, locking.WithTTL(ttl), locking.WithMember("other"))
		la, err := a.Contend(ctx, "console:cn1")
		if err != nil {
			t.Fatalf("Contend for a free lock: %v", err)
		}
		for end := time.Now().Add(2 * ttl); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			_, err := b.Contend(ctx, "console:cn1")
			var he *locking.HeldError
			if !errors.As(err, &he) || !errors.Is(err, locking.ErrLocked) {
				t.Fatalf("Contend for a renewed lock: %v, want a *HeldError", err)
			}
			if he.Name != "console:cn1" || he.Member != "m1" || he.Session != la.Session() || he.Token != la.Token() {
				t.Fatalf("HeldError %+v, want the holder m1 with session %s and token %d", *he, la.Session(), la.Token())
			}
		}
		if !la.Held() {
			t.Fatalf("the holder lost its renewed lock: %v", la.Err())
		}

		validUntil := la.ValidUntil() // start of the last renewal + TTL - margin
		la.Abandon()
		if !closed(la.Done(), 0) || !errors.Is(la.Err(), locking.ErrNotHeld) || la.Held() {
			t.Fatalf("after Abandon: err %v held %v, want Done closed, ErrNotHeld", la.Err(), la.Held())
		}
		var lb *locking.Lock
		waitFor(t, 10*ttl, "the abandoned lock to be taken over", func() bool {
			lb, err = b.Contend(ctx, "console:cn1")
			if err != nil && !errors.Is(err, locking.ErrLocked) {
				t.Fatalf("Contend: %v", err)
			}
			return err == nil
		})
		// The takeover comes at least the TTL after the last renewal
		// started, so at least the margin after the holder's lease ended.
		if after := time.Since(validUntil); after < la.Margin() {
			t.Errorf("taken over %v after the holder's lease ended, want at least the margin %v", after, la.Margin())
		}
		if lb.Token() != la.Token()+1 || b.Stats().Takeovers != 1 {
			t.Errorf("takeover: token %d (want %d), %d takeovers counted (want 1)", lb.Token(), la.Token()+1, b.Stats().Takeovers)
		}
		held, err := locking.Held(ctx, e.store(t, 3), "console:", nil)
		if err != nil {
			t.Fatal(err)
		}
		if h := held["console:cn1"]; len(held) != 1 || h.Member != "other" || h.Token != lb.Token() {
			t.Errorf("Held: %+v, want only console:cn1 held by other with token %d", held, lb.Token())
		}
		if !errors.Is(la.Unlock(ctx), locking.ErrNotHeld) {
			t.Errorf("Unlock after Abandon: want ErrNotHeld")
		}
		mustUnlock(t, lb)
		if held, err := locking.Held(ctx, e.store(t, 3), "console:", []string{"console:cn1", "x"}); err != nil || len(held) != 0 {
			t.Errorf("Held after Unlock: %v %v, want none", held, err)
		}
	})
}
