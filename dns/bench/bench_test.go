// Package bench compares the pool's DNS server with BIND 9 serving the
// same zones (rendered by `mnpool dns zone --dir`), both on loopback,
// measured by dnsperf in one run, the two servers taking turns:
//
//	go test ./dns/bench -run '^$' -bench DNSPerf -benchtime 1x -v
//
// It is skipped when dnsperf or named is not installed (Debian packages
// dnsperf and bind9), or fails when MNPOOL_REQUIRE_TOOLS=1.
// MNPOOL_DNSPERF_ROUNDS sets the number of turns (default 5),
// MNPOOL_DNSPERF_SECONDS the length of each dnsperf run (default 10),
// MNPOOL_DNSPERF_NODES the pool size (5000). Each run is logged with the
// load average read just before it and with the CPU time the server used
// per answered query (from /proc: the whole test process for mnpool,
// named's process for BIND), which a busy machine disturbs less than the
// queries per second; the medians are reported as metrics.
//
// By default both servers and dnsperf share the machine's cores (mnpool
// in this process, named with -n 2). MNPOOL_DNSPERF_PIN=1 pins instead:
// the server under test on CPU 0 (`mnpool dns serve` built from this
// tree, named -n 1) and dnsperf on CPU 1, so that the client's own cost
// does not come out of the server's share.
package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/mnpool/mnpool/dns"
	"github.com/mnpool/mnpool/internal/cli"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// seedPool builds a pool of n nodes on 10.0.0.0/16 in SQLite.
func seedPool(b *testing.B, n int) (string, *pool.Store) {
	b.Helper()
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(b.TempDir(), "pool.db")
	s, err := pool.Open(ctx, dsn, pool.WithMigrate(), pool.WithSelf("mn1"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.AddNetwork(ctx, pool.Network{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16")}, false); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Init(ctx, pool.InitOptions{MN: pool.Member{Name: "mn1", Addresses: map[string]netip.Addr{"mgmt": netip.MustParseAddr("10.0.0.1")}}}); err != nil {
		b.Fatal(err)
	}
	if err := s.AddMember(ctx, pool.Member{Name: "sn1", Services: service.All(), Addresses: map[string]netip.Addr{"mgmt": netip.MustParseAddr("10.0.0.2")}}, false); err != nil {
		b.Fatal(err)
	}
	nodes := make([]pool.Node, n)
	for i := range nodes {
		nodes[i] = pool.Node{Name: fmt.Sprintf("cn%05d", i+1), IP: nodeIP(i), ServiceNodes: []string{"mn1", "sn1"}}
	}
	if err := s.AddNodes(ctx, nodes, pool.AddOptions{}); err != nil {
		b.Fatal(err)
	}
	return dsn, s
}

func nodeIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 0, byte(1 + i/250), byte(1 + i%250)})
}

// queryFile writes dnsperf input: 80% A of nodes, 10% PTR, 10% names
// that do not exist (NXDOMAIN), in a fixed order.
func queryFile(b *testing.B, n int) string {
	b.Helper()
	var buf bytes.Buffer
	for i := 0; i < 10000; i++ {
		k := (i * 7919) % n
		switch i % 10 {
		case 8:
			arpa, _ := mdns.ReverseAddr(nodeIP(k).String())
			fmt.Fprintf(&buf, "%s PTR\n", arpa)
		case 9:
			fmt.Fprintf(&buf, "nosuch%05d.cluster A\n", k)
		default:
			fmt.Fprintf(&buf, "cn%05d.cluster A\n", k+1)
		}
	}
	f := filepath.Join(b.TempDir(), "queries.txt")
	if err := os.WriteFile(f, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	return f
}

var qpsRE = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
var lostRE = regexp.MustCompile(`Queries lost:\s+([0-9]+)`)

// dnsperf runs dnsperf against addr and returns queries per second and
// queries lost.
func dnsperf(b *testing.B, bin, addr, queries string, seconds int) (float64, int) {
	b.Helper()
	host, port, _ := net.SplitHostPort(addr)
	args := append(strings.Fields(bin), "-s", host, "-p", port, "-d", queries, "-l", strconv.Itoa(seconds), "-c", "8", "-q", "200", "-t", "2")
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		b.Fatalf("dnsperf: %v\n%s", err, out)
	}
	m := qpsRE.FindSubmatch(out)
	if m == nil {
		b.Fatalf("dnsperf printed no qps:\n%s", out)
	}
	qps, _ := strconv.ParseFloat(string(m[1]), 64)
	lost := 0
	if l := lostRE.FindSubmatch(out); l != nil {
		lost, _ = strconv.Atoi(string(l[1]))
	}
	return qps, lost
}

// waitAnswer waits until addr answers cn00001.cluster.
func waitAnswer(addr string, exited <-chan struct{}) error {
	c := &mdns.Client{Timeout: 200 * time.Millisecond}
	deadline := time.Now().Add(testenv.Timeout(20 * time.Second))
	for time.Now().Before(deadline) {
		r, _, err := c.Exchange(new(mdns.Msg).SetQuestion("cn00001.cluster.", mdns.TypeA), addr)
		if err == nil && len(r.Answer) == 1 {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("server on %s exited", addr)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("no answer from %s within 20s", addr)
}

func freeAddr(b *testing.B, ip string) string {
	b.Helper()
	for i := 0; i < 20; i++ {
		pc, err := net.ListenPacket("udp", ip+":0")
		if err != nil {
			b.Fatal(err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		pc.Close()
		if err == nil {
			l.Close()
			return pc.LocalAddr().String()
		}
	}
	b.Fatal("no free port")
	return ""
}

type target struct {
	name string
	addr string
	pid  int                  // the server's process, 0 for this one
	cpu  func() time.Duration // CPU time the server has used so far
	runs []run
}

type run struct {
	qps      float64
	lost     int
	load     string  // /proc/loadavg before the run
	cpuPerQ  float64 // µs of server CPU per answered query
	answered float64
}

// processCPU returns the user+system CPU time of process pid (0: this
// process) so far, from /proc (clock ticks of 10 ms).
func processCPU(pid int) time.Duration {
	path := "/proc/self/stat"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces): state is
	// field 3, utime 14, stime 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func median(v []float64) float64 {
	v = append([]float64(nil), v...)
	sort.Float64s(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func BenchmarkDNSPerf(b *testing.B) {
	dnsperfBin := tool(b, "dnsperf", "dnsperf")
	named := tool(b, "named", "bind9")
	seconds := envInt("MNPOOL_DNSPERF_SECONDS", 10)
	n := envInt("MNPOOL_DNSPERF_NODES", 5000)
	rounds := envInt("MNPOOL_DNSPERF_ROUNDS", 5)
	pin := os.Getenv("MNPOOL_DNSPERF_PIN") == "1"
	if os.Getenv("MNPOOL_DNSPERF_QUOTA") != "" && !pin {
		b.Fatal("MNPOOL_DNSPERF_QUOTA works with MNPOOL_DNSPERF_PIN=1 only (the servers must be processes of their own)")
	}
	dsn, store := seedPool(b, n)
	queries := queryFile(b, n)
	var targets []*target
	if pin {
		// Each server on CPU 0, dnsperf on CPU 1: the client does not
		// compete with the server it measures.
		targets = []*target{startMnpoolProcess(b, dsn), startNamed(b, named, dsn, "0", "1")}
		dnsperfBin = "taskset -c 1 " + dnsperfBin
		if q := os.Getenv("MNPOOL_DNSPERF_QUOTA"); q != "" {
			for _, t := range targets {
				cpuQuota(b, t, q)
			}
		}
	} else {
		targets = []*target{
			{name: "mnpool", addr: startMnpool(b, store), cpu: func() time.Duration { return processCPU(0) }},
			startNamed(b, named, dsn, "", "2"),
		}
	}
	b.Logf("pinned (servers on CPU 0, dnsperf on CPU 1): %v", pin)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for r := 0; r < rounds; r++ {
			for _, t := range targets {
				load := loadavg()
				c0 := t.cpu()
				qps, lost := dnsperf(b, dnsperfBin, t.addr, queries, seconds)
				used := t.cpu() - c0
				perQ := float64(used.Microseconds()) / (qps * float64(seconds))
				t.runs = append(t.runs, run{qps: qps, lost: lost, load: load, cpuPerQ: perQ})
				b.Logf("round %d %-6s %9.0f qps, %d lost, %.1f µs CPU per query, load average before: %s", r+1, t.name, qps, lost, perQ, load)
			}
		}
	}
	med, medCPU := map[string]float64{}, map[string]float64{}
	for _, t := range targets {
		var q, c []float64
		lost := 0
		for _, r := range t.runs {
			q = append(q, r.qps)
			c = append(c, r.cpuPerQ)
			lost += r.lost
		}
		sort.Float64s(q)
		med[t.name], medCPU[t.name] = median(q), median(c)
		b.Logf("%-6s median %.0f qps (range %.0f-%.0f) over %d runs, %d lost in all; median %.1f µs CPU per query", t.name, med[t.name], q[0], q[len(q)-1], len(q), lost, medCPU[t.name])
		b.ReportMetric(med[t.name], t.name+"-qps")
		b.ReportMetric(float64(lost), t.name+"-lost")
		b.ReportMetric(medCPU[t.name], t.name+"-µs-cpu/query")
	}
	if med["named"] > 0 {
		b.Logf("mnpool/named: %.2fx (qps medians); CPU per query named/mnpool: %.2fx", med["mnpool"]/med["named"], medCPU["named"]/medCPU["mnpool"])
		b.ReportMetric(med["mnpool"]/med["named"], "ratio")
	}
	b.ReportMetric(0, "ns/op")
}

func tool(b *testing.B, name, pkg string) string {
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("MNPOOL_REQUIRE_TOOLS") == "1" {
		b.Fatalf("%s not installed (Debian package %s) and MNPOOL_REQUIRE_TOOLS=1", name, pkg)
	}
	b.Skipf("%s not installed (Debian package %s)", name, pkg)
	return ""
}

// startMnpool serves the pool with dns.Server on loopback until the
// benchmark ends.
func startMnpool(b *testing.B, store *pool.Store) string {
	ctx, cancel := context.WithCancel(context.Background())
	srv := dns.NewServer(store, dns.WithListen("127.0.53.10:0"))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	select {
	case <-srv.Ready():
	case err := <-done:
		b.Fatal(err)
	}
	addr := srv.Addrs()[0].String()
	if err := waitAnswer(addr, nil); err != nil {
		b.Fatal(err)
	}
	return addr
}

// startNamed runs BIND 9 with threads worker threads (one per core it
// may use), on CPUs cpus when not empty, on the zones `mnpool dns zone
// --dir` renders, until the benchmark ends.
func startNamed(b *testing.B, named, dsn, cpus, threads string) *target {
	dir := b.TempDir()
	var out, errOut bytes.Buffer
	if code := cli.Run(context.Background(), cli.NewMnpool(cli.IO{Out: &out, Err: &errOut}), []string{"--db", dsn, "dns", "zone", "--dir", dir}, &errOut); code != 0 {
		b.Fatalf("mnpool dns zone --dir: exit %d: %s", code, errOut.String())
	}
	addr := freeAddr(b, "127.0.0.1") // named listens only on interface addresses
	host, port, _ := net.SplitHostPort(addr)
	conf := fmt.Sprintf(`options {
	directory %q;
	pid-file %q;
	session-keyfile %q;
	managed-keys-directory %q;
	listen-on port %s { %s; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify no;
};
controls { };
include %q;
`, dir, filepath.Join(dir, "named.pid"), filepath.Join(dir, "session.key"), dir, port, host, filepath.Join(dir, "named.conf.mnpool"))
	cf := filepath.Join(dir, "named.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	args := []string{named, "-g", "-c", cf, "-n", threads}
	if cpus != "" {
		args = append([]string{"taskset", "-c", cpus}, args...)
	}
	return startProcess(b, "named", addr, args...)
}

// startMnpoolProcess runs `mnpool dns serve`, built from this tree, on
// CPU 0 (taskset), so that it has one core as named has in the same mode,
// until the benchmark ends.
func startMnpoolProcess(b *testing.B, dsn string) *target {
	dir := b.TempDir()
	bin := filepath.Join(dir, "mnpool")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/mnpool/mnpool/cmd/mnpool").CombinedOutput(); err != nil {
		b.Fatalf("go build ./cmd/mnpool: %v\n%s", err, out)
	}
	addr := freeAddr(b, "127.0.53.10")
	return startProcess(b, "mnpool", addr, "taskset", "-c", "0", bin, "--db", dsn, "--self", "mn1", "dns", "serve", "--listen", addr)
}

// cpuQuota limits t's process to pct percent of one CPU (a cgroup v1
// cpu controller group, CFS quota over a 100 ms period), removed at
// the end.
func cpuQuota(b *testing.B, t *target, pct string) {
	p, err := strconv.Atoi(pct)
	if err != nil || p < 1 || p > 100 {
		b.Fatalf("MNPOOL_DNSPERF_QUOTA=%q: want a percentage of one CPU, 1-100", pct)
	}
	if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"); err != nil {
		b.Fatalf("MNPOOL_DNSPERF_QUOTA needs the cgroup v1 cpu controller at /sys/fs/cgroup/cpu: %v", err)
	}
	dir := filepath.Join("/sys/fs/cgroup/cpu", fmt.Sprintf("mnpool-dnsperf-%s-%d", t.name, t.pid))
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.Remove(dir) })
	for f, v := range map[string]string{"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": strconv.Itoa(p * 1000)} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", t.pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, task := range tasks {
		if err := os.WriteFile(filepath.Join(dir, "tasks"), []byte(task.Name()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() {
		// Back to the root group, so that dir can go.
		for _, task := range tasks {
			os.WriteFile("/sys/fs/cgroup/cpu/tasks", []byte(task.Name()), 0o644)
		}
	})
}

// startProcess runs args, a DNS server that listens on addr, until the
// benchmark ends, and returns it as target name once it answers.
func startProcess(b *testing.B, name, addr string, args ...string) *target {
	var logs bytes.Buffer
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	b.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	if err := waitAnswer(addr, exited); err != nil {
		b.Fatalf("%v\n%s", err, logs.String())
	}
	pid := cmd.Process.Pid
	return &target{name: name, addr: addr, pid: pid, cpu: func() time.Duration { return processCPU(pid) }}
}
