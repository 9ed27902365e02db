package ntp_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mnpool/mnpool/dns/dnstest"
	"github.com/mnpool/mnpool/internal/testenv"
	"github.com/mnpool/mnpool/ntp"
)

// freeUDPPort returns a UDP port free on ip at the time of the call.
func freeUDPPort(t *testing.T, ip string) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// startChronyd runs a real chronyd on ip:port (unprivileged port, no
// command port, its files in a temporary directory, -x: never touches the
// system clock) serving its local clock at stratum 10 in orphan mode, as
// a member cut off from the outside does. It returns once chronyd answers.
func startChronyd(t *testing.T, ip string) string {
	t.Helper()
	chronyd := dnstest.Tool(t, "chronyd", "chrony")
	dir := t.TempDir()
	var addr string
	for attempt := 0; attempt < 5; attempt++ {
		port := freeUDPPort(t, ip)
		conf := ntp.Conf{
			LocalStratum: ntp.DefaultLocalStratum, Orphan: true,
			Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			Port:  port, BindAddress: netip.MustParseAddr(ip), DisableCmdPort: true,
			PidFile: filepath.Join(dir, "chronyd.pid"), DriftFile: filepath.Join(dir, "chrony.drift"),
		}
		data, err := conf.Render()
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, "chrony.conf")
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		cmd := exec.Command(chronyd, "-d", "-x", "-u", "root", "-f", f)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
		})
		addr = net.JoinHostPort(ip, strconv.Itoa(port))
		deadline := time.Now().Add(testenv.Timeout(10 * time.Second))
		for time.Now().Before(deadline) {
			select {
			case <-exited:
				t.Logf("chronyd exited (port taken?): %s", logs.String())
				deadline = time.Time{}
				continue
			default:
			}
			res, _ := ntp.Check(context.Background(), []string{addr}, ntp.CheckOptions{Timeout: 200 * time.Millisecond})
			if res[0].OK() {
				return addr
			}
		}
		select {
		case <-exited:
		default:
			t.Fatalf("chronyd on %s gave no usable time within 10s: %s", addr, logs.String())
		}
	}
	t.Fatal("could not start chronyd")
	return ""
}

// silentServer is a UDP socket that reads and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.123.2:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	return pc.LocalAddr().String()
}

// fakeServer answers every NTP request with the given stratum, leap
// indicator and reference ID (stratum 0 with "RATE" is a kiss-of-death),
// its clock offset from the local one.
func fakeServer(t *testing.T, stratum, leap byte, refid string, offset time.Duration) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.123.3:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		req := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(req)
			if err != nil {
				return
			}
			if n < 48 {
				continue
			}
			resp := make([]byte, 48)
			resp[0] = leap<<6 | 4<<3 | 4 // LI, version 4, mode server
			resp[1] = stratum
			resp[2] = 6
			resp[3] = 0xec // precision 2^-20
			copy(resp[12:16], refid)
			now := ntpTime(time.Now().Add(offset))
			binary.BigEndian.PutUint64(resp[16:], now)   // reference
			copy(resp[24:32], req[40:48])                // origin = client's transmit
			binary.BigEndian.PutUint64(resp[32:], now)   // receive
			binary.BigEndian.PutUint64(resp[40:], now+1) // transmit
			pc.WriteTo(resp, from)
		}
	}()
	return pc.LocalAddr().String()
}

func ntpTime(t time.Time) uint64 {
	const unixToNTP = 2208988800
	sec := uint64(t.Unix() + unixToNTP)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return sec<<32 | frac
}

func TestCheckChronyd(t *testing.T) {
	addr := startChronyd(t, "127.0.123.1")
	silent := silentServer(t)
	start := time.Now()
	res, err := ntp.Check(context.Background(), []string{addr, silent}, ntp.CheckOptions{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > testenv.Timeout(3*time.Second) {
		t.Errorf("Check took %v with a 300ms timeout", took)
	}
	c := res[0]
	if c.Err != nil {
		t.Fatalf("chronyd: %v", c.Err)
	}
	if c.Server != addr || c.Stratum != ntp.DefaultLocalStratum {
		t.Errorf("chronyd: server %s stratum %d, want %s stratum %d", c.Server, c.Stratum, addr, ntp.DefaultLocalStratum)
	}
	// The same host's clock: the offset is measurement error, which NTP
	// bounds by half the round trip.
	if c.Offset.Abs() > c.RTT/2+10*time.Millisecond || c.RTT <= 0 || c.RTT > time.Second {
		t.Errorf("chronyd: offset %v RTT %v", c.Offset, c.RTT)
	}
	if c.KissCode != "" || c.Leap == 3 {
		t.Errorf("chronyd: kiss code %q leap %d", c.KissCode, c.Leap)
	}
	s := res[1]
	if !errors.Is(s.Err, ntp.ErrNoAnswer) || s.Server != silent {
		t.Errorf("silent server: %+v, want ErrNoAnswer", s)
	}
	a := ntp.Assess(res, 0)
	if a.Answered != 1 || len(a.Warnings) != 1 || a.Warnings[0].Server != silent {
		t.Errorf("assessment %+v, want one answer and one warning for %s", a, silent)
	}
}

func TestCheckKissOfDeath(t *testing.T) {
	kod := fakeServer(t, 0, 3, "RATE", 0)
	res, err := ntp.Check(context.Background(), []string{kod}, ntp.CheckOptions{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[0].Err, ntp.ErrKissOfDeath) || res[0].KissCode != "RATE" {
		t.Fatalf("got %+v, want a RATE kiss-of-death", res[0])
	}
}

func TestCheckUnsynchronized(t *testing.T) {
	srv := fakeServer(t, 16, 3, "INIT", 0)
	res, err := ntp.Check(context.Background(), []string{srv}, ntp.CheckOptions{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[0].Err, ntp.ErrUnsynchronized) {
		t.Fatalf("got %+v, want ErrUnsynchronized", res[0])
	}
}

func TestCheckCancel(t *testing.T) {
	silent := silentServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	res, err := ntp.Check(ctx, []string{silent}, ntp.CheckOptions{Timeout: 30 * time.Second})
	if !errors.Is(err, context.Canceled) || !errors.Is(res[0].Err, context.Canceled) {
		t.Fatalf("err %v, result %v; want context.Canceled", err, res[0].Err)
	}
	if took := time.Since(start); took > testenv.Timeout(5*time.Second) {
		t.Errorf("cancel took %v", took)
	}
}

func TestCheckBadServer(t *testing.T) {
	res, err := ntp.Check(context.Background(), []string{"bad host", "10.0.0.1:99999"}, ntp.CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !errors.Is(r.Err, ntp.ErrInvalid) {
			t.Errorf("%q: err %v, want ErrInvalid", r.Server, r.Err)
		}
	}
}

// TestCheckSkew measures a real chronyd and a server whose clock is 500ms
// ahead in one round; Assess reports the skew between them.
func TestCheckSkew(t *testing.T) {
	addr := startChronyd(t, "127.0.123.1")
	ahead := fakeServer(t, 3, 0, "GPS", 500*time.Millisecond)
	res, err := ntp.Check(context.Background(), []string{addr, ahead}, ntp.CheckOptions{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Server, r.Err)
		}
	}
	a := ntp.Assess(res, 100*time.Millisecond)
	if a.Earliest != addr || a.Latest != ahead {
		t.Errorf("earliest %s latest %s, want %s and %s", a.Earliest, a.Latest, addr, ahead)
	}
	if d := a.Spread - 500*time.Millisecond; d.Abs() > a.Uncertainty+10*time.Millisecond {
		t.Errorf("spread %v ±%v, want 500ms", a.Spread, a.Uncertainty)
	}
	if len(a.Warnings) != 1 || !errors.Is(a.Warnings[0].Err, ntp.ErrSkew) {
		t.Fatalf("warnings %v, want one ErrSkew", a.Warnings)
	}
	// The same clocks are fine with a looser limit.
	if a := ntp.Assess(res, time.Second); len(a.Warnings) != 0 {
		t.Errorf("max skew 1s: warnings %v", a.Warnings)
	}
}
