package locking_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mnpool/mnpool/locking"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// flockNB tries an exclusive flock on path from a separate open file.
func flockNB(t *testing.T, path string) (*os.File, error) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func TestInstall(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		dir := filepath.Join(t.TempDir(), "install", "netboot", "rhels9")
		a, b := e.locker(t, 1), e.locker(t, 2)
		il, err := a.Install(ctx, dir+"/")
		if err != nil {
			t.Fatalf("Install: %v", err)
		}
		if il.Dir() != dir || il.Name() != "install:"+dir {
			t.Errorf("Install: dir %q name %q, want %q and install:%s", il.Dir(), il.Name(), dir, dir)
		}
		if got := readFile(t, filepath.Join(dir, locking.TokenFileName)); got != "1\n" {
			t.Errorf("token file %q, want \"1\\n\"", got)
		}
		if err := locking.CheckToken(dir, 1); err != nil {
			t.Errorf("CheckToken(1): %v", err)
		}
		if err := il.Check(); err != nil {
			t.Errorf("Check: %v", err)
		}
		if err := locking.CheckToken(dir, 0); !errors.Is(err, locking.ErrStaleToken) {
			t.Errorf("CheckToken(0): %v, want ErrStaleToken", err)
		}
		if _, err := flockNB(t, filepath.Join(dir, locking.LockFileName)); !errors.Is(err, syscall.EWOULDBLOCK) {
			t.Errorf("flock of the lock file while held: %v, want EWOULDBLOCK", err)
		}
		got := make(chan *locking.InstallLock)
		go func() {
			il2, err := b.Install(ctx, dir)
			if err != nil {
				t.Error(err)
			}
			got <- il2
		}()
		waitFor(t, 5*time.Second, "the second member to queue", func() bool { return lockInfo(t, a, il.Name()).Waiters == 1 })
		if err := il.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
		il2 := <-got
		if il2 == nil {
			t.FailNow()
		}
		if il2.Token() != 2 || readFile(t, filepath.Join(dir, locking.TokenFileName)) != "2\n" {
			t.Errorf("second holder: token %d, file %q; want 2", il2.Token(), readFile(t, filepath.Join(dir, locking.TokenFileName)))
		}
		if err := locking.CheckToken(dir, 1); !errors.Is(err, locking.ErrStaleToken) || !strings.Contains(err.Error(), "holds token 2, not 1") {
			t.Errorf("CheckToken with the old token: %v, want ErrStaleToken naming both tokens", err)
		}
		if err := il.Check(); !errors.Is(err, locking.ErrNotHeld) {
			t.Errorf("Check of the released lock: %v, want ErrNotHeld", err)
		}
		if err := il2.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
		if f, err := flockNB(t, filepath.Join(dir, locking.LockFileName)); err != nil {
			t.Errorf("flock after Unlock: %v, want it free", err)
		} else {
			f.Close()
		}
	})
}

// TestInstallWaitsForFlock: a process that holds the flock without the
// database lease (an older holder that is paused, or a tool that only
// uses flock) keeps Install waiting; when ctx ends Install gives the
// lease back.
func TestInstallWaitsForFlock(t *testing.T) {
	ctx := context.Background()
	e := backends()[0].open(t)
	lk := e.locker(t, 1)
	dir := t.TempDir()
	f, err := flockNB(t, filepath.Join(dir, locking.LockFileName))
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = lk.Install(c, dir)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "flock") {
		t.Fatalf("Install while the flock is held elsewhere: %v, want a deadline error about the flock", err)
	}
	name, _ := locking.InstallName(dir)
	if in := lockInfo(t, lk, name); in.Held {
		t.Fatalf("lease still held after Install failed: %+v", in)
	}
	time.AfterFunc(200*time.Millisecond, func() { f.Close() })
	il, err := lk.Install(ctx, dir)
	if err != nil {
		t.Fatalf("Install once the flock is released: %v", err)
	}
	if err := il.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestInstallName(t *testing.T) {
	for _, tc := range []struct {
		name, dir, want, err string
	}{
		{"plain", "/install/netboot/rhels9/x86_64", "install:/install/netboot/rhels9/x86_64", ""},
		{"cleaned", "/install//post/../postscripts/", "install:/install/postscripts", ""},
		{"relative", "install/netboot", "", "not an absolute path"},
		{"too long", "/install/" + strings.Repeat("d", 250), "", "bytes"},
		{"control", "/install/a\tb", "", "control characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := locking.InstallName(tc.dir)
			if tc.err == "" {
				if err != nil || got != tc.want {
					t.Errorf("InstallName = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, locking.ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("InstallName error %v, want ErrInvalid containing %q", err, tc.err)
			}
		})
	}
}
