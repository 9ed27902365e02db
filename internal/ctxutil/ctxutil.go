// Package ctxutil holds small helpers for waiting under a context, shared
// by the packages so each wait is written once.
package ctxutil

import (
	"context"
	"time"
)

// Sleep waits d or until ctx ends, whichever comes first. It returns
// ctx.Err() when ctx ended first (also when ctx had already ended, even
// with d <= 0), else nil. The timer is stopped on return.
func Sleep(ctx context.Context, d time.Duration) error {
	return SleepOr(ctx, d, nil)
}

// SleepOr is Sleep that also returns early, with nil, when wake is ready
// (a value sent or the channel closed): a poll interval that a change
// notification cuts short. A nil wake never fires.
func SleepOr(ctx context.Context, d time.Duration, wake <-chan struct{}) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	case <-wake:
		return nil
	}
}
