package sshkeys

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/mnpool/mnpool/internal/testenv"
)

// sshdPath finds OpenSSH's sshd, which Debian installs outside most users' PATH.
func sshdPath() (string, error) {
	if _, err := os.Stat("/usr/sbin/sshd"); err == nil {
		return "/usr/sbin/sshd", nil
	}
	return exec.LookPath("sshd")
}

// strictModesSafe reports whether sshd's StrictModes would accept every
// directory from dir up to /: owned by root or the user, not writable by
// group or others.
func strictModesSafe(dir string) bool {
	for p := dir; ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return false
		}
		uid := st.Sys().(*syscall.Stat_t).Uid
		if uid != 0 && int(uid) != os.Getuid() || st.Mode().Perm()&0o022 != 0 {
			return false
		}
		if p == filepath.Dir(p) {
			return true
		}
	}
}

// testBase returns a directory below which sshd's StrictModes can be on.
// t.TempDir() usually lies under /tmp (mode 1777), which StrictModes
// refuses, so /run is tried next; failing both, StrictModes is turned off
// and the test says so.
func testBase(t *testing.T) (dir string, strict bool) {
	if d := t.TempDir(); strictModesSafe(d) {
		return d, true
	}
	if d, err := os.MkdirTemp("/run", "mnpool-sshkeys-test-"); err == nil {
		t.Cleanup(func() { os.RemoveAll(d) })
		if strictModesSafe(d) {
			return d, true
		}
		return d, false
	}
	t.Log("no directory whose parents pass StrictModes; running sshd with StrictModes no")
	return t.TempDir(), false
}

// TestOpenSSHLogin runs the real OpenSSH sshd on a loopback port with the
// rendered member authorized_keys, and the real ssh client with the
// generated private keys and the rendered known_hosts.
func TestOpenSSHLogin(t *testing.T) {
	sshd, err := sshdPath()
	if err != nil {
		const msg = "OpenSSH server not installed (no /usr/sbin/sshd): apt-get install openssh-server to run this test"
		if os.Getenv("MNPOOL_REQUIRE_SSHD") == "1" {
			t.Fatal(msg + " (MNPOOL_REQUIRE_SSHD=1)")
		}
		t.Skip(msg)
	}
	sshClient, err := exec.LookPath("ssh")
	if err != nil {
		t.Fatalf("sshd is installed but the ssh client is not (Debian package openssh-client): %v", err)
	}
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Fatalf("sshd is installed but ssh-keygen is not (Debian package openssh-client): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Timeout(60*time.Second))
	defer cancel()
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// sshd running as root wants its privilege separation directory,
		// which the openssh-server service creates at boot.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	base, strict := testBase(t)
	keyDir := filepath.Join(base, "keys")
	if _, err := Init(ctx, keyDir, Options{}); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadPublicKeys(ctx, keyDir)
	if err != nil {
		t.Fatal(err)
	}

	// ssh-keygen reads our private key files and derives the same public
	// key and fingerprint.
	infos, err := Show(ctx, keyDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range infos {
		out, err := exec.CommandContext(ctx, keygen, "-y", "-f", info.Path).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen -y -f %s: %v\n%s", info.Path, err, out)
		}
		if pub := mustParse(t, string(out)); ssh.FingerprintSHA256(pub) != info.Fingerprint {
			t.Errorf("ssh-keygen derives %s from %s, Show says %s", ssh.FingerprintSHA256(pub), info.Path, info.Fingerprint)
		}
	}

	home := filepath.Join(base, "home")
	authKeys := filepath.Join(home, ".ssh", "authorized_keys")
	if _, _, err := UpdateAuthorizedKeysFile(ctx, authKeys, AuthorizedKeysSpec{Target: TargetMember, Name: "sn1", Keys: keys}); err != nil {
		t.Fatal(err)
	}
	os.Chmod(home, 0o755)
	if fs, err := Audit(ctx, AuditOptions{Target: TargetMember, Keys: keys, Owner: os.Getuid()}, authKeys); err != nil || len(fs) != 0 {
		t.Fatalf("audit of the file sshd will use: %v %v", fs, err)
	}
	hostKeyPath := filepath.Join(base, "ssh_host_ed25519_key")
	hostPub, err := generateKey(hostKeyPath, KindPool, Ed25519, 0)
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	knownHosts := filepath.Join(base, "known_hosts")
	kh, err := RenderKnownHosts(nil, []HostKeys{{Name: "sn1", Addresses: []string{"127.0.0.1"}, Port: port, Keys: []ssh.PublicKey{hostPub}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(knownHosts, kh, 0o644); err != nil {
		t.Fatal(err)
	}
	strictModes := "no"
	if strict {
		strictModes = "yes"
	}
	config := filepath.Join(base, "sshd_config")
	cfg := strings.Join([]string{
		"ListenAddress 127.0.0.1:" + strconv.Itoa(port),
		"HostKey " + hostKeyPath,
		"AuthorizedKeysFile " + authKeys,
		"StrictModes " + strictModes,
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"PermitRootLogin prohibit-password",
		"PidFile none",
		"LogLevel VERBOSE",
	}, "\n") + "\n"
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, sshd, "-t", "-f", config).CombinedOutput(); err != nil {
		t.Fatalf("sshd -t rejects the test configuration: %v\n%s", err, out)
	}
	logPath := filepath.Join(base, "sshd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	daemon := exec.Command(sshd, "-D", "-e", "-f", config)
	daemon.Stdout, daemon.Stderr = logFile, logFile
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		daemon.Process.Kill()
		daemon.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("sshd log:\n%s", log)
		}
	})
	if err := waitPort(ctx, port); err != nil {
		t.Fatal(err)
	}
	t.Logf("sshd %s on 127.0.0.1:%d, StrictModes %s, user %s", sshd, port, strictModes, me.Username)

	run := func(key string) (string, error) {
		cmd := exec.CommandContext(ctx, sshClient, "-F", "/dev/null",
			"-i", key, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
			"-o", "BatchMode=yes", "-o", "PasswordAuthentication=no",
			"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile="+knownHosts,
			"-o", "GlobalKnownHostsFile=/dev/null", "-o", "CheckHostIP=yes",
			"-o", "ConnectTimeout=10", "-p", strconv.Itoa(port),
			me.Username+"@127.0.0.1", "echo", "mnpool-login-ok")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if err != nil {
			return stdout.String(), fmt.Errorf("%w: %s", err, stderr.String())
		}
		return stdout.String(), nil
	}
	out, err := run(KeyPath(keyDir, KindPool))
	if err != nil || strings.TrimSpace(out) != "mnpool-login-ok" {
		t.Fatalf("ssh with the pool key: output %q, err %v", out, err)
	}
	out, err = run(KeyPath(keyDir, KindCompute))
	if err == nil {
		t.Fatalf("ssh with the compute key logged in to a member: %q", out)
	}
	if !strings.Contains(err.Error(), "Permission denied") {
		t.Fatalf("ssh with the compute key failed for another reason than authentication: %v", err)
	}
	// What Audit calls a bad file mode, sshd's StrictModes refuses. (World-
	// writable: Debian's sshd tolerates group-writable files whose group
	// has no other member, so 0664 would not show it.)
	if strict {
		os.Chmod(authKeys, 0o666)
		fs, _ := Audit(ctx, AuditOptions{Target: TargetMember, Keys: keys, Owner: os.Getuid()}, authKeys)
		if len(fs) != 1 || fs[0].Kind != FindingFileMode {
			t.Errorf("audit of a world-writable file: %v, want one file-mode finding", fs)
		}
		if _, err := run(KeyPath(keyDir, KindPool)); err == nil {
			t.Error("sshd with StrictModes accepted a world-writable authorized_keys")
		}
		os.Chmod(authKeys, 0o600)
	}
	// A private key readable by others is refused by the ssh client: the
	// 0600 mode is what makes `ssh -i` work.
	loose := filepath.Join(base, "loose.key")
	data, _ := os.ReadFile(KeyPath(keyDir, KindPool))
	os.WriteFile(loose, data, 0o644)
	if _, err := run(loose); err == nil || !strings.Contains(err.Error(), "UNPROTECTED PRIVATE KEY") {
		t.Errorf("ssh with a 0644 key copy: %v, want the client's UNPROTECTED PRIVATE KEY refusal", err)
	}
}
