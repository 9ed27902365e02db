// Package golden compares test output with golden files, and rewrites
// them when the test binary runs with -update:
//
//	go test ./dns -run TestZones -update
//
// Check the diff (git diff testdata/) before committing rewritten files.
// Only tests import this package; it registers the -update flag on the
// test binary's command line.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Updating reports whether the test runs with -update.
func Updating() bool { return *update }

// Check compares got with the file at path (relative to the package
// directory, usually under testdata/) and reports a difference as a test
// error with a -want +got diff. With -update it writes got to path first
// (creating its directory), so the comparison passes.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file %s: %v (run go test -run '%s' -update to create it)", path, err, t.Name())
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs from the golden file (-want +got; go test -run '%s' -update rewrites it after you checked the change):\n%s", path, t.Name(), diff)
	}
}
