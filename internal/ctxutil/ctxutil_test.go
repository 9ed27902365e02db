package ctxutil_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mnpool/mnpool/internal/ctxutil"
)

func TestSleepWaits(t *testing.T) {
	start := time.Now()
	if err := ctxutil.Sleep(context.Background(), 20*time.Millisecond); err != nil {
		t.Fatalf("Sleep = %v, want nil", err)
	}
	if el := time.Since(start); el < 20*time.Millisecond {
		t.Errorf("Sleep returned after %v, before the 20ms it was asked to wait", el)
	}
}

func TestSleepCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctxutil.Sleep(ctx, time.Hour) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Sleep = %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Sleep did not return when its context was cancelled")
	}
}

func TestSleepEndedContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ctxutil.Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep(ended ctx, 0) = %v, want context.Canceled", err)
	}
}

func TestSleepOrWakes(t *testing.T) {
	wake := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- ctxutil.SleepOr(context.Background(), time.Hour, wake) }()
	wake <- struct{}{}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("SleepOr = %v, want nil after a wake-up", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("SleepOr did not return when woken")
	}
}

func TestSleepOrNilWakeSleeps(t *testing.T) {
	start := time.Now()
	if err := ctxutil.SleepOr(context.Background(), 20*time.Millisecond, nil); err != nil {
		t.Fatalf("SleepOr = %v, want nil", err)
	}
	if el := time.Since(start); el < 20*time.Millisecond {
		t.Errorf("SleepOr with a nil wake returned after %v, before the 20ms it was asked to wait", el)
	}
}

func TestSleepOrEndedContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	wake := make(chan struct{})
	close(wake)
	if err := ctxutil.SleepOr(ctx, time.Hour, wake); !errors.Is(err, context.Canceled) {
		t.Errorf("SleepOr(ended ctx, closed wake) = %v, want context.Canceled", err)
	}
}
