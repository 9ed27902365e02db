package golden_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mnpool/mnpool/internal/golden"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true; panic(r) }
func (r *recorder) Fatal(...any)          { r.failed = true; panic(r) }

func check(t *testing.T, path string, got []byte) (failed bool) {
	r := &recorder{TB: t}
	defer func() {
		if v := recover(); v != nil && v != r {
			panic(v)
		}
		failed = r.failed
	}()
	golden.Check(r, path, got)
	return r.failed
}

func TestCheck(t *testing.T) {
	if golden.Updating() {
		t.Skip("compares files this test wrote; meaningless with -update")
	}
	path := filepath.Join(t.TempDir(), "x.golden")
	if err := os.WriteFile(path, []byte("a\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if check(t, path, []byte("a\nb\n")) {
		t.Error("same content: Check failed")
	}
	if !check(t, path, []byte("a\nc\n")) {
		t.Error("different content: Check passed")
	}
	if !check(t, filepath.Join(t.TempDir(), "missing.golden"), []byte("a")) {
		t.Error("missing golden file: Check passed")
	}
}
