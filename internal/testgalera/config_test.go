package testgalera

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mnpool/mnpool/internal/testenv"
)

const localDSNs = "mysql:mnpool:mnpool@tcp(127.0.0.11:4401)/mnpool," +
	"mysql:mnpool:mnpool@tcp(127.0.0.12:4402)/mnpool," +
	"mysql:mnpool:mnpool@tcp(127.0.0.13:4403)/mnpool"

func TestParseDSNs(t *testing.T) {
	type parsed struct{ User, Passwd, Addr, DB, Formatted string }
	tests := map[string]struct {
		in      string
		want    []parsed
		wantErr error
	}{
		"local cluster": {
			in: localDSNs,
			want: []parsed{
				{"mnpool", "mnpool", "127.0.0.11:4401", "mnpool", "mysql:mnpool:mnpool@tcp(127.0.0.11:4401)/x"},
				{"mnpool", "mnpool", "127.0.0.12:4402", "mnpool", "mysql:mnpool:mnpool@tcp(127.0.0.12:4402)/x"},
				{"mnpool", "mnpool", "127.0.0.13:4403", "mnpool", "mysql:mnpool:mnpool@tcp(127.0.0.13:4403)/x"},
			},
		},
		"spaces around entries": {
			in:   " mysql:u:p@tcp(10.0.0.1:3306)/db ",
			want: []parsed{{"u", "p", "10.0.0.1:3306", "db", "mysql:u:p@tcp(10.0.0.1:3306)/x"}},
		},
		"no database":       {in: "mysql:u:p@tcp(h:1)/", want: []parsed{{"u", "p", "h:1", "", "mysql:u:p@tcp(h:1)/x"}}},
		"empty":             {in: "", wantErr: ErrNotConfigured},
		"blank":             {in: "  ", wantErr: ErrNotConfigured},
		"missing scheme":    {in: "mnpool:mnpool@tcp(127.0.0.11:4401)/mnpool", wantErr: ErrBadDSN},
		"other scheme":      {in: "sqlite:/tmp/x.db", wantErr: ErrBadDSN},
		"unix socket":       {in: "mysql:u:p@unix(/run/mysqld/mysqld.sock)/db", wantErr: ErrBadDSN},
		"no port":           {in: "mysql:u:p@tcp(127.0.0.11)/db", wantErr: ErrBadDSN},
		"no user":           {in: "mysql:@tcp(127.0.0.11:4401)/db", wantErr: ErrBadDSN},
		"no slash":          {in: "mysql:u:p@tcp(127.0.0.11:4401)", wantErr: ErrBadDSN},
		"empty second item": {in: "mysql:u:p@tcp(h:1)/db,,mysql:u:p@tcp(h:2)/db", wantErr: ErrBadDSN},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			nodes, err := parseDSNs(tc.in)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("parseDSNs(%q) error = %v, want %v", tc.in, err, tc.wantErr)
			}
			var got []parsed
			for _, n := range nodes {
				got = append(got, parsed{n.cfg.User, n.cfg.Passwd, n.cfg.Addr, n.cfg.DBName, n.formatDSN("x")})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parseDSNs(%q) mismatch (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestLoadSettings(t *testing.T) {
	type result struct {
		Action decision
		Dir    string
		Addrs  []string
	}
	addrs := []string{"127.0.0.11:4401", "127.0.0.12:4402", "127.0.0.13:4403"}
	tests := map[string]struct {
		env     map[string]string
		want    result
		wantMsg []string // substrings the message must contain
	}{
		"unset skips": {
			env:     map[string]string{},
			want:    result{Action: skipTest, Dir: "/tmp/mnpool-galera"},
			wantMsg: []string{EnvDSNs, "scripts/galera.sh up"},
		},
		"unset and required fails": {
			env:     map[string]string{EnvRequire: "1"},
			want:    result{Action: failTest, Dir: "/tmp/mnpool-galera"},
			wantMsg: []string{EnvDSNs, "scripts/galera.sh up", EnvRequire},
		},
		"unset and required=true fails": {
			env:     map[string]string{EnvRequire: "true"},
			want:    result{Action: failTest, Dir: "/tmp/mnpool-galera"},
			wantMsg: []string{EnvDSNs},
		},
		"unset and required=0 skips": {
			env:     map[string]string{EnvRequire: "0"},
			want:    result{Action: skipTest, Dir: "/tmp/mnpool-galera"},
			wantMsg: []string{EnvDSNs},
		},
		"bad DSN fails even when not required": {
			env:     map[string]string{EnvDSNs: "postgres://x"},
			want:    result{Action: failTest, Dir: "/tmp/mnpool-galera"},
			wantMsg: []string{"postgres://x", "entry 1"},
		},
		"TMPDIR moves the default directory": {
			env:  map[string]string{EnvDSNs: localDSNs, "TMPDIR": "/var/tmp/x"},
			want: result{Action: useCluster, Dir: "/var/tmp/x/mnpool-galera", Addrs: addrs},
		},
		"MNPOOL_GALERA_DIR wins": {
			env:  map[string]string{EnvDSNs: localDSNs, "TMPDIR": "/var/tmp/x", EnvDir: "/srv/g"},
			want: result{Action: useCluster, Dir: "/srv/g", Addrs: addrs},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := loadSettings(func(k string) string { return tc.env[k] })
			got := result{Action: s.action, Dir: s.dir}
			for _, n := range s.nodes {
				got.Addrs = append(got.Addrs, n.cfg.Addr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("loadSettings mismatch (-want +got):\n%s", diff)
			}
			for _, sub := range tc.wantMsg {
				if !strings.Contains(s.message, sub) {
					t.Errorf("message %q does not contain %q", s.message, sub)
				}
			}
		})
	}
}

// fakeTB records how Open ends. Methods it does not override belong to the
// nil embedded testing.TB and panic, which fails the test loudly.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	skipped  bool
	fatal    bool
	msg      string
	cleanups []func()
}

func (f *fakeTB) Helper()                   {}
func (f *fakeTB) Name() string              { return "fakeTB" }
func (f *fakeTB) Context() context.Context  { return context.Background() }
func (f *fakeTB) Logf(string, ...any)       {}
func (f *fakeTB) Cleanup(fn func())         { f.mu.Lock(); f.cleanups = append(f.cleanups, fn); f.mu.Unlock() }
func (f *fakeTB) Skip(args ...any)          { f.end(&f.skipped, fmt.Sprint(args...)) }
func (f *fakeTB) Skipf(s string, a ...any)  { f.end(&f.skipped, fmt.Sprintf(s, a...)) }
func (f *fakeTB) Fatal(args ...any)         { f.end(&f.fatal, fmt.Sprint(args...)) }
func (f *fakeTB) Fatalf(s string, a ...any) { f.end(&f.fatal, fmt.Sprintf(s, a...)) }

func (f *fakeTB) end(flag *bool, msg string) {
	f.mu.Lock()
	*flag = true
	f.msg = msg
	f.mu.Unlock()
	runtime.Goexit()
}

// runFake runs fn on a fake TB in its own goroutine, as the testing package
// does, and returns the TB once fn returned or ended the test.
func runFake(fn func(testing.TB)) *fakeTB {
	f := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
	return f
}

// TestOpenWithoutCluster checks that Open fails, not skips, a test under
// MNPOOL_REQUIRE_GALERA=1 when no DSNs are set.
func TestOpenWithoutCluster(t *testing.T) {
	tests := map[string]struct {
		require   string
		dsns      string
		wantSkip  bool
		wantFatal bool
	}{
		"not required skips":    {require: "", wantSkip: true},
		"required fails":        {require: "1", wantFatal: true},
		"required=0 skips":      {require: "0", wantSkip: true},
		"bad DSN fails":         {dsns: "mysql:u:p@unix(/x)/db", wantFatal: true},
		"bad DSN fails require": {require: "1", dsns: "x", wantFatal: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Setenv(EnvRequire, tc.require)
			t.Setenv(EnvDSNs, tc.dsns)
			var env *Env
			f := runFake(func(tb testing.TB) { env = Open(tb) })
			if f.skipped != tc.wantSkip || f.fatal != tc.wantFatal {
				t.Fatalf("Open: skipped=%v fatal=%v (%q), want skipped=%v fatal=%v",
					f.skipped, f.fatal, f.msg, tc.wantSkip, tc.wantFatal)
			}
			if env != nil {
				t.Errorf("Open returned an Env after ending the test")
			}
			if tc.dsns == "" && !strings.Contains(f.msg, EnvDSNs) {
				t.Errorf("message %q does not name %s", f.msg, EnvDSNs)
			}
		})
	}
}

func TestFindScriptFrom(t *testing.T) {
	root := t.TempDir()
	withScript := filepath.Join(root, "mod")
	nested := filepath.Join(withScript, "pool", "internal")
	noScript := filepath.Join(root, "bare")
	for _, d := range []string{filepath.Join(withScript, "scripts"), nested, noScript} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(withScript, "go.mod"), filepath.Join(withScript, scriptRelPath), filepath.Join(noScript, "go.mod")} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := map[string]struct {
		from    string
		want    string
		wantErr error
	}{
		"module root":           {from: withScript, want: filepath.Join(withScript, scriptRelPath)},
		"nested package":        {from: nested, want: filepath.Join(withScript, scriptRelPath)},
		"module without script": {from: noScript, wantErr: ErrNoScript},
		"outside any module":    {from: root, wantErr: ErrNoScript},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := findScriptFrom(tc.from)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("findScriptFrom(%s) error = %v, want %v", tc.from, err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("findScriptFrom(%s) = %q, want %q", tc.from, got, tc.want)
			}
		})
	}
}

func lockCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Timeout(d))
	t.Cleanup(cancel)
	return ctx
}

func TestLockSharedAndExclusive(t *testing.T) {
	dir := t.TempDir()
	a, err := acquireLock(lockCtx(t, time.Second), dir, false)
	if err != nil {
		t.Fatalf("first shared lock: %v", err)
	}
	b, err := acquireLock(lockCtx(t, time.Second), dir, false)
	if err != nil {
		t.Fatalf("second shared lock while one is held: %v", err)
	}
	if _, err := acquireLock(lockCtx(t, 200*time.Millisecond), dir, true); !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("exclusive lock while shared are held: error = %v, want %v", err, ErrLockTimeout)
	}
	for _, l := range []*faultLock{a, b} {
		if err := l.release(); err != nil {
			t.Fatal(err)
		}
	}
	x, err := acquireLock(lockCtx(t, time.Second), dir, true)
	if err != nil {
		t.Fatalf("exclusive lock after shared were released: %v", err)
	}
	if _, err := acquireLock(lockCtx(t, 200*time.Millisecond), dir, false); !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("shared lock while exclusive is held: error = %v, want %v", err, ErrLockTimeout)
	}
	if err := x.release(); err != nil {
		t.Fatal(err)
	}
}

// TestLockWriterPreference checks that a waiting fault test blocks new
// ordinary tests, so it cannot be starved.
func TestLockWriterPreference(t *testing.T) {
	dir := t.TempDir()
	reader, err := acquireLock(lockCtx(t, time.Second), dir, false)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		l   *faultLock
		err error
	}
	writer := make(chan result, 1)
	go func() {
		l, err := acquireLock(lockCtx(t, 10*time.Second), dir, true)
		writer <- result{l, err}
	}()
	// Wait until the writer holds the intent lock.
	deadline := time.Now().Add(testenv.Timeout(5 * time.Second))
	for {
		probe, err := acquireLock(lockCtx(t, 100*time.Millisecond), dir, false)
		if err != nil {
			break // blocked: the writer is waiting with intent
		}
		probe.release()
		if time.Now().After(deadline) {
			t.Fatal("a new shared lock was still granted while a writer waited")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := reader.release(); err != nil {
		t.Fatal(err)
	}
	w := <-writer
	if w.err != nil {
		t.Fatalf("writer after the reader released: %v", w.err)
	}
	if err := w.l.release(); err != nil {
		t.Fatal(err)
	}
	if l, err := acquireLock(lockCtx(t, time.Second), dir, false); err != nil {
		t.Fatalf("shared lock after the writer released: %v", err)
	} else {
		l.release()
	}
}
