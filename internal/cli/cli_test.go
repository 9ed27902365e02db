package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/cli"
)

// mnpool runs the mnpool command in-process and returns its exit status,
// stdout and stderr.
func mnpool(t *testing.T, db string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Mnpool(context.Background(), append([]string{"--db", db}, args...), cli.IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func mustRun(t *testing.T, db string, args ...string) string {
	t.Helper()
	code, out, errs := mnpool(t, db, args...)
	require.Equal(t, 0, code, "mnpool %v: %s", args, errs)
	return out
}

func newPool(t *testing.T) string {
	db := "sqlite:" + filepath.Join(t.TempDir(), "pool.db")
	mustRun(t, db, "--self", "mn1", "init", "--mn", "mn1")
	mustRun(t, db, "network", "add", "mgmt", "10.0.0.0/16", "--gateway", "10.0.0.254", "--dynamic-range", "10.0.255.1-10.0.255.200")
	mustRun(t, db, "member", "set", "mn1", "--ip", "mgmt=10.0.0.1")
	mustRun(t, db, "member", "add", "sn1", "--ip", "mgmt=10.0.0.2")
	mustRun(t, db, "member", "add", "sn2", "--ip", "mgmt=10.0.0.3", "--services", "dhcp,dns")
	return db
}

func TestImportIsAllOrNothing(t *testing.T) {
	db := newPool(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte("node,ip,mac,groups,servicenodes\ncn001,10.0.1.1,00:1a:2b:3c:4d:01,\"compute,rack1\",\"sn1,sn2\"\ncn002,10.0.255.5,00:1a:2b:3c:4d:02,compute,\"sn2,mn1\"\n"), 0o600))
	code, _, errs := mnpool(t, db, "node", "import", bad)
	require.Equal(t, 2, code)
	require.Contains(t, errs, "row 3 (cn002)")
	require.Contains(t, errs, "dynamic range")
	require.Contains(t, errs, "nothing was imported")
	out := mustRun(t, db, "node", "list", "--json")
	require.JSONEq(t, "[]", out)

	good := filepath.Join(dir, "good.csv")
	require.NoError(t, os.WriteFile(good, []byte("node,ip,mac,groups,servicenodes\ncn001,10.0.1.1,00:1a:2b:3c:4d:01,\"compute,rack1\",\"sn1,sn2\"\ncn002,10.0.1.2,00-1A-2B-3C-4D-02,compute,\"sn2,mn1\"\n"), 0o600))
	require.Contains(t, mustRun(t, db, "node", "import", good), "2 nodes imported")
	var nodes []struct {
		Name         string   `json:"name"`
		MACs         []string `json:"macs"`
		ServiceNodes []string `json:"servicenodes"`
	}
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, db, "node", "list", "--json")), &nodes))
	require.Len(t, nodes, 2)
	require.Equal(t, []string{"00:1a:2b:3c:4d:02"}, nodes[1].MACs)
	require.Equal(t, []string{"sn2", "mn1"}, nodes[1].ServiceNodes)
}

func TestBadInputNamesTheValue(t *testing.T) {
	db := newPool(t)
	cases := []struct {
		args    []string
		code    int
		mention string
	}{
		{[]string{"node", "add", "cn_1"}, 2, `"cn_1"`},
		{[]string{"node", "add", "cn1", "--ip", "10.0.1.x"}, 2, `"10.0.1.x"`},
		{[]string{"member", "add", "sn3", "--ip", "mgmt"}, 2, "NETWORK=IP"},
		{[]string{"member", "add", "sn3", "--services", "httpd"}, 2, `"httpd"`},
		{[]string{"network", "add", "x", "not-a-cidr"}, 2, `"not-a-cidr"`},
		{[]string{"site", "set", "disjointdhcps=2"}, 2, "want 0 or 1"},
		{[]string{"member", "remove", "mn1"}, 1, "makemn"},
		{[]string{"bogus"}, 2, "unknown command"},
		{[]string{"node", "list", "nope"}, 2, "nope"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, errs := mnpool(t, db, c.args...)
			require.Equal(t, c.code, code, errs)
			require.Contains(t, errs, c.mention)
		})
	}
}

func TestEveryMemberCanRunCommands(t *testing.T) {
	db := newPool(t)
	// An SN acts on the MN and on another SN; the audit log records who.
	mustRun(t, db, "--self", "sn1", "member", "set", "mn1", "--services", "dhcp,dns,ntp")
	mustRun(t, db, "--self", "sn2", "member", "set", "sn1", "--disable")
	out := mustRun(t, db, "audit", "--json")
	var log []struct {
		Member string `json:"member"`
		Action string `json:"action"`
		Target string `json:"target"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &log))
	require.Equal(t, "sn2", log[0].Member)
	require.Equal(t, "sn1", log[0].Target)
	require.Equal(t, "sn1", log[1].Member)
	require.Equal(t, "mn1", log[1].Target)
	status := mustRun(t, db, "status")
	require.Contains(t, status, "mn1 (epoch 1)")
	require.Regexp(t, `sn1\s+SN\s+disabled`, status)
}

func TestSSHKeysCommands(t *testing.T) {
	db := newPool(t)
	mustRun(t, db, "node", "add", "cn001", "--ip", "10.0.1.1", "--servicenodes", "sn1,sn2")
	keys := filepath.Join(t.TempDir(), "keys")
	mustRun(t, db, "sshkeys", "init", "--dir", keys)
	show := mustRun(t, db, "sshkeys", "show", "--dir", keys)
	require.Contains(t, show, "pool")
	require.Contains(t, show, "compute")
	member := mustRun(t, db, "sshkeys", "authorized-keys", "--dir", keys, "--member", "sn1")
	node := mustRun(t, db, "sshkeys", "authorized-keys", "--dir", keys, "--node", "cn001")
	// The node file accepts one more key (the compute key) than the member's.
	require.Equal(t, strings.Count(member, "ssh-ed25519")+1, strings.Count(node, "ssh-ed25519"))
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	require.NoError(t, os.WriteFile(good, []byte(member), 0o600))
	require.NoError(t, os.WriteFile(bad, []byte(node), 0o600))
	code, out, _ := mnpool(t, db, "sshkeys", "audit", "--dir", keys, good)
	require.Equal(t, 0, code, out)
	code, out, _ = mnpool(t, db, "sshkeys", "audit", "--dir", keys, bad)
	require.Equal(t, 1, code)
	require.Contains(t, out, "compute-key-on-member")
	code, _, errs := mnpool(t, db, "sshkeys", "authorized-keys", "--dir", keys, "--member", "nope")
	require.Equal(t, 2, code)
	require.Contains(t, errs, "nope")
	require.NotContains(t, show+member+node, "PRIVATE KEY")
}

func TestNoderangeSelection(t *testing.T) {
	db := newPool(t)
	for i, g := range []string{"rack1", "rack1", "rack2"} {
		mustRun(t, db, "node", "add", "cn00"+string(rune('1'+i)), "--groups", "compute,"+g)
	}
	out := mustRun(t, db, "node", "list", "rack1,-cn001")
	require.Contains(t, out, "cn002")
	require.NotContains(t, out, "cn001")
	require.NotContains(t, out, "cn003")
	out = mustRun(t, db, "node", "list", "cn[001-003]", "--json")
	require.Equal(t, 3, strings.Count(out, `"name"`))
	code, _, errs := mnpool(t, db, "node", "remove", "cn001,cn099,foo")
	require.Equal(t, 2, code)
	require.Contains(t, errs, "cn099")
	require.Contains(t, errs, "foo")
	require.Equal(t, 3, strings.Count(mustRun(t, db, "node", "list", "--json"), `"name"`), "nothing was removed")
	mustRun(t, db, "node", "remove", "/cn00[12]")
	require.Equal(t, 1, strings.Count(mustRun(t, db, "node", "list", "--json"), `"name"`))
}

func TestMistakesAtThreeAM(t *testing.T) {
	db := newPool(t)
	cases := []struct {
		name    string
		db      string
		args    []string
		code    int
		mention string
	}{
		{"typo in the database path creates nothing", "sqlite:" + filepath.Join(t.TempDir(), "typo.db"), []string{"status"}, 1, "mnpool init"},
		{"unknown subcommand of a group", db, []string{"node", "lst"}, 2, `did you mean list`},
		{"group all is reserved", db, []string{"node", "add", "cn9", "--groups", "all"}, 2, "reserved"},
		{"group named like a member", db, []string{"node", "add", "cn9", "--groups", "sn1"}, 2, "name of a member"},
		{"member on the network address", db, []string{"member", "add", "sn4", "--ip", "mgmt=10.0.0.0"}, 2, "network address"},
		{"member on the broadcast address", db, []string{"member", "add", "sn4", "--ip", "mgmt=10.0.255.255"}, 2, "broadcast"},
		{"missing argument names the usage", db, []string{"member", "add"}, 2, "Usage: mnpool member add NAME"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := mnpool(t, c.db, c.args...)
			require.Equal(t, c.code, code, errs)
			require.Contains(t, errs, c.mention)
			require.NotContains(t, errs, " pool: ", "library package tags are left out for people")
		})
	}
	_, err := os.Stat(strings.TrimPrefix(cases[0].db, "sqlite:"))
	require.ErrorIs(t, err, os.ErrNotExist, "a typo in --db must not create a database")
	code, out, _ := mnpool(t, db, "--version")
	require.Equal(t, 0, code)
	require.Contains(t, out, "mnpool version")
}
