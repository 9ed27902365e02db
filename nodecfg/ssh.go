package nodecfg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// DefaultSSHUser is the login user of SSH when User is empty.
const DefaultSSHUser = "root"

// SSH is the Pusher that writes files over SSH. Each node gets one
// connection; each file one session running a fixed script (see Script)
// with the file's content on stdin.
//
// Auth and HostKeyCallback are required; use knownhosts.New for checked
// host keys, or ssh.InsecureIgnoreHostKey() knowingly.
type SSH struct {
	// User is the login user (DefaultSSHUser).
	User string
	// Auth are the client credentials, e.g. ssh.PublicKeys(signers...)
	// with the pool key (sshkeys.Signers(ctx, dir, sshkeys.KindPool)).
	Auth []ssh.AuthMethod
	// HostKeyCallback checks the node's host key.
	HostKeyCallback ssh.HostKeyCallback
	// Port is used when a target address has none (22).
	Port int
	// Root is where the node's file system is, as seen by the login
	// shell: "" or "/" for the node itself, an absolute directory for an
	// image root, or a relative directory (relative to the login
	// directory). Letters, digits, '.', '_', '-' and '/' only, no "..".
	Root string
	// Apply runs what makes a changed file take effect: restart chronyd
	// or rsyslog, `ip route replace default via GATEWAY`. Off, only the
	// files are written.
	Apply bool
	// Dial opens the TCP connection (default: net.Dialer).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Log gets one line per node (default: discard).
	Log *slog.Logger
}

var rootRE = regexp.MustCompile(`^[A-Za-z0-9._/-]*$`)

// checkRoot validates Root and returns it without a trailing slash ("" for
// the node's own root).
func checkRoot(root string) (string, error) {
	if !rootRE.MatchString(root) || strings.HasPrefix(root, "-") {
		return "", fmt.Errorf("%w: root %q: letters, digits, '.', '_', '-' and '/' only", ErrInvalid, root)
	}
	for _, el := range strings.Split(root, "/") {
		if el == ".." {
			return "", fmt.Errorf("%w: root %q must not contain ..", ErrInvalid, root)
		}
	}
	return strings.TrimRight(root, "/"), nil
}

// Script returns the remote shell script that installs a file of kind k
// under root (validated with the rules of SSH.Root) from its stdin. It
// prints "changed" or "unchanged" on stdout and nothing else; errors go to
// stderr with a non-zero exit. The script is fixed text except for the
// validated root and the apply switch: file contents only ever travel on
// stdin.
func Script(k Kind, root string, apply bool) (string, error) {
	r, err := checkRoot(root)
	if err != nil {
		return "", err
	}
	if k.Path() == "" {
		return "", fmt.Errorf("%w: file kind %q (allowed: %s)", ErrInvalid, k, kindList())
	}
	a := "0"
	if apply {
		a = "1"
	}
	var b strings.Builder
	b.WriteString("set -eu\numask 077\nr='" + r + "'\na=" + a + "\n")
	switch k {
	case KindChrony:
		// Debian and Ubuntu keep it in /etc/chrony/, RHEL and SUSE in /etc.
		b.WriteString(`if [ -e "$r/etc/chrony/chrony.conf" ] || { [ -d "$r/etc/chrony" ] && [ ! -e "$r/etc/chrony.conf" ]; }; then f="$r/etc/chrony/chrony.conf"; else f="$r/etc/chrony.conf"; fi` + "\n")
	default:
		b.WriteString(`f="$r` + k.Path() + `"` + "\n")
	}
	b.WriteString(`d=${f%/*}
if [ -d "$f" ]; then echo "$f is a directory" >&2; exit 3; fi
mkdir -p "$d"
t=$(mktemp "$d/.mnpool.XXXXXX")
trap 'rm -f "$t"' EXIT
cat >"$t"
if [ -f "$f" ] && cmp -s "$t" "$f"; then echo unchanged; exit 0; fi
chmod 0644 "$t"
sync "$t" 2>/dev/null || sync
mv -f "$t" "$f"
echo changed
[ "$a" = 1 ] || exit 0
`)
	switch k {
	case KindChrony:
		b.WriteString(restart("chronyd", "chrony"))
	case KindSyslog:
		b.WriteString(restart("rsyslog"))
	case KindRoute:
		b.WriteString(`gw=$(cat "$f")
case $gw in ''|*[!0-9A-Fa-f.:]*) echo "bad gateway in $f" >&2; exit 3;; esac
ip route replace default via "$gw" >&2
`)
	}
	return b.String(), nil
}

// restart restarts the first of the units the node has, if it runs.
func restart(units ...string) string {
	var b strings.Builder
	b.WriteString("if command -v systemctl >/dev/null 2>&1; then\n")
	for i, u := range units {
		kw := "elif"
		if i == 0 {
			kw = "if"
		}
		fmt.Fprintf(&b, "  %s systemctl cat %s.service >/dev/null 2>&1; then systemctl try-restart %s.service >&2\n", kw, u, u)
	}
	b.WriteString("  fi\nfi\n")
	return b.String()
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// maxStderr bounds the remote error text kept in a Result.
const maxStderr = 2048

type limitedBuffer struct {
	bytes.Buffer
	n int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.n - l.Len(); room > 0 {
		l.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Push implements Pusher.
func (p *SSH) Push(ctx context.Context, t Target, files []File) Result {
	start := time.Now()
	res := Result{Node: t.Node, Addr: t.Addr}
	res.Err = p.push(ctx, t, files, &res)
	res.Elapsed = time.Since(start)
	for _, f := range res.Files {
		res.Changed = res.Changed || f.Changed
	}
	log := p.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if res.Err != nil {
		log.Warn("nodecfg: push failed", "node", t.Node, "addr", t.Addr, "err", res.Err)
	} else {
		log.Debug("nodecfg: pushed", "node", t.Node, "addr", t.Addr, "changed", res.Changed, "elapsed", res.Elapsed)
	}
	return res
}

func (p *SSH) push(ctx context.Context, t Target, files []File, res *Result) error {
	addr, scripts, err := p.prepare(t, files)
	if err != nil || len(files) == 0 {
		return err
	}
	dial := p.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return timedOut(ctx, t, addr, "connecting", fmt.Errorf("%w: node %s (%s): %v", ErrConnect, t.Node, addr, err))
	}
	// Closing the connection is what interrupts the handshake and the
	// sessions when the node's time is up.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	client, err := p.login(ctx, conn, t, addr)
	if err != nil {
		return err
	}
	defer client.Close()
	for i, f := range files {
		changed, err := runScript(client, scripts[i], f.Data)
		if err == nil || changed {
			res.Files = append(res.Files, FileResult{Kind: f.Kind, Changed: changed})
		}
		if err != nil {
			return timedOut(ctx, t, addr, "writing "+string(f.Kind), fmt.Errorf("node %s: %s: %w", t.Node, f.Kind, err))
		}
	}
	return nil
}

// prepare checks the pusher's settings and the files, and returns the
// node's host:port and the remote command that installs each file.
func (p *SSH) prepare(t Target, files []File) (addr string, scripts []string, err error) {
	if p.HostKeyCallback == nil {
		return "", nil, fmt.Errorf("%w: SSH pusher has no HostKeyCallback", ErrInvalid)
	}
	if len(p.Auth) == 0 {
		return "", nil, fmt.Errorf("%w: SSH pusher has no credentials", ErrInvalid)
	}
	port := p.Port
	if port == 0 {
		port = 22
	}
	addr, err = hostPortFor(t.Addr, port)
	if err != nil {
		return "", nil, fmt.Errorf("node %s: %w", t.Node, err)
	}
	if err := validateFiles(files); err != nil {
		return "", nil, fmt.Errorf("node %s: %w", t.Node, err)
	}
	scripts = make([]string, len(files))
	for i, f := range files {
		s, err := Script(f.Kind, p.Root, p.Apply)
		if err != nil {
			return "", nil, err
		}
		scripts[i] = "exec /bin/sh -c " + shellQuote(s)
	}
	return addr, scripts, nil
}

// login runs the SSH handshake on conn, checking the node's host key.
func (p *SSH) login(ctx context.Context, conn net.Conn, t Target, addr string) (*ssh.Client, error) {
	user := p.User
	if user == "" {
		user = DefaultSSHUser
	}
	var hostKeyErr error
	cfg := &ssh.ClientConfig{
		User: user,
		Auth: p.Auth,
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			if err := p.HostKeyCallback(hostname, remote, key); err != nil {
				hostKeyErr = err
				return err
			}
			return nil
		},
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		if hostKeyErr != nil {
			return nil, fmt.Errorf("%w: node %s (%s): %v", ErrHostKey, t.Node, addr, hostKeyErr)
		}
		return nil, timedOut(ctx, t, addr, "logging in", fmt.Errorf("%w: node %s (%s): %v", ErrConnect, t.Node, addr, err))
	}
	return ssh.NewClient(c, chans, reqs), nil
}

// timedOut returns err, or an ErrTimeout naming step when ctx (the
// node's time) has ended.
func timedOut(ctx context.Context, t Target, addr, step string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: node %s (%s) while %s: %w", ErrTimeout, t.Node, addr, step, ctx.Err())
	}
	return err
}

// runScript runs one install script with data on stdin.
func runScript(client *ssh.Client, cmd string, data []byte) (changed bool, err error) {
	sess, err := client.NewSession()
	if err != nil {
		return false, fmt.Errorf("%w: opening session: %v", ErrRemote, err)
	}
	defer sess.Close()
	var stdout, stderr limitedBuffer
	stdout.n, stderr.n = 64, maxStderr
	sess.Stdin = bytes.NewReader(data)
	sess.Stdout, sess.Stderr = &stdout, &stderr
	if err := sess.Run(cmd); err != nil {
		msg := strings.TrimSpace(stderr.String())
		var ee *ssh.ExitError
		if errors.As(err, &ee) {
			if msg == "" {
				msg = fmt.Sprintf("exit status %d", ee.ExitStatus())
			}
			out := strings.TrimSpace(stdout.String())
			if out == "changed" {
				// The file is in place; applying it failed.
				return true, fmt.Errorf("%w: file written, applying it failed: %s", ErrRemote, msg)
			}
			return false, fmt.Errorf("%w: %s", ErrRemote, msg)
		}
		if errors.Is(err, io.EOF) || msg == "" {
			return false, fmt.Errorf("%w: %v", ErrRemote, err)
		}
		return false, fmt.Errorf("%w: %v: %s", ErrRemote, err, msg)
	}
	switch out := strings.TrimSpace(stdout.String()); out {
	case "changed":
		return true, nil
	case "unchanged":
		return false, nil
	default:
		return false, fmt.Errorf("%w: unexpected output %q (want changed or unchanged)", ErrRemote, out)
	}
}
