package nodecfgtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// OpenSSH is a real OpenSSH sshd run by a test on loopback: it accepts
// root with the client keys given to StartOpenSSH, on one port of one or
// more loopback addresses (one per fake node).
type OpenSSH struct {
	// Port is the port on every address.
	Port int
	// KnownHosts is a known_hosts file with the host key for every
	// address.
	KnownHosts string
	// HostKey is sshd's host key.
	HostKey ssh.PublicKey
}

// StartOpenSSH starts /usr/sbin/sshd listening on port on each of addrs
// (loopback IPs; port 0 picks a free one on the first), accepting root
// with clients' keys, and stops it when the test ends. It fails the test
// when sshd is missing and MNPOOL_REQUIRE_SSHD=1, else skips; it skips
// when not run as root (sshd logs the client in as root).
func StartOpenSSH(t testing.TB, addrs []string, port int, clients ...ssh.PublicKey) *OpenSSH {
	t.Helper()
	sshd := RequireSSHD(t)
	if port == 0 {
		ln, err := net.Listen("tcp", net.JoinHostPort(addrs[0], "0"))
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	base := t.TempDir()
	authKeys, hostKeyPath, hostKey := writeSSHKeys(t, base, clients)
	o := &OpenSSH{Port: port, KnownHosts: filepath.Join(base, "known_hosts"), HostKey: hostKey}
	lines := []string{
		"HostKey " + hostKeyPath,
		"AuthorizedKeysFile " + authKeys,
		"StrictModes no", // the temporary directory is under /tmp (1777)
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"PermitRootLogin prohibit-password",
		"PidFile none",
		"MaxStartups 100:30:200",
	}
	var kh []string
	for _, a := range addrs {
		hp := net.JoinHostPort(a, strconv.Itoa(port))
		lines = append(lines, "ListenAddress "+hp)
		kh = append(kh, knownhosts.Line([]string{knownhosts.Normalize(hp)}, o.HostKey))
	}
	must(t, os.WriteFile(o.KnownHosts, []byte(strings.Join(kh, "\n")+"\n"), 0o600))
	config := filepath.Join(base, "sshd_config")
	must(t, os.WriteFile(config, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	if out, err := exec.Command(sshd, "-t", "-f", config).CombinedOutput(); err != nil {
		t.Fatalf("sshd -t: %v: %s", err, out)
	}
	startSSHD(t, sshd, config, filepath.Join(base, "sshd.log"))
	for _, a := range addrs {
		waitListening(t, net.JoinHostPort(a, strconv.Itoa(port)))
	}
	return o
}

// RequireSSHD returns the path of sshd; when sshd is missing, or the
// tests do not run as root (sshd logs in as root), it fails the test under
// MNPOOL_REQUIRE_SSHD=1 and skips it otherwise. It makes sshd's privilege
// separation directory.
func RequireSSHD(t testing.TB) string {
	t.Helper()
	sshd := "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		const msg = "OpenSSH server not installed (no /usr/sbin/sshd): apt-get install openssh-server to run this test"
		if os.Getenv("MNPOOL_REQUIRE_SSHD") == "1" {
			t.Fatal(msg + " (MNPOOL_REQUIRE_SSHD=1)")
		}
		t.Skip(msg)
	}
	if os.Geteuid() != 0 {
		if os.Getenv("MNPOOL_REQUIRE_SSHD") == "1" {
			t.Fatal("the real sshd logs in as root; run the tests as root (MNPOOL_REQUIRE_SSHD=1)")
		}
		t.Skip("the real sshd logs in as root; run the tests as root")
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // privilege separation directory
		t.Fatal(err)
	}
	return sshd
}

// writeSSHKeys writes an authorized_keys file of clients and a new host
// key into base.
func writeSSHKeys(t testing.TB, base string, clients []ssh.PublicKey) (authKeys, hostKeyPath string, hostKey ssh.PublicKey) {
	t.Helper()
	var auth []byte
	for _, k := range clients {
		auth = append(auth, ssh.MarshalAuthorizedKey(k)...)
	}
	authKeys = filepath.Join(base, "authorized_keys")
	must(t, os.WriteFile(authKeys, auth, 0o600))
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	block, err := ssh.MarshalPrivateKey(hostPriv, "")
	must(t, err)
	hostKeyPath = filepath.Join(base, "host_key")
	must(t, os.WriteFile(hostKeyPath, pem.EncodeToMemory(block), 0o600))
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	must(t, err)
	return authKeys, hostKeyPath, hostSigner.PublicKey()
}

// startSSHD runs sshd in the foreground with config, logging to logPath,
// until the test ends; the log is shown when the test failed.
func startSSHD(t testing.TB, sshd, config, logPath string) {
	t.Helper()
	logFile, err := os.Create(logPath)
	must(t, err)
	daemon := exec.Command(sshd, "-D", "-e", "-f", config)
	daemon.Stdout, daemon.Stderr = logFile, logFile
	if err := daemon.Start(); err != nil {
		logFile.Close()
		t.Fatalf("starting sshd: %v", err)
	}
	t.Cleanup(func() {
		daemon.Process.Kill()
		daemon.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("sshd log:\n%s", b)
		}
	})
}

// waitListening waits (10 s at most) until hp accepts connections.
func waitListening(t testing.TB, hp string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", hp, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd does not listen on %s: %v", hp, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
