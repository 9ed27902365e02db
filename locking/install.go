package locking

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mnpool/mnpool/atomicfile"
)

// The shared install tree and the files an Install lock keeps in the
// directory it locks.
const (
	// DefaultInstallRoot is xCAT's shared install tree (site.installdir).
	DefaultInstallRoot = "/install"
	// InstallPrefix starts the lock name of a directory: "install:" + path.
	InstallPrefix = "install:"
	// LockFileName is the file flock(2)ed in the locked directory.
	LockFileName = ".mnpool.lock"
	// TokenFileName holds the fencing token of the current holder, in
	// decimal, beside the lock file. Writers check it with CheckToken.
	TokenFileName = ".mnpool.lock.token"
	// flockPoll is how often a held flock is tried again.
	flockPoll = 50 * time.Millisecond
)

// InstallName returns the lock name of directory dir of the shared install
// tree: InstallPrefix followed by the cleaned absolute path.
func InstallName(dir string) (string, error) {
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("%w: install directory %q is not an absolute path", ErrInvalid, dir)
	}
	name := InstallPrefix + filepath.Clean(dir)
	if err := ValidateName(name); err != nil {
		return "", fmt.Errorf("install directory %q: %w", dir, err)
	}
	return name, nil
}

// InstallLock is the lock of one directory of the shared install tree
// (OS images, repositories): the cluster-wide lease of Lock plus an
// exclusive flock(2) on LockFileName in the directory, with the fencing
// token written to TokenFileName beside it. Shared file systems that honour
// flock across hosts (GPFS; NFSv4, where Linux maps flock to byte-range
// locks) then also keep out writers that use the file lock alone.
//
// The lock covers the directory itself, not the directories above or
// below it: writers of nested trees must agree on which one they lock.
// Everything said about Lock applies; a writer checks the token with
// CheckToken (or Check) before each step it cannot undo.
type InstallLock struct {
	*Lock
	dir string
	f   *os.File
}

// Install takes the lock of directory dir, which must be an absolute
// path; it is created (mode 0755) when missing. It acquires the database
// lease first (Lock, same options and waiting rules), then the flock,
// waiting for it as long as ctx allows and the lease holds (a previous
// holder that is paused keeps its flock until it resumes and sees its
// lease lost), and then writes the token file. A token file that already
// holds a larger token means the lock's token history was lost; Install
// then fails with ErrStaleToken rather than go backwards.
func (lk *Locker) Install(ctx context.Context, dir string, opts ...Option) (*InstallLock, error) {
	return lk.install(ctx, dir, false, opts)
}

// TryInstall is Install without waiting: it fails with an error wrapping
// ErrLocked when the lease is held (see TryLock) or the flock is held by
// another process.
func (lk *Locker) TryInstall(ctx context.Context, dir string, opts ...Option) (*InstallLock, error) {
	return lk.install(ctx, dir, true, opts)
}

func (lk *Locker) install(ctx context.Context, dir string, try bool, opts []Option) (*InstallLock, error) {
	name, err := InstallName(dir)
	if err != nil {
		return nil, err
	}
	dir = filepath.Clean(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("locking: creating install directory: %w", err)
	}
	l, err := lk.acquire(ctx, name, try, opts)
	if err != nil {
		return nil, err
	}
	il := &InstallLock{Lock: l, dir: dir}
	if err := il.lockFile(ctx, try); err != nil {
		il.close()
		return nil, errors.Join(err, ignoreNotHeld(l.Unlock(context.WithoutCancel(ctx))))
	}
	return il, nil
}

func ignoreNotHeld(err error) error {
	if errors.Is(err, ErrNotHeld) {
		return nil
	}
	return err
}

func (il *InstallLock) lockFile(ctx context.Context, try bool) error {
	path := filepath.Join(il.dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o644) // never through a planted symlink
	if err != nil {
		return fmt.Errorf("locking: opening lock file: %w", err)
	}
	il.f = f
	t := time.NewTicker(flockPoll)
	defer t.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("locking: flock %s: %w", path, err)
		}
		if try && errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("%w: %s is flocked by another process", ErrLocked, path)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("locking: waiting for flock on %s: %w", path, ctx.Err())
		case <-il.Done():
			return fmt.Errorf("locking: waiting for flock on %s: %w", path, il.Err())
		case <-t.C:
		}
	}
	cur, err := readToken(il.dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if cur > il.Token() {
		return fmt.Errorf("%w: %s holds token %d, larger than the new token %d of %q; the lock's token row was lost",
			ErrStaleToken, filepath.Join(il.dir, TokenFileName), cur, il.Token(), il.Name())
	}
	if _, err := atomicfile.Write(filepath.Join(il.dir, TokenFileName), []byte(strconv.FormatInt(il.Token(), 10)+"\n"), atomicfile.Options{Mode: 0o644}); err != nil {
		return fmt.Errorf("locking: writing token file: %w", err)
	}
	return nil
}

// Dir is the locked directory.
func (il *InstallLock) Dir() string { return il.dir }

// Check is CheckToken for this lock's directory and token, combined with
// Held: nil only while the lease is valid and the token file carries this
// lock's token.
func (il *InstallLock) Check() error {
	if !il.Held() {
		if err := il.Err(); err != nil {
			return err
		}
		return fmt.Errorf("%w: %q (token %d) lease ran out", ErrLeaseLost, il.Name(), il.Token())
	}
	return CheckToken(il.dir, il.Token())
}

// Unlock releases the flock and then the lease (see Lock.Unlock). The
// token file stays: it records the last token for the next holder's
// check.
func (il *InstallLock) Unlock(ctx context.Context) error {
	il.close()
	return il.Lock.Unlock(ctx)
}

func (il *InstallLock) close() {
	if il.f != nil {
		il.f.Close() // releases the flock
		il.f = nil
	}
}

// CheckToken returns nil when the token file in dir holds token, and
// otherwise an error wrapping ErrStaleToken that names both tokens. A
// writer in the install tree calls it, with the token it was given
// ($MNPOOL_LOCK_TOKEN under `mnpool lock run`), before each step it cannot
// undo; a larger token in the file means another holder took over.
func CheckToken(dir string, token int64) error {
	cur, err := readToken(dir)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStaleToken, err)
	}
	if cur != token {
		return fmt.Errorf("%w: %s holds token %d, not %d", ErrStaleToken, filepath.Join(dir, TokenFileName), cur, token)
	}
	return nil
}

func readToken(dir string) (int64, error) {
	path := filepath.Join(dir, TokenFileName)
	b, err := atomicfile.ReadFile(path) // never through a symlink
	if err != nil {
		return 0, fmt.Errorf("locking: reading token file: %w", err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("locking: token file %s holds %q, not a token", path, strings.TrimSpace(string(b)))
	}
	return v, nil
}
