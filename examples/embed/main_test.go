package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestEmbedRuns runs `go run .` (this example, as a user would) against
// its demo SQLite pool: it must exit 0 and print the report of each
// operation and the agent's output.
func TestEmbedRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example")
	}
	cmd := exec.Command(goCommand(), "run", ".", "--for", "1s")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go run ./examples/embed: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	for _, want := range []string{
		"== makemn sn1 (makemn.RunUnlocked)\n",
		`"master": {` + "\n" + `    "member": "sn1",`,
		"== snmove -s mn1 (pool.Store.Move)\n",
		`"moved": 10,`,
		"== snmove: node reconfiguration (nodecfg.Reconfigure)\n",
		`"reconfigured": 10,`,
		"would write /etc/resolv.conf on cn01 (10.0.1.1)",
		"== makedhcp on sn1 (dhcp)\n",
		`"nodes": 20,`,
		"# nodes served by mn1 (role SN, MN sn1 epoch 2)\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", out, stderr.String())
	}
	if !strings.Contains(stderr.String(), `msg="agent: running"`) {
		t.Errorf("the agent did not run:\n%s", stderr.String())
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
