package doctest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/cli"
	"github.com/mnpool/mnpool/internal/doctest"
)

// TestMain makes the test binary act as the five real programs when
// testscript runs them (testscript's Main: each name is put on the
// script's PATH and runs the program's main function).
func TestMain(m *testing.M) {
	program := func(main func(context.Context, []string, cli.IO) int) func() {
		return func() {
			os.Exit(main(context.Background(), os.Args[1:], cli.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}))
		}
	}
	testscript.Main(m, map[string]func(){
		"mnpool":   program(cli.Mnpool),
		"snmove":   program(cli.Snmove),
		"makedhcp": program(cli.Makedhcp),
		"makemn":   program(cli.Makemn),
		"mnpoold":  program(cli.Mnpoold),
	})
}

const repo = "../.."

// docFiles are the Markdown files whose runnable blocks are tested.
func docFiles(t *testing.T) []string {
	files, err := filepath.Glob(filepath.Join(repo, "docs", "*.md"))
	require.NoError(t, err)
	return append([]string{filepath.Join(repo, "README.md")}, files...)
}

// writeScripts writes one testscript script per doc with runnable blocks
// into a new directory and returns it.
func writeScripts(t *testing.T, docs map[string][]byte) string {
	dir := t.TempDir()
	for name, md := range docs {
		steps, err := doctest.Extract(md)
		require.NoError(t, err, name)
		if len(steps) == 0 {
			continue
		}
		script := doctest.Script(name, steps)
		file := strings.NewReplacer("/", "_", ".md", "").Replace(name) + ".txtar"
		require.NoError(t, os.WriteFile(filepath.Join(dir, file), []byte(script), 0o644))
	}
	return dir
}

func params(dir string) testscript.Params {
	return testscript.Params{
		Dir:                 dir,
		RequireExplicitExec: false,
		Setup: func(env *testscript.Env) error {
			// The sample files the docs use (examples/nodes.csv), by the
			// same relative path as in a clone.
			csvs, err := filepath.Glob(filepath.Join(repo, "examples", "*.csv"))
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Join(env.WorkDir, "examples"), 0o755); err != nil {
				return err
			}
			for _, f := range csvs {
				b, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(env.WorkDir, "examples", filepath.Base(f)), b, 0o644); err != nil {
					return err
				}
			}
			// Never the host's /etc/mnpool/db: a doc that forgets to say
			// which database gets a scratch one.
			env.Setenv("MNPOOL_DB", "sqlite:"+filepath.Join(env.WorkDir, "pool.db"))
			env.Setenv(cli.EnvSelf, "")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){"doc": docCmd},
	}
}

// docCmd runs "doc STATUS PROGRAM ARGS..." and checks the exit status.
func docCmd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: doc STATUS PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("doc: status %q: %v", args[0], err)
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("%s: %v", strings.Join(args[1:], " "), err)
	}
	if got != want {
		ts.Fatalf("%s exited %d; the doc says %d", strings.Join(args[1:], " "), got, want)
	}
}

// TestDocs runs every runnable block of README.md and docs/*.md with the
// real programs against SQLite.
func TestDocs(t *testing.T) {
	docs := map[string][]byte{}
	for _, f := range docFiles(t) {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		rel, err := filepath.Rel(repo, f)
		require.NoError(t, err)
		docs[rel] = b
	}
	dir := writeScripts(t, docs)
	scripts, err := filepath.Glob(filepath.Join(dir, "*.txtar"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(scripts), 2, "README.md and docs/SSHKEYS.md have runnable blocks")
	testscript.Run(t, params(dir))
}

// recorder is a testscript.T that records a failure instead of failing
// the test, to show that a broken doc fails.
type recorder struct {
	mu     sync.Mutex
	failed bool
	log    strings.Builder
}

func (r *recorder) Skip(args ...any)  { r.Log(args...); runtime.Goexit() }
func (r *recorder) Fatal(args ...any) { r.Log(args...); r.FailNow() }
func (r *recorder) Parallel()         {}
func (r *recorder) Verbose() bool     { return false }
func (r *recorder) Log(args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintln(&r.log, args...)
}
func (r *recorder) FailNow() {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
	runtime.Goexit()
}
func (r *recorder) Run(_ string, f func(testscript.T)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
}

// A doc whose command output, exit status or command changed fails.
func TestBrokenDocFails(t *testing.T) {
	good := "<!-- doctest -->\n```sh\n$ mnpool init --mn mn1\npool initialized: MN mn1, epoch 1\n$ mnpool node list cn_1\n[exit 2]\n```\n"
	for name, md := range map[string]string{
		"good":           good,
		"wrong output":   strings.Replace(good, "epoch 1", "epoch 7", 1),
		"wrong status":   strings.Replace(good, "[exit 2]", "[exit 1]", 1),
		"renamed flag":   strings.Replace(good, "--mn mn1", "--master mn1", 1),
		"unknown output": strings.Replace(good, "epoch 1\n", "epoch 1\nnetworks: none\n", 1),
	} {
		t.Run(name, func(t *testing.T) {
			dir := writeScripts(t, map[string][]byte{"X.md": []byte(md)})
			r := &recorder{}
			testscript.RunT(r, params(dir))
			require.Equal(t, name != "good", r.failed, r.log.String())
		})
	}
}
