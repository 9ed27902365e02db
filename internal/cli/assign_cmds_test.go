package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/cli"
	"github.com/mnpool/mnpool/internal/testgalera"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
	"github.com/mnpool/mnpool/pool/service"
)

// eachDB runs f with a fresh database on SQLite and on Galera.
func eachDB(t *testing.T, f func(t *testing.T, db string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, "sqlite:"+filepath.Join(t.TempDir(), "pool.db")) })
	t.Run("galera", func(t *testing.T) { f(t, testgalera.Open(t).DSN()) })
}

// poolOf creates a pool on db: network mgmt, MN mn1, SNs sn1 and sn2, and
// nodes cn01..cn30 without servicenode lists. Each step runs as a
// different member.
func poolOf(t *testing.T, db string) {
	mustRun(t, db, "--self", "mn1", "init", "--mn", "mn1")
	mustRun(t, db, "--self", "mn1", "network", "add", "mgmt", "10.0.0.0/16", "--gateway", "10.0.0.254")
	mustRun(t, db, "--self", "mn1", "member", "set", "mn1", "--ip", "mgmt=10.0.0.1")
	mustRun(t, db, "--self", "mn1", "member", "add", "sn1", "--ip", "mgmt=10.0.0.2", "--services", "dhcp,tftp,dns,ntp,console")
	// An SN adds the next SN.
	mustRun(t, db, "--self", "sn1", "member", "add", "sn2", "--ip", "mgmt=10.0.0.3", "--services", "all")
	var csv strings.Builder
	csv.WriteString("node,ip,groups\n")
	for i := 1; i <= 30; i++ {
		csv.WriteString("cn" + pad2(i) + ",10.0.1." + itoa(i) + ",compute\n")
	}
	f := filepath.Join(t.TempDir(), "nodes.csv")
	require.NoError(t, os.WriteFile(f, []byte(csv.String()), 0o600))
	mustRun(t, db, "--self", "sn2", "node", "import", f)
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func pad2(i int) string {
	if i < 10 {
		return "0" + itoa(i)
	}
	return itoa(i)
}

type cliNode struct {
	Name         string   `json:"name"`
	ServiceNodes []string `json:"servicenodes"`
	Manual       bool     `json:"manual"`
}

func nodesOf(t *testing.T, db string) []cliNode {
	t.Helper()
	var nodes []cliNode
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, db, "node", "list", "--json")), &nodes))
	return nodes
}

func firstLoad(nodes []cliNode) map[string]int {
	out := map[string]int{}
	for _, n := range nodes {
		if len(n.ServiceNodes) > 0 {
			out[n.ServiceNodes[0]]++
		}
	}
	return out
}

func TestMemberServicesFromAnyMember(t *testing.T) {
	eachDB(t, func(t *testing.T, db string) {
		poolOf(t, db)
		// An SN changes the MN's services; another SN (via MNPOOL_SELF)
		// disables an SN; the MN re-enables it.
		mustRun(t, db, "--self", "sn1", "member", "set", "mn1", "--services", "dhcp,tftp,db")
		t.Setenv(cli.EnvSelf, "sn2")
		mustRun(t, db, "member", "set", "sn1", "--disable")
		var members []struct {
			Name     string            `json:"name"`
			Services []service.Service `json:"services"`
			Disabled bool              `json:"disabled"`
		}
		require.NoError(t, json.Unmarshal([]byte(mustRun(t, db, "member", "list", "--json")), &members))
		require.Equal(t, "mn1", members[0].Name)
		require.Equal(t, []service.Service{service.DHCP, service.TFTP, service.DB}, members[0].Services)
		require.Equal(t, []service.Service{service.DHCP, service.DNS, service.NTP, service.TFTP, service.Console}, members[1].Services)
		require.True(t, members[1].Disabled)
		mustRun(t, db, "--self", "mn1", "member", "set", "sn1", "--enable")

		// The audit log names who did what from where.
		var audit []struct {
			Member string `json:"member"`
			Action string `json:"action"`
			Target string `json:"target"`
		}
		require.NoError(t, json.Unmarshal([]byte(mustRun(t, db, "audit", "--json", "--limit", "3")), &audit))
		got := map[string]string{}
		for _, a := range audit {
			got[a.Member+" "+a.Action] = a.Target
		}
		require.Equal(t, "sn1", got["mn1 member.set"])
		require.Equal(t, "sn1", got["sn2 member.set"])
		require.Equal(t, "mn1", got["sn1 member.set"])

		code, _, errs := mnpool(t, db, "member", "set", "sn2", "--services", "dhcp,nfs")
		require.Equal(t, 2, code)
		require.Contains(t, errs, `"nfs"`)
	})
}

func TestAssignAndRouteFromAnyMember(t *testing.T) {
	eachDB(t, func(t *testing.T, db string) {
		poolOf(t, db)
		// An SN assigns the whole pool.
		out := mustRun(t, db, "--self", "sn2", "assign", "all")
		require.Contains(t, out, "30 nodes selected, width 2: 30 lists written")
		nodes := nodesOf(t, db)
		require.Equal(t, map[string]int{"mn1": 10, "sn1": 10, "sn2": 10}, firstLoad(nodes))
		for _, n := range nodes {
			require.Len(t, n.ServiceNodes, 2, n.Name)
		}
		// Again, from another member: nothing to write.
		require.Contains(t, mustRun(t, db, "--self", "mn1", "assign"), "0 lists written")

		// A node's list set by hand survives assign, not --rebalance.
		mustRun(t, db, "node", "remove", "cn01")
		mustRun(t, db, "node", "add", "cn01", "--ip", "10.0.1.1", "--servicenodes", "sn1,sn2")
		require.Contains(t, mustRun(t, db, "--self", "sn1", "assign", "cn0[1-9]"), "1 manual lists kept")
		require.Contains(t, mustRun(t, db, "--self", "sn1", "assign", "cn01", "--rebalance", "--dry-run"), "0 manual lists kept")

		// Drain sn1: disable it (as sn2) and assign; only its nodes move.
		mustRun(t, db, "--self", "sn2", "member", "set", "sn1", "--disable")
		before := nodesOf(t, db)
		var plan pool.AssignResult
		require.NoError(t, json.Unmarshal([]byte(mustRun(t, db, "--self", "sn2", "assign", "--rebalance", "--json")), &plan))
		after := nodesOf(t, db)
		moved := 0
		for i := range before {
			if before[i].ServiceNodes[0] != after[i].ServiceNodes[0] {
				require.Equal(t, "sn1", before[i].ServiceNodes[0], "%s moved although sn1 was not its first", before[i].Name)
				moved++
			}
			require.NotContains(t, after[i].ServiceNodes, "sn1")
		}
		require.Equal(t, firstLoad(before)["sn1"], moved)
		require.Equal(t, map[string]int{"mn1": 15, "sn2": 15}, firstLoad(after))
		require.Contains(t, mustRun(t, db, "member", "remove", "sn1"), "removed")

		// Route from every member, liveness sampled by nobody: list order.
		var routes []string
		for _, self := range []string{"mn1", "sn2"} {
			routes = append(routes, mustRun(t, db, "--self", self, "route", "all", "--json"))
		}
		require.JSONEq(t, routes[0], routes[1])
		var r pool.Routing
		require.NoError(t, json.Unmarshal([]byte(routes[0]), &r))
		require.Len(t, r.ByMember["mn1"], 15)
		require.Len(t, r.ByMember["sn2"], 15)

		code, _, errs := mnpool(t, db, "assign", "cn01,nosuch1,nosuch2")
		require.Equal(t, 2, code)
		require.Contains(t, errs, "nosuch1")
		require.Contains(t, errs, "nosuch2")
		code, _, errs = mnpool(t, db, "assign", "--width", "1")
		require.Equal(t, 2, code)
		require.Contains(t, errs, "--width 1")
		code, _, errs = mnpool(t, db, "assign", "--width", "3")
		require.Equal(t, 2, code)
		require.Contains(t, errs, "only 2 are eligible")
	})
}

// runAsync runs mnpool in the background until ctx ends.
func runAsync(ctx context.Context, wg *sync.WaitGroup, db string, args ...string) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		var out, errb bytes.Buffer
		cli.Mnpool(ctx, append([]string{"--db", db}, args...), cli.IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	}()
}

func TestStatusShowsLiveness(t *testing.T) {
	eachDB(t, func(t *testing.T, db string) {
		poolOf(t, db)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		// sn1 and sn2 heartbeat and publish; mn1 does not.
		for _, self := range []string{"sn1", "sn2"} {
			runAsync(ctx, &wg, db, "--self", self, "heartbeat", "--interval", "20ms", "--publish", "--suspect", "300ms", "--dead", "600ms")
		}
		defer func() { cancel(); wg.Wait() }()

		// Sampled here by the MN: the SNs move, the MN does not.
		type st struct {
			Members []struct {
				Name     string `json:"name"`
				Liveness struct {
					State     liveness.State `json:"state"`
					Observers []string       `json:"observers"`
				} `json:"liveness"`
			} `json:"members"`
		}
		var s st
		require.NoError(t, json.Unmarshal([]byte(mustRun(t, db, "--self", "mn1", "status", "--json", "--sample", "800ms", "--sample-interval", "20ms", "--suspect", "300ms", "--dead", "600ms")), &s))
		got := map[string]liveness.State{}
		for _, m := range s.Members {
			got[m.Name] = m.Liveness.State
		}
		require.Equal(t, map[string]liveness.State{"mn1": liveness.Dead, "sn1": liveness.Alive, "sn2": liveness.Alive}, got)

		// Without --sample: what sn1 and sn2 published about each other and
		// about the silent MN.
		require.NoError(t, json.Unmarshal([]byte(mustRun(t, db, "--self", "mn1", "status", "--json")), &s))
		for _, m := range s.Members {
			switch m.Name {
			case "mn1":
				require.Equal(t, liveness.Dead, m.Liveness.State)
				require.Equal(t, []string{"sn1", "sn2"}, m.Liveness.Observers)
			case "sn1":
				require.Equal(t, liveness.Alive, m.Liveness.State)
				require.Equal(t, []string{"sn2"}, m.Liveness.Observers)
			}
		}
		out := mustRun(t, db, "status")
		require.Regexp(t, `mn1\s+MN\s+enabled\s+dead \d`, out)
		require.Regexp(t, `sn1\s+SN\s+enabled\s+alive`, out)
	})
}

func TestHeartbeatAndRoleFilesCommands(t *testing.T) {
	eachDB(t, func(t *testing.T, db string) {
		poolOf(t, db)
		require.Contains(t, mustRun(t, db, "--self", "sn2", "heartbeat", "--count", "3", "--interval", "1ms"), "sn2: heartbeat 3")
		code, _, errs := mnpool(t, db, "--self", "nosuch", "heartbeat", "--count", "1")
		require.Equal(t, 2, code)
		require.Contains(t, errs, "nosuch")

		root := t.TempDir()
		require.Contains(t, mustRun(t, db, "--self", "sn1", "rolefiles", "--root", root), "sn1: role SN (epoch 1), role files updated")
		_, err := os.Stat(filepath.Join(root, "etc", "xCATSN"))
		require.NoError(t, err)
		require.Contains(t, mustRun(t, db, "--self", "mn1", "rolefiles", "--root", root), "role MN")
		_, err = os.Stat(filepath.Join(root, "etc", "xCATSN"))
		require.True(t, os.IsNotExist(err))
		_, err = os.Stat(filepath.Join(root, "etc", "xCATMN"))
		require.NoError(t, err)
	})
}

func TestImportXCATCommand(t *testing.T) {
	dump := filepath.Join("..", "..", "xcat", "testdata", "cluster")
	eachDB(t, func(t *testing.T, db string) {
		out := mustRun(t, db, "import-xcat", dump, "--dry-run")
		require.Contains(t, out, "would be imported (dry run: nothing written): MN mn1, 3 SNs (sn1,sn2,sn3), 2 networks, 12 nodes")
		require.Contains(t, out, "noderes.servicenode")
		// rack2's regular expression |\D+(\d+)|sn(($1%3)+1)| is evaluated.
		require.Contains(t, out, "cn004,cn005,cn009,cn010")
		require.NotContains(t, out, "regular expression of rack2 not imported")
		code, _, errs := mnpool(t, db, "status")
		require.Equal(t, 1, code, "a dry run initialized the pool")
		require.Contains(t, errs, "mnpool init")

		out = mustRun(t, db, "--self", "sn3", "import-xcat", dump)
		require.Contains(t, out, "imported: MN mn1")
		require.Contains(t, mustRun(t, db, "--self", "sn3", "assign"), "12 nodes selected")
		for _, n := range nodesOf(t, db) {
			require.GreaterOrEqual(t, len(n.ServiceNodes), 2, n.Name)
		}

		code, _, errs = mnpool(t, db, "import-xcat", filepath.Join(dump, "site.csv"))
		require.Equal(t, 2, code)
		require.Contains(t, errs, "not a directory")
		bad := t.TempDir()
		for _, f := range []string{"site", "networks"} {
			b, err := os.ReadFile(filepath.Join(dump, f+".csv"))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(bad, f+".csv"), b, 0o600))
		}
		require.NoError(t, os.WriteFile(filepath.Join(bad, "nodelist.csv"), []byte("#node,groups\n\"mn1\",\"\"\n\"cn1\"\n"), 0o600))
		code, _, errs = mnpool(t, db, "import-xcat", bad)
		require.Equal(t, 2, code)
		require.Contains(t, errs, "nodelist.csv: tabdump line 3: 1 fields")
	})
}
