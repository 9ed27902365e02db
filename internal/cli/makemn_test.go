package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/dns/dnstest"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/makemn"
	"github.com/mnpool/mnpool/pool"
)

// cliRun runs a program's main function and returns its exit status,
// stdout and stderr.
func cliRun(t *testing.T, main func(context.Context, []string, IO) int, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := main(context.Background(), args, IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

// makemnPool creates a pool with MN mn1 and SNs sn1, sn2 through the
// mnpool command and returns its --db argument.
func makemnPool(t *testing.T) string {
	t.Helper()
	db := "sqlite:" + filepath.Join(t.TempDir(), "pool.db")
	for _, args := range [][]string{
		{"network", "add", "mgmt", "10.0.0.0/16", "--dynamic-range", "10.0.200.1-10.0.200.254"},
		{"init", "--mn", "mn1", "--ip", "mgmt=10.0.0.1"},
		{"member", "add", "sn1", "--ip", "mgmt=10.0.0.2"},
		{"member", "add", "sn2", "--ip", "mgmt=10.0.0.3"},
	} {
		code, out, errOut := cliRun(t, Mnpool, append([]string{"--db", db}, args...)...)
		require.Equal(t, 0, code, "mnpool %v: %s%s", args, out, errOut)
	}
	return db
}

func TestMakemnCommand(t *testing.T) {
	db := makemnPool(t)
	root := t.TempDir()
	hookOut := filepath.Join(t.TempDir(), "hook.out")
	hook := filepath.Join(t.TempDir(), "hook.sh")
	require.NoError(t, os.WriteFile(hook, []byte("#!/bin/sh\necho \"$@\" >> "+hookOut+"\n"), 0o755))
	clean := func(s string) string {
		return strings.NewReplacer(root, "ROOT", db, "DB", strings.TrimPrefix(db, "sqlite:"), "DBFILE", hook, "HOOK").Replace(s)
	}

	// Dry run: checks and plan, nothing changed.
	code, out, errOut := cliRun(t, Makemn, "--db", db, "--self", "sn1", "--root", root, "--dry-run", "--hold", "0")
	require.Equal(t, 0, code, errOut)
	dnstest.Golden(t, "makemn-dry-run.golden", []byte(clean(out)))
	_, err := os.Stat(filepath.Join(root, "etc/xCATMN"))
	require.ErrorIs(t, err, os.ErrNotExist)

	code, out, errOut = cliRun(t, Makemn, "--db", db, "--self", "sn1", "--root", root, "--hold", "0", "--sync-hook", hook+" --flag")
	require.Equal(t, 0, code, out+errOut)
	dnstest.Golden(t, "makemn.golden", []byte(clean(out)))
	require.FileExists(t, filepath.Join(root, "etc/xCATMN"))
	b, err := os.ReadFile(hookOut)
	require.NoError(t, err)
	require.Equal(t, "--flag sn1 MN 2 yes\n", string(b), "the hook gets its own arguments, then MEMBER ROLE EPOCH DYNAMIC")

	// The old MN syncs and becomes an SN.
	oldRoot := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(oldRoot, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(oldRoot, "etc/xCATMN"), nil, 0o644))
	code, out, errOut = cliRun(t, Mnpool, "--db", db, "--self", "mn1", "sync", "--root", oldRoot)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "mn1 is SN; the MN is sn1 (epoch 2); dynamic range not served here")
	require.FileExists(t, filepath.Join(oldRoot, "etc/xCATSN"))
	require.NoFileExists(t, filepath.Join(oldRoot, "etc/xCATMN"))

	// The dynamic range moved with the role: the new MN's dhcpd.conf has
	// it, the old MN's has none.
	newConf, err := os.ReadFile(filepath.Join(root, "etc/dhcp/dhcpd.conf"))
	require.NoError(t, err)
	oldConf, err := os.ReadFile(filepath.Join(oldRoot, "etc/dhcp/dhcpd.conf"))
	require.NoError(t, err)
	rangeLine := regexp.MustCompile(`(?m)^\s*range \d`)
	require.Regexp(t, rangeLine, string(newConf))
	require.NotRegexp(t, rangeLine, string(oldConf))

	// --json: one report, no progress lines.
	code, out, errOut = cliRun(t, Makemn, "--db", db, "--self", "sn2", "--root", t.TempDir(), "--hold", "0", "--json")
	require.Equal(t, 0, code, errOut)
	var rep makemn.Outcome
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	require.True(t, rep.OK)
	require.Equal(t, pool.Master{Member: "sn2", Epoch: 3}, rep.Master)
	require.Equal(t, pool.Master{Member: "sn1", Epoch: 2}, rep.Previous)
}

func TestMakemnFailures(t *testing.T) {
	db := makemnPool(t)
	tests := []struct {
		name    string
		args    []string
		code    int
		errPart string
		outPart string
	}{
		{name: "not a member", args: []string{"--self", "cn1"}, code: 2, errPart: "makemn: cn1 is not a member of the pool (the name is from --self", outPart: ""},
		{name: "bad db address", args: []string{"--self", "sn1", "--db-address", "sn1=not-an-ip"}, code: 2, errPart: `--db-address "sn1=not-an-ip": "not-an-ip" is not an IP address`},
		{name: "db address without member", args: []string{"--self", "sn1", "--db-address", "10.0.0.9"}, code: 2, errPart: "want MEMBER=IP"},
		{name: "bad self", args: []string{"--self", "sn1;reboot"}, code: 2, errPart: "--self"},
		{name: "negative hold", args: []string{"--self", "sn1", "--hold", "-1s"}, code: 2, errPart: "--hold -1s: must not be negative"},
		{name: "arguments", args: []string{"--self", "sn1", "extra"}, code: 2, errPart: "unknown command"},
		{name: "empty root", args: []string{"--self", "sn1", "--root", ""}, code: 2, errPart: "--root: must not be empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := cliRun(t, Makemn, append([]string{"--db", db}, tc.args...)...)
			require.Equal(t, tc.code, code, out+errOut)
			require.Contains(t, errOut, tc.errPart)
			require.Contains(t, out, tc.outPart)
		})
	}
	// Nothing was promoted by any of them.
	code, out, _ := cliRun(t, Mnpool, "--db", db, "status", "--json")
	require.Equal(t, 0, code)
	require.Contains(t, out, `"epoch": 1`)
}

// TestMakemnUsesPublishedLiveness: sn1 and sn2 heartbeat and publish what
// they see; mn1 is silent. makemn reports both from the published view.
func TestMakemnUsesPublishedLiveness(t *testing.T) {
	db := makemnPool(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for _, self := range []string{"sn1", "sn2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			Mnpool(ctx, []string{"--db", db, "--self", self, "heartbeat", "--interval", "20ms", "--publish", "--suspect", "150ms", "--dead", "300ms"}, IO{In: strings.NewReader(""), Out: &out, Err: &out})
		}()
	}
	var out string
	require.Eventually(t, func() bool {
		var code int
		code, out, _ = cliRun(t, Makemn, "--db", db, "--self", "sn1", "--root", t.TempDir(), "--dry-run")
		// Under load a heartbeat may lag for a moment: wait for both.
		return code == 0 && strings.Contains(out, "is dead") && strings.Contains(out, "liveness alive")
	}, testenv.Timeout(20*time.Second), 100*time.Millisecond, "mn1 is published dead and sn1 alive")
	require.Contains(t, out, "sn1 is an enabled member, liveness alive")
	require.Contains(t, out, "mn1 (MN of epoch 1) is dead: when it comes back it reads the new master record and stays an SN")
}
