package testgalera

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrLockTimeout: faults.lock could not be taken in time.
var ErrLockTimeout = errors.New("testgalera: timed out waiting for the fault lock")

// Lock file names inside the cluster directory.
const (
	lockName   = "faults.lock"
	intentName = "faults.lock.intent"
)

// lockPollInterval is how often a waiting test retries the lock.
const lockPollInterval = 50 * time.Millisecond

// faultLock is a held flock on <dir>/faults.lock.
type faultLock struct {
	f *os.File
}

// acquireLock takes a shared (or, with exclusive, an exclusive) flock on
// <dir>/faults.lock, waiting until ctx ends.
//
// Writers get preference: an exclusive taker first holds faults.lock.intent
// exclusively while it waits, and shared takers pass through the intent lock
// before taking theirs, so a steady stream of ordinary tests cannot starve a
// fault test. flock locks belong to open files, so two Opens in one process
// exclude each other like two processes do; a test that holds an Env must not
// start a WithFaults subtest (it would wait for itself until ctx ends).
func acquireLock(ctx context.Context, dir string, exclusive bool) (*faultLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("testgalera: fault lock directory %s: %w", dir, err)
	}
	intent, err := openLockFile(filepath.Join(dir, intentName))
	if err != nil {
		return nil, err
	}
	defer intent.Close() // releases the intent lock

	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := flockWait(ctx, intent, how); err != nil {
		return nil, err
	}
	if !exclusive {
		// Passing through is enough; do not block the next writer.
		if err := syscall.Flock(int(intent.Fd()), syscall.LOCK_UN); err != nil {
			return nil, fmt.Errorf("testgalera: unlock %s: %w", intent.Name(), err)
		}
	}

	f, err := openLockFile(filepath.Join(dir, lockName))
	if err != nil {
		return nil, err
	}
	if err := flockWait(ctx, f, how); err != nil {
		f.Close()
		return nil, err
	}
	return &faultLock{f: f}, nil
}

func openLockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("testgalera: open lock file: %w", err)
	}
	return f, nil
}

// flockWait retries a non-blocking flock until it succeeds or ctx ends.
func flockWait(ctx context.Context, f *os.File, how int) error {
	t := time.NewTicker(lockPollInterval)
	defer t.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("testgalera: flock %s: %w", f.Name(), err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s: %w", ErrLockTimeout, f.Name(), context.Cause(ctx))
		case <-t.C:
		}
	}
}

// release drops the lock.
func (l *faultLock) release() error {
	return l.f.Close()
}
