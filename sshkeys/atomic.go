package sshkeys

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// writeFileAtomic replaces path with data: a temporary file in the same
// directory is created with perm (so a secret is never readable by others,
// not even for a moment), written, fsynced and renamed over path, and the
// directory is fsynced. Readers see the old content or the new, never a mix.
// This is the package-local stand-in for internal/atomicfile.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp makes the file 0600; set the final mode before any byte is
	// written. Chmod is not affected by the umask.
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

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
		t := time.NewTimer(lockPollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("sshkeys: lock %s: %w", dir, ctx.Err())
		case <-t.C:
		}
	}
}
