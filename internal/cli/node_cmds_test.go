package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The CLI side of issue 18: node set/show, import --replace that changes
// only the file's columns, names, site keys, audit --check, export and
// import-xcat --merge.
func TestNodeDataCommands(t *testing.T) {
	db := newPool(t)
	mustRun(t, db, "node", "add", "cn001", "--ip", "10.0.1.1", "--mac", "02:00:00:00:00:01", "--groups", "compute,rack1", "--servicenodes", "sn1,sn2")
	mustRun(t, db, "node", "add", "cn002", "--ip", "10.0.1.2", "--groups", "compute")

	// printf 'node,ip\ncn001,10.0.1.11\n' | mnpool node import - --replace
	f := filepath.Join(t.TempDir(), "ip.csv")
	require.NoError(t, os.WriteFile(f, []byte("node,ip\ncn001,10.0.1.11\n"), 0o600))
	require.Contains(t, mustRun(t, db, "node", "import", f, "--replace"), "0 added, 1 changed")
	show := mustRun(t, db, "node", "show", "cn001", "-l")
	for _, want := range []string{"Object name: cn001", "ip=10.0.1.11", "mac=02:00:00:00:00:01", "groups=compute,rack1", "servicenodes=sn1,sn2", "manual=1"} {
		require.Contains(t, show, want)
	}
	require.Contains(t, mustRun(t, db, "audit", "--limit", "1"), "node.set")

	// node set: dry run, +=, -=, KEY= clears.
	require.Contains(t, mustRun(t, db, "node", "set", "cn00[1-2]", "groups+=gpu", "--dry-run"), "2 nodes would be changed")
	require.Contains(t, mustRun(t, db, "node", "show", "cn002", "-i", "groups"), "groups=compute\n")
	mustRun(t, db, "node", "set", "compute", "groups+=gpu", "groups-=rack1", "mac=")
	require.Equal(t, "Object name: cn001\n    groups=compute,gpu\n    mac=\n", mustRun(t, db, "node", "show", "cn001", "-i", "groups,mac"))
	require.Equal(t, "cn001  (node)\ncn002  (node)\n", mustRun(t, db, "node", "show", "gpu"))
	code, _, errs := mnpool(t, db, "node", "set", "cn001", "ip+=10.0.1.9")
	require.Equal(t, 2, code, errs)

	// One name space.
	// A name taken by another kind is an invalid value (exit 2); the same
	// node again in other letter case already exists (exit 1).
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"member", "add", "cn001", "--ip", "mgmt=10.0.0.9"}, 2}, {[]string{"member", "add", "GPU", "--ip", "mgmt=10.0.0.9"}, 2},
		{[]string{"node", "add", "SN1"}, 2}, {[]string{"node", "add", "CN001"}, 1}, {[]string{"node", "add", "compute"}, 2}, {[]string{"node", "add", "all"}, 2},
	} {
		code, _, errs := mnpool(t, db, c.args...)
		require.Equal(t, c.code, code, "%v: %s", c.args, errs)
	}

	// Site schema.
	for _, kv := range []string{"dhcplease=abc", "dhcplease=-1", "vrrp.mgmt.vrid=999", "consoleport=99999", "nosuchkey=1"} {
		code, _, errs := mnpool(t, db, "site", "set", kv)
		require.Equal(t, 2, code, kv)
		require.Contains(t, errs, strings.SplitN(kv, "=", 2)[0], kv)
	}
	mustRun(t, db, "site", "set", "--custom", "nosuchkey=1")
	mustRun(t, db, "site", "unset", "nosuchkey")
	var keys []struct{ Key, Type string }
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, db, "site", "keys", "--json")), &keys))
	require.NotEmpty(t, keys)
	require.Contains(t, mustRun(t, db, "audit", "--check"), "node cn002 has an IP but no MAC")

	// Export, change, merge back.
	dir := t.TempDir()
	mustRun(t, db, "export", dir)
	mustRun(t, db, "node", "set", "cn002", "ip=10.0.1.22")
	out := mustRun(t, db, "import-xcat", dir, "--merge")
	require.Contains(t, out, "~ node cn002: ip=10.0.1.22 -> ip=10.0.1.2")
	require.Contains(t, out, "nothing was written")
	require.Contains(t, mustRun(t, db, "node", "show", "cn002", "-i", "ip"), "ip=10.0.1.22")
	mustRun(t, db, "import-xcat", dir, "--merge", "--yes")
	require.Contains(t, mustRun(t, db, "node", "show", "cn002", "-i", "ip"), "ip=10.0.1.2\n")
	again := t.TempDir()
	mustRun(t, db, "export", again)
	for _, n := range []string{"nodelist.csv", "hosts.csv", "mac.csv", "noderes.csv", "site.csv", "networks.csv"} {
		a, err := os.ReadFile(filepath.Join(dir, n))
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(again, n))
		require.NoError(t, err)
		require.Equal(t, string(a), string(b), n)
	}
}

// Problem: 90 s after every agent had stopped, status and route still
// said "mn1 alive" with no age. Now a judgement nobody has re-published
// within three heartbeat intervals is called stale, and --json has the age.
func TestStatusAndRouteCallStaleLiveness(t *testing.T) {
	db := newPool(t)
	mustRun(t, db, "node", "add", "cn001", "--ip", "10.0.1.1", "--servicenodes", "sn1,sn2")
	// Two members publish a few judgements, then stop (as agents that died).
	for i := 0; i < 3; i++ {
		mustRun(t, db, "--self", "sn1", "heartbeat", "--publish", "--count", "2", "--interval", "20ms")
		mustRun(t, db, "--self", "sn2", "heartbeat", "--publish", "--count", "2", "--interval", "20ms")
	}
	out := mustRun(t, db, "status", "--heartbeat-interval", "50ms")
	require.Contains(t, out, "(stale: no agent published for")
	require.Contains(t, out, "WARNING: node cn001 has an IP but no MAC")
	var rep struct {
		Members []struct {
			Name     string `json:"name"`
			Liveness *struct {
				State string `json:"state"`
				AgeNS int64  `json:"age_ns"`
				Stale bool   `json:"stale"`
			} `json:"liveness"`
		} `json:"members"`
	}
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, db, "status", "--json", "--heartbeat-interval", "50ms")), &rep))
	stale := 0
	for _, m := range rep.Members {
		if m.Liveness != nil && m.Liveness.Stale {
			stale++
			require.GreaterOrEqual(t, m.Liveness.AgeNS, int64(150_000_000), m.Name)
		}
	}
	require.Positive(t, stale)
	var route struct {
		Liveness map[string]struct {
			AgeNS int64 `json:"age_ns"`
			Stale bool  `json:"stale"`
		} `json:"liveness"`
	}
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, db, "route", "--json", "--heartbeat-interval", "50ms")), &route))
	require.True(t, route.Liveness["sn1"].Stale)
	require.Contains(t, mustRun(t, db, "route", "--heartbeat-interval", "50ms"), "stale")
}
