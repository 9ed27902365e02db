package nodecfg

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/mnpool/mnpool/dispatch"
	"github.com/mnpool/mnpool/sshkeys"
)

// DefaultKnownHosts are the known_hosts files NewSSH reads when
// SSHConfig.KnownHosts is empty (those that exist).
func DefaultKnownHosts() []string {
	return []string{"~/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts"}
}

// SSHConfig says how to build the SSH pusher of snmove and the agent:
// the pool key (sshkeys) and the nodes' host keys from known_hosts.
type SSHConfig struct {
	// KeyDir holds the pool key (sshkeys.DefaultDir).
	KeyDir string
	// KnownHosts are known_hosts files with the nodes' host keys
	// (DefaultKnownHosts()); "~/" is the user's home. Those that exist are
	// used; at least one must.
	KnownHosts []string
	// InsecureIgnoreHostKey accepts any host key (no known_hosts needed).
	InsecureIgnoreHostKey bool
	// User, Port, Root and Apply are those of SSH.
	User  string
	Port  int
	Root  string
	Apply bool
	// Log gets one line per node (default: discard).
	Log *slog.Logger
}

// NewSSH builds the SSH pusher from the pool key in c.KeyDir and the
// known_hosts files. Errors wrap ErrSetup and name what is missing;
// nothing is sent to any node.
func NewSSH(ctx context.Context, c SSHConfig) (*SSH, error) {
	if c.KeyDir == "" {
		c.KeyDir = sshkeys.DefaultDir
	}
	if _, err := checkRoot(c.Root); err != nil {
		return nil, err
	}
	if c.Port < 0 || c.Port > 65535 {
		return nil, fmt.Errorf("%w: SSH port %d (want 1-65535, or 0 for 22)", ErrInvalid, c.Port)
	}
	signers, err := sshkeys.Signers(ctx, c.KeyDir, sshkeys.KindPool)
	if err != nil {
		return nil, fmt.Errorf("%w: loading the pool SSH key from %s: %w", ErrSetup, c.KeyDir, err)
	}
	p := &SSH{User: c.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signers...)}, Port: c.Port, Root: c.Root, Apply: c.Apply, Log: c.Log}
	if c.InsecureIgnoreHostKey {
		p.HostKeyCallback = ssh.InsecureIgnoreHostKey()
		return p, nil
	}
	cb, err := KnownHosts(c.KnownHosts)
	if err != nil {
		return nil, err
	}
	p.HostKeyCallback = cb
	return p, nil
}

// KnownHosts returns a host key callback from those of files that exist
// (DefaultKnownHosts() when files is empty; "~/" is the user's home).
func KnownHosts(files []string) (ssh.HostKeyCallback, error) {
	if len(files) == 0 {
		files = DefaultKnownHosts()
	}
	found := dispatch.ExistingKnownHosts(files)
	if len(found) == 0 {
		return nil, fmt.Errorf("%w: no known_hosts file among %s to check the nodes' host keys", ErrSetup, strings.Join(files, ", "))
	}
	cb, err := dispatch.KnownHosts(found...)
	if err != nil {
		return nil, fmt.Errorf("%w: reading known_hosts %s: %w", ErrSetup, strings.Join(found, ", "), err)
	}
	return cb, nil
}
