// Package bench compares the pool's DNS server with BIND 9 serving the
// same zones (rendered by `mnpool dns zone --dir`), both on loopback,
// measured by dnsperf in one run:
//
//	go test ./dns/bench -run '^$' -bench DNSPerf -benchtime 1x
//
// It is skipped when dnsperf or named is not installed (Debian packages
// dnsperf and bind9). MNPOOL_DNSPERF_SECONDS sets the length of each
// dnsperf run (default 10), MNPOOL_DNSPERF_NODES the pool size (5000).
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
	"strconv"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/mnpool/mnpool/dns"
	"github.com/mnpool/mnpool/internal/cli"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/pool"
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
	if err := s.AddMember(ctx, pool.Member{Name: "sn1", Services: pool.AllServices(), Addresses: map[string]netip.Addr{"mgmt": netip.MustParseAddr("10.0.0.2")}}, false); err != nil {
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
	out, err := exec.Command(bin, "-s", host, "-p", port, "-d", queries, "-l", strconv.Itoa(seconds), "-c", "8", "-q", "200", "-t", "2").CombinedOutput()
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

func BenchmarkDNSPerf(b *testing.B) {
	dnsperfBin, err := exec.LookPath("dnsperf")
	if err != nil {
		b.Skip("dnsperf not installed (Debian package dnsperf)")
	}
	named, err := exec.LookPath("named")
	if err != nil {
		b.Skip("named not installed (Debian package bind9)")
	}
	seconds := envInt("MNPOOL_DNSPERF_SECONDS", 10)
	n := envInt("MNPOOL_DNSPERF_NODES", 5000)
	dsn, store := seedPool(b, n)
	queries := queryFile(b, n)

	b.Run("mnpool", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		srv := dns.NewServer(store, dns.WithListen("127.0.53.10:0"))
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx) }()
		defer func() { cancel(); <-done }()
		select {
		case <-srv.Ready():
		case err := <-done:
			b.Fatal(err)
		}
		addr := srv.Addrs()[0].String()
		if err := waitAnswer(addr, nil); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		report(b, dnsperfBin, addr, queries, seconds)
	})

	b.Run("named", func(b *testing.B) {
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
		var logs bytes.Buffer
		cmd := exec.Command(named, "-g", "-c", cf, "-n", "2")
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		defer func() {
			cmd.Process.Kill()
			<-exited
		}()
		if err := waitAnswer(addr, exited); err != nil {
			b.Fatalf("%v\n%s", err, logs.String())
		}
		b.ResetTimer()
		report(b, dnsperfBin, addr, queries, seconds)
	})
}

func report(b *testing.B, bin, addr, queries string, seconds int) {
	var sum float64
	lost := 0
	for i := 0; i < b.N; i++ {
		qps, l := dnsperf(b, bin, addr, queries, seconds)
		sum += qps
		lost += l
	}
	b.ReportMetric(sum/float64(b.N), "qps")
	b.ReportMetric(float64(lost)/float64(b.N), "lost/run")
	b.ReportMetric(0, "ns/op")
}
