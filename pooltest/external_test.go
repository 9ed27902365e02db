package pooltest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestImportableFromAnotherModule builds and runs, in a module of its own
// (as a product's repository is), a test that imports pooltest: pooltest
// uses mnpool's internal packages, which another module may not import
// directly but gets through pooltest. No network: modules come from the
// local module cache (GOPROXY=off).
func TestImportableFromAnotherModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds another module")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	goMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := "go 1.24"
	for _, l := range strings.Split(string(goMod), "\n") {
		if strings.HasPrefix(l, "go ") {
			goLine = l
		}
	}
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/product\n\n"+goLine+"\n\nrequire github.com/mnpool/mnpool v0.0.0\n\nreplace github.com/mnpool/mnpool => "+root+"\n")
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write("go.sum", string(sum))
	write("product_test.go", `package product

import (
	"context"
	"testing"

	"github.com/mnpool/mnpool/pooltest"
)

func TestSeededPool(t *testing.T) {
	p := pooltest.New(t, pooltest.WithNodes(10))
	st, err := p.Store.LoadState(context.Background())
	if err != nil || len(st.Nodes) != 10 || st.Master.Member != "mn1" {
		t.Fatalf("LoadState: %v, %d nodes, MN %q", err, len(st.Nodes), st.Master.Member)
	}
}
`)
	cmd := exec.Command(goCommand(), "test", "-count=1", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test in a product module: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "ok  \texample.com/product") {
		t.Fatalf("unexpected output:\n%s", out)
	}
}

// goCommand is the go command of the toolchain that built this test
// (go test sets GOROOT), else the one on PATH.
func goCommand() string {
	for _, root := range []string{os.Getenv("GOROOT"), runtime.GOROOT()} {
		if p := filepath.Join(root, "bin", "go"); root != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	return "go"
}
