package sshkeys

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mnpool/mnpool/internal/ctxutil"
)

// lockPollInterval is how often lockDir retries a held lock.
const lockPollInterval = 20 * time.Millisecond

// lockDir takes an exclusive flock(2) on dir/.lock, waiting until ctx ends.
// flock locks belong to the open file description, so two goroutines of one
// process exclude each other as two processes do. On NFS, Linux maps flock to
// a POSIX lock held on the server, so members sharing the directory exclude
// each other too; other shared file systems may lock only per host (see
// docs/SSHKEYS.md). The returned function releases the lock.
func lockDir(ctx context.Context, dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sshkeys: lock %s: %w", dir, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("sshkeys: lock %s: %w", dir, err)
		}
		if err := ctxutil.Sleep(ctx, lockPollInterval); err != nil {
			f.Close()
			return nil, fmt.Errorf("sshkeys: lock %s: %w", dir, err)
		}
	}
}
