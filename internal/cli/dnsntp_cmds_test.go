package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/mnpool/mnpool/dns"
	"github.com/mnpool/mnpool/dns/dnstest"
	"github.com/mnpool/mnpool/gateway"
	"github.com/mnpool/mnpool/internal/cli"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/ntp"
	"github.com/mnpool/mnpool/pool"
)

// seededDB returns the DSN of a SQLite pool holding the dnstest fixture
// plus a VRRP group on mgmt, and its state.
func seededDB(t *testing.T) (string, *pool.State) {
	t.Helper()
	dsn := dnstest.SQLite(t)
	s := dnstest.Open(t, dsn)
	dnstest.Seed(t, s)
	if err := s.SetSite(context.Background(), map[string]string{"vrrp.mgmt.members": "sn1,sn2", "vrrp.mgmt.vips": "10.0.255.254"}); err != nil {
		t.Fatal(err)
	}
	st, err := s.LoadState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return dsn, st
}

// run runs mnpool with args and returns the exit status, stdout, stderr.
func run(ctx context.Context, dsn string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	io := cli.IO{In: strings.NewReader(""), Out: &out, Err: &errOut}
	code := cli.Run(ctx, cli.NewMnpool(io), append([]string{"--db", dsn, "--self", "sn1"}, args...), &errOut)
	return code, out.String(), errOut.String()
}

func TestDNSNTPGatewayCommands(t *testing.T) {
	dsn, st := seededDB(t)
	ctx := context.Background()
	render := func(data []byte, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	rc1, _ := dns.NodeResolvConf(st, dnstest.Node(t, st, "cn001"))
	rc2, _ := dns.NodeResolvConf(st, dnstest.Node(t, st, "cn002"))
	rcm, _ := dns.MemberResolvConf(st, "sn1")
	ch1, _ := ntp.NodeConf(st, dnstest.Node(t, st, "cn001"))
	chm, _ := ntp.MemberConf(st, "sn1", ntp.MemberOptions{})
	ka, _ := gateway.Keepalived(st, "sn2", gateway.KeepalivedOptions{Interfaces: map[string]string{"mgmt": "eth7"}})
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string // exact stdout when set
		err  string // substring of stderr
	}{
		{"resolvconf node", []string{"dns", "resolvconf", "cn001"}, 0, render(rc1.Render()), ""},
		{"resolvconf two nodes", []string{"dns", "resolvconf", "cn001,cn002"}, 0, render(rc1.Render()) + render(rc2.Render()), ""},
		{"resolvconf member", []string{"dns", "resolvconf", "--member", "sn1"}, 0, render(rcm.Render()), ""},
		{"resolvconf nothing", []string{"dns", "resolvconf"}, 2, "", "NODERANGE or --member"},
		{"resolvconf both", []string{"dns", "resolvconf", "cn001", "--member", "sn1"}, 2, "", "NODERANGE or --member"},
		{"resolvconf unknown node", []string{"dns", "resolvconf", "cn999"}, 2, "", "cn999"},
		{"resolvconf node without network", []string{"dns", "resolvconf", "spare"}, 1, "", "spare"},
		{"chrony node", []string{"ntp", "chrony", "cn001"}, 0, render(ch1.Render()), ""},
		{"chrony member", []string{"ntp", "chrony", "--member", "sn1"}, 0, render(chm.Render()), ""},
		{"chrony unknown member", []string{"ntp", "chrony", "--member", "sn9"}, 2, "", "sn9"},
		{"keepalived", []string{"gateway", "keepalived", "--member", "sn2", "--interface", "mgmt=eth7"}, 0, render(ka.Render()), ""},
		{"keepalived bad interface", []string{"gateway", "keepalived", "--member", "sn2", "--interface", "mgmt=eth 7"}, 2, "", "interface name"},
		{"keepalived unknown network", []string{"gateway", "keepalived", "--member", "sn2", "--interface", "nonet=eth0"}, 2, "", "nonet"},
		{"keepalived not forwarding", []string{"gateway", "keepalived", "--member", "sn4"}, 1, "", "forwards for no network"},
		{"zone unknown", []string{"dns", "zone", "nosuch.example"}, 2, "", "nosuch.example"},
		{"gateway list warns", []string{"gateway", "list"}, 0, "", "only gateway 10.1.0.1 is the MN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(ctx, dsn, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			if tc.out != "" && out != tc.out {
				t.Errorf("stdout:\n%s\nwant:\n%s", out, tc.out)
			}
			if !strings.Contains(errOut, tc.err) {
				t.Errorf("stderr %q, want it to contain %q", errOut, tc.err)
			}
		})
	}
}

func TestZoneCommand(t *testing.T) {
	dsn, _ := seededDB(t)
	ctx := context.Background()
	code, out, errOut := run(ctx, dsn, "dns", "zone", "--list", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rows []struct{ Zone string }
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 5 {
		t.Fatalf("--list --json: %v %s", err, out)
	}
	dir := t.TempDir()
	if code, _, errOut := run(ctx, dsn, "dns", "zone", "--dir", dir); code != 0 {
		t.Fatalf("--dir: exit %d: %s", code, errOut)
	}
	conf, err := os.ReadFile(filepath.Join(dir, "named.conf.mnpool"))
	if err != nil || !strings.Contains(string(conf), filepath.Join(dir, "db.cluster")) {
		t.Fatalf("named.conf.mnpool: %v\n%s", err, conf)
	}
	// The default zone is site.domain, and its file holds what stdout shows.
	code, out, _ = run(ctx, dsn, "dns", "zone")
	file, _ := os.ReadFile(filepath.Join(dir, "db.cluster"))
	if code != 0 || out != string(file) || !strings.Contains(out, "cn001.cluster.\t60\tIN\tA\t10.0.1.1") {
		t.Fatalf("dns zone: exit %d\n%s\nfile:\n%s", code, out, file)
	}
}

func TestResolvconfOutput(t *testing.T) {
	dsn, _ := seededDB(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "resolv.conf")
	for i, want := range []string{"written", "unchanged"} {
		code, out, errOut := run(ctx, dsn, "dns", "resolvconf", "--member", "sn1", "--output", path)
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("run %d: exit %d, stdout %q (want %q), stderr %s", i, code, out, want, errOut)
		}
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "# Generated by mnpool for member sn1") {
		t.Errorf("file: %s", data)
	}
	if code, _, errOut := run(ctx, dsn, "dns", "resolvconf", "cn001,cn002", "--output", path); code != 2 {
		t.Errorf("--output with two nodes: exit %d, %s", code, errOut)
	}
}

func TestNTPCheckCommand(t *testing.T) {
	dsn, _ := seededDB(t)
	pc, err := net.ListenPacket("udp", "127.0.123.9:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close() // never answers
	code, out, errOut := run(context.Background(), dsn, "ntp", "check", "--server", pc.LocalAddr().String(), "--timeout", "200ms")
	if code != 1 || !strings.Contains(out, pc.LocalAddr().String()) || !strings.Contains(errOut, "no answer") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

func TestDNSServeCommand(t *testing.T) {
	dsn, _ := seededDB(t)
	// A free port for UDP and TCP.
	l, err := net.Listen("tcp", "127.0.53.7:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var errOut string
	go func() {
		code, _, e := run(ctx, dsn, "dns", "serve", "--listen", addr, "--interval", "50ms")
		errOut = e
		done <- code
	}()
	c := &mdns.Client{Net: "tcp", Timeout: 200 * time.Millisecond}
	deadline := time.Now().Add(testenv.Timeout(10 * time.Second))
	for {
		r, _, err := c.Exchange(new(mdns.Msg).SetQuestion("cn001.cluster.", mdns.TypeA), addr)
		if err == nil {
			if len(r.Answer) != 1 || r.Answer[0].(*mdns.A).A.String() != "10.0.1.1" {
				t.Fatalf("answer %v", r)
			}
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("server did not answer within 10s: %v", err)
		}
		select {
		case code := <-done:
			t.Fatalf("dns serve exited %d", code)
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("dns serve exited %d after SIGINT-like cancel: %s", code, errOut)
	}
	if !strings.Contains(errOut, "dns: stopped") {
		t.Errorf("stderr %q", errOut)
	}
}
