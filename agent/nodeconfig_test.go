package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/mnpool/mnpool/agent"
	"github.com/mnpool/mnpool/nodecfg"
	"github.com/mnpool/mnpool/nodecfg/nodecfgtest"
	"github.com/mnpool/mnpool/pooltest"
	"github.com/mnpool/mnpool/sshkeys"
)

// TestFailoverReconfiguresNodesOverOpenSSH: with autofailover on, the
// leader moves a dead SN's nodes and pushes their new resolv.conf, chrony,
// rsyslog and route files over SSH with the pool key and known_hosts, as
// snmove does, to a real OpenSSH sshd on loopback (cn0002 at 127.43.1.2).
// The other moved node (cn0005 at 127.43.1.5) has no sshd: it is reported
// unreachable in the audit log and the metrics, and tried only once.
func TestFailoverReconfiguresNodesOverOpenSSH(t *testing.T) {
	ctx := context.Background()
	p := pooltest.New(t, pooltest.WithPrefix(netip.MustParsePrefix("127.43.0.0/16")), pooltest.WithNodes(6),
		pooltest.WithSite(map[string]string{agent.SiteAutoFailover: "1"}))
	keyDir := filepath.Join(t.TempDir(), "keys")
	if _, err := sshkeys.Init(ctx, keyDir, sshkeys.Options{}); err != nil {
		t.Fatal(err)
	}
	signer, err := sshkeys.Signer(ctx, keyDir, sshkeys.KindPool)
	if err != nil {
		t.Fatal(err)
	}
	sshd := nodecfgtest.StartOpenSSH(t, []string{"127.43.1.2"}, 0, signer.PublicKey())
	root := filepath.Join(t.TempDir(), "node")
	nc := agent.NodeConfig{
		SSH: nodecfg.SSHConfig{KeyDir: keyDir, KnownHosts: []string{sshd.KnownHosts}, Port: sshd.Port, Root: root},
		// Applying would restart this host's chronyd and change its route.
		NoApply: true,
		Timeout: 20 * time.Second,
	}
	timing := pushTiming()
	ags := map[string]*running{}
	for _, m := range members {
		ags[m] = startAgent(t, p.DSN, m, t.TempDir(), agent.WithTiming(timing), fastGuard(), agent.WithNodeConfig(nc))
	}
	for _, m := range members {
		waitFor(t, 15*time.Second, m+" judging every member alive", func() bool { return allAlive(ags[m], members...) })
	}
	if got := primaries(t, p.Store)["sn1"]; strings.Join(got, ",") != "cn0002,cn0005" {
		t.Fatalf("sn1 serves %v, want cn0002,cn0005", got)
	}
	ags["sn1"].stop(t)
	waitFor(t, 30*time.Second, "the nodecfg.reconfigure audit record", func() bool {
		return auditCount(t, p.Store, nodecfg.AuditAction, "sn1") == 1
	})

	log, err := p.Store.AuditLog(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	var d nodecfg.AuditDetail
	for _, e := range log {
		if e.Action == nodecfg.AuditAction {
			if err := json.Unmarshal([]byte(e.Detail), &d); err != nil {
				t.Fatal(err)
			}
		}
	}
	if d.Nodes != 2 || d.Reconfigured != 1 || d.Unreachable != 1 || len(d.Failures) != 1 || d.Failures[0].Node != "cn0005" || d.Token == 0 {
		t.Fatalf("audit detail %+v: want cn0002 reconfigured, cn0005 unreachable, under the lease's token\nagents' logs:\n%s", d, agentLogs(ags))
	}
	b, err := os.ReadFile(filepath.Join(root, "etc/resolv.conf"))
	if err != nil {
		t.Fatalf("cn0002's resolv.conf was not pushed: %v", err)
	}
	if !strings.Contains(string(b), "for node cn0002 (servicenodes sn2,mn1,sn1)") || !strings.Contains(string(b), "nameserver 127.43.0.3\nnameserver 127.43.0.1\n") {
		t.Fatalf("cn0002's resolv.conf does not name sn2 first:\n%s", b)
	}
	if b, err := os.ReadFile(filepath.Join(root, "etc/mnpool/default-route")); err != nil || string(b) != "127.43.0.254\n" {
		t.Fatalf("cn0002's route file: %q, %v", b, err)
	}

	counts := map[string]float64{}
	for _, m := range []string{"mn1", "sn2"} {
		for r, v := range nodecfgCounts(t, ags[m].a) {
			counts[r] += v
		}
	}
	if counts["reconfigured"] != 1 || counts["unreachable"] != 1 || counts["failed"] != 0 {
		t.Fatalf("mnpool_nodecfg_nodes_total over the survivors = %v, want reconfigured 1, unreachable 1", counts)
	}
	// The unreachable node is not retried: one record only, even after
	// more heartbeats.
	time.Sleep(5 * timing.DeadAfter)
	if n := auditCount(t, p.Store, nodecfg.AuditAction, ""); n != 1 {
		t.Fatalf("%d nodecfg.reconfigure records, want 1 (never retried)", n)
	}
}

// pushTiming is fastTiming with a longer lease: SSH under -race on a busy
// machine must not outlast it (losing the lease stops the pushes).
func pushTiming() agent.Timing {
	tm := fastTiming
	tm.LeaseTTL = 5 * time.Second
	return tm
}

// nodecfgCounts reads mnpool_nodecfg_nodes_total by result.
func nodecfgCounts(t *testing.T, a *agent.Agent) map[string]float64 {
	t.Helper()
	mfs, err := a.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "mnpool_nodecfg_nodes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[label(m, "result")] = m.GetCounter().GetValue()
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// agentLogs is the tail of every agent's log lines about node
// reconfiguration (for failures).
func agentLogs(ags map[string]*running) string {
	var b strings.Builder
	for m, r := range ags {
		for _, e := range r.events.of(agent.EventFailover) {
			if e.Kind == agent.EventFailover && e.Failover != nil {
				fmt.Fprintf(&b, "%s: failover %+v err %v\n", m, *e.Failover, e.Err)
			}
		}
	}
	return b.String()
}

// TestFailoverWithoutPoolKeyReportsNodes: node reconfiguration is on by
// default; when the pool key is missing the moved nodes are reported
// failed with the reason, in the audit record and the metrics, and no node
// is contacted (the pool's nodes are on loopback all the same).
func TestFailoverWithoutPoolKeyReportsNodes(t *testing.T) {
	p := pooltest.New(t, pooltest.WithPrefix(netip.MustParsePrefix("127.45.0.0/16")), pooltest.WithNodes(6),
		pooltest.WithSite(map[string]string{agent.SiteAutoFailover: "1"}))
	// The default NodeConfig but for the key directory, which is empty.
	nc := agent.NodeConfig{SSH: nodecfg.SSHConfig{KeyDir: t.TempDir()}}
	ags := map[string]*running{}
	for _, m := range members {
		ags[m] = startAgent(t, p.DSN, m, t.TempDir(), agent.WithTiming(pushTiming()), fastGuard(), agent.WithNodeConfig(nc))
	}
	for _, m := range members {
		waitFor(t, 15*time.Second, m+" judging every member alive", func() bool { return allAlive(ags[m], members...) })
	}
	ags["sn1"].stop(t)
	waitFor(t, 30*time.Second, "the nodecfg.reconfigure audit record", func() bool {
		return auditCount(t, p.Store, nodecfg.AuditAction, "sn1") == 1
	})
	log, err := p.Store.AuditLog(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var d nodecfg.AuditDetail
	for _, e := range log {
		if e.Action == nodecfg.AuditAction {
			if err := json.Unmarshal([]byte(e.Detail), &d); err != nil {
				t.Fatal(err)
			}
		}
	}
	if d.Nodes != 2 || d.Failed != 2 || d.Unreachable != 0 || len(d.Failures) != 2 {
		t.Fatalf("audit detail %+v: want both moved nodes failed\n%s", d, agentLogs(ags))
	}
	for _, f := range d.Failures {
		if !strings.Contains(f.Error, "SSH pusher not set up") || !strings.Contains(f.Error, "pool SSH key") {
			t.Errorf("%s: %q does not say the pool key is missing", f.Node, f.Error)
		}
	}
	counts := map[string]float64{}
	for _, m := range []string{"mn1", "sn2"} {
		for r, v := range nodecfgCounts(t, ags[m].a) {
			counts[r] += v
		}
	}
	if counts["failed"] != 2 || counts["reconfigured"] != 0 {
		t.Fatalf("mnpool_nodecfg_nodes_total over the survivors = %v, want failed 2", counts)
	}
}
