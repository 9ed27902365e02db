package testgalera

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mnpool/mnpool/internal/testenv"
)

// ErrNoScript: scripts/galera.sh was not found.
var ErrNoScript = errors.New("testgalera: cluster script not found")

// scriptRelPath is where the script lives relative to the module root.
const scriptRelPath = "scripts/galera.sh"

// findScript returns override when set, else scripts/galera.sh in the
// nearest directory at or above the working directory that holds go.mod.
func findScript(override string) (string, error) {
	if override != "" {
		if _, err := os.Stat(override); err != nil {
			return "", fmt.Errorf("%w: %s=%s: %w", ErrNoScript, EnvScript, override, err)
		}
		return override, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoScript, err)
	}
	return findScriptFrom(wd)
}

func findScriptFrom(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			p := filepath.Join(d, scriptRelPath)
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("%w: module root %s has no %s: %w", ErrNoScript, d, scriptRelPath, err)
			}
			return p, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%w: no go.mod at or above %s (set %s)", ErrNoScript, dir, EnvScript)
		}
	}
}

// runScript runs the cluster script with args for the cluster in e.dir.
func (e *Env) runScript(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, e.script, args...)
	cmd.Env = append(os.Environ(), EnvDir+"="+e.dir)
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("testgalera: %s %s: %w\n%s", e.script, strings.Join(args, " "), err, out.Bytes())
	}
	return out.Bytes(), nil
}

// checkScriptMatches makes sure node n of MNPOOL_TEST_DSNS is node n of
// the script's cluster, so that a fault method hits the node the test means.
func (e *Env) checkScriptMatches(ctx context.Context) error {
	out, err := e.runScript(ctx, "env")
	if err != nil {
		return err
	}
	var scriptDSNs string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "export "+EnvDSNs+"="); ok {
			scriptDSNs = strings.Trim(v, "'")
		}
	}
	nodes, err := parseDSNs(scriptDSNs)
	if err != nil {
		return fmt.Errorf("testgalera: output of %s env: %w", e.script, err)
	}
	got := make([]string, len(e.nodes))
	for i, n := range e.nodes {
		got[i] = n.cfg.Addr
	}
	want := make([]string, len(nodes))
	for i, n := range nodes {
		want[i] = n.cfg.Addr
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("testgalera: %s lists nodes %v but the script's cluster (%s=%s) has %v; "+
			"fault tests need the script's cluster", EnvDSNs, got, EnvDir, e.dir, want)
	}
	return nil
}

// fault runs one fault command against node n, recording what it did first
// so that cleanup can undo it even when the command fails half way.
func (e *Env) fault(t testing.TB, verb string, n int, set, clear fault) {
	t.Helper()
	e.checkNode(t, n)
	if !e.faults {
		t.Fatalf("testgalera: %s node %d: fault methods need testgalera.Open(t, testgalera.WithFaults())", verb, n)
		return
	}
	e.mu.Lock()
	e.touched[n] |= set
	e.mu.Unlock()
	t.Logf("testgalera: %s node %d (%s)", verb, n, e.nodes[n-1].cfg.Addr)
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Timeout(RestoreTimeout))
	defer cancel()
	if _, err := e.runScript(ctx, verb, strconv.Itoa(n)); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.touched[n] &^= clear
	e.mu.Unlock()
}

// Kill sends SIGKILL to node n's mariadbd (a crash) and waits until it is gone.
func (e *Env) Kill(t testing.TB, n int) {
	t.Helper()
	e.fault(t, "kill", n, faultDown, faultPaused|faultIsolated)
}

// Stop shuts node n down gracefully.
func (e *Env) Stop(t testing.TB, n int) {
	t.Helper()
	e.fault(t, "stop", n, faultDown, faultPaused|faultIsolated)
}

// Start starts a stopped or killed node n and waits until it has rejoined
// (IST or SST) and is Synced. When every node is down, the script first
// bootstraps the most advanced node.
func (e *Env) Start(t testing.TB, n int) {
	t.Helper()
	e.fault(t, "start", n, 0, faultDown|faultPaused)
}

// Pause sends SIGSTOP to node n's mariadbd. Its peers drop it after the
// Galera failure detection time (docs/GALERA.md).
func (e *Env) Pause(t testing.TB, n int) {
	t.Helper()
	e.fault(t, "pause", n, faultPaused, 0)
}

// Resume sends SIGCONT to node n's mariadbd. It does not wait; use
// WaitSynced.
func (e *Env) Resume(t testing.TB, n int) {
	t.Helper()
	e.fault(t, "resume", n, 0, faultPaused)
}

// Isolate cuts node n off from its peers
// (SET GLOBAL wsrep_provider_options='gmcast.isolate=1'). Once the peers
// notice, node n is non-Primary and its table reads and writes fail with
// MySQL error 1047, while the others form a Primary component.
func (e *Env) Isolate(t testing.TB, n int) {
	t.Helper()
	e.fault(t, "isolate", n, faultIsolated, 0)
}

// Heal undoes Isolate (gmcast.isolate=0). It does not wait; use WaitSynced.
func (e *Env) Heal(t testing.TB, n int) {
	t.Helper()
	e.fault(t, "heal", n, 0, faultIsolated)
}

// restore is the WithFaults cleanup: resume, heal and start what the test
// left broken, then wait until the whole cluster is Synced.
func (e *Env) restore() {
	e.mu.Lock()
	touched := make(map[int]fault, len(e.touched))
	for n, f := range e.touched {
		if f != 0 {
			touched[n] = f
		}
	}
	e.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), testenv.Timeout(RestoreTimeout))
	defer cancel()
	var errs []error
	for _, n := range slices.Sorted(maps.Keys(touched)) {
		f := touched[n]
		if f&faultPaused != 0 {
			if _, err := e.runScript(ctx, "resume", strconv.Itoa(n)); err != nil && f&faultDown == 0 {
				errs = append(errs, err)
			}
		}
		if f&faultIsolated != 0 && f&faultDown == 0 {
			if _, err := e.runScript(ctx, "heal", strconv.Itoa(n)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(touched) > 0 {
		e.t.Logf("testgalera: restoring the cluster after faults on nodes %v", slices.Sorted(maps.Keys(touched)))
		// up starts every node that is down and waits until all are Synced.
		if _, err := e.runScript(ctx, "up"); err != nil {
			errs = append(errs, err)
		}
	}
	if err := e.waitHealthy(ctx); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		e.t.Errorf("testgalera: could not restore the cluster: %v", errors.Join(errs...))
	}
}
