package console

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Opener opens a node's console endpoint and returns the byte stream of
// the console. Closing it ends the connection (for a command: the
// process). The broker calls Open only while it holds the node's lease.
type Opener interface {
	Open(ctx context.Context, spec Spec) (io.ReadWriteCloser, error)
}

// Defaults of Endpoints.
const (
	// DefaultCommandPath is the PATH bare program names are looked up in
	// and that command consoles run with.
	DefaultCommandPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	DefaultDialTimeout = 10 * time.Second
	DefaultKillGrace   = 2 * time.Second
	// EnvNode is set to the node name in a command console's environment.
	EnvNode = "MNPOOL_CONSOLE_NODE"
)

// Endpoints is the standard Opener: KindTCP by dialling the address,
// KindCommand by running argv under a pseudo-terminal (80x24, TERM=vt100)
// with a clean environment (PATH, LANG=C, TERM, MNPOOL_CONSOLE_NODE and
// Env), no shell. The zero value is ready to use.
type Endpoints struct {
	// Dial dials TCP consoles (default: net.Dialer with DefaultDialTimeout).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// CommandPath is the PATH for command consoles (default
	// DefaultCommandPath).
	CommandPath string
	// Env adds KEY=VALUE entries to command consoles' environment.
	Env []string
	// KillGrace is how long a command gets after SIGTERM (sent to its
	// process group when the console closes) before SIGKILL.
	KillGrace time.Duration
}

// Open implements Opener.
func (e Endpoints) Open(ctx context.Context, spec Spec) (io.ReadWriteCloser, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	switch spec.Kind {
	case KindTCP:
		dial := e.Dial
		if dial == nil {
			d := &net.Dialer{Timeout: DefaultDialTimeout}
			dial = d.DialContext
		}
		c, err := dial(ctx, "tcp", spec.Address)
		if err != nil {
			return nil, fmt.Errorf("console of %s: connecting to %s: %w", spec.Node, spec.Address, err)
		}
		return c, nil
	case KindCommand:
		path := e.CommandPath
		if path == "" {
			path = DefaultCommandPath
		}
		prog, err := lookPath(spec.Argv[0], path)
		if err != nil {
			return nil, fmt.Errorf("console of %s: %w", spec.Node, err)
		}
		env := append([]string{"PATH=" + path, "LANG=C", "TERM=vt100", EnvNode + "=" + spec.Node}, e.Env...)
		grace := e.KillGrace
		if grace <= 0 {
			grace = DefaultKillGrace
		}
		c, err := startPTY(prog, spec.Argv, env, grace)
		if err != nil {
			return nil, fmt.Errorf("console of %s: starting %s: %w", spec.Node, prog, err)
		}
		return c, nil
	}
	return nil, fmt.Errorf("%w: console kind %q", ErrInvalid, spec.Kind)
}

// lookPath resolves a bare program name in path; absolute paths are used
// as they are.
func lookPath(prog, path string) (string, error) {
	if filepath.IsAbs(prog) {
		if err := executable(prog); err != nil {
			return "", err
		}
		return prog, nil
	}
	for _, dir := range strings.Split(path, ":") {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, prog)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: program %q not found in %s", ErrNotFound, prog, path)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%w: %s is not an executable file", ErrInvalid, p)
	}
	return nil
}
