package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"github.com/mnpool/mnpool/dispatch"
	"github.com/mnpool/mnpool/nodecfg"
	"github.com/mnpool/mnpool/sshkeys"
)

// sshFlags are the SSH settings of xdsh and xdsh-relay.
type sshFlags struct {
	keyDir         string
	knownHosts     []string
	noHostKeyCheck bool
}

func (f *sshFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.keyDir, "key-dir", sshkeys.DefaultDir, "directory of the pool and compute SSH keys")
	fl.StringSliceVar(&f.knownHosts, "known-hosts", nodecfg.DefaultKnownHosts(), "known_hosts files with the host keys of nodes and members (those that exist are used)")
	fl.BoolVar(&f.noHostKeyCheck, "no-host-key-check", false, "accept any host key (insecure)")
}

// transport builds the SSH transport: the compute key then the pool key
// for nodes, the pool key for members, host keys from known_hosts.
func (f *sshFlags) transport(ctx context.Context) (*dispatch.SSH, error) {
	pool, err := sshkeys.Signers(ctx, f.keyDir, sshkeys.KindPool)
	if err != nil {
		return nil, fmt.Errorf("loading the pool SSH key from %s (create it with `mnpool sshkeys init`, or give --key-dir): %w", f.keyDir, err)
	}
	compute, err := sshkeys.Signers(ctx, f.keyDir, sshkeys.KindCompute)
	if err != nil && !errors.Is(err, sshkeys.ErrNotInitialized) {
		return nil, fmt.Errorf("loading the compute SSH key from %s: %w", f.keyDir, err)
	}
	t := &dispatch.SSH{
		NodeAuth:   []ssh.AuthMethod{ssh.PublicKeys(append(compute, pool...)...)},
		MemberAuth: []ssh.AuthMethod{ssh.PublicKeys(pool...)},
	}
	if f.noHostKeyCheck {
		t.HostKeyCallback = ssh.InsecureIgnoreHostKey()
		return t, nil
	}
	files := dispatch.ExistingKnownHosts(f.knownHosts)
	if len(files) == 0 {
		return nil, fmt.Errorf("no known_hosts file among %s to check host keys; give --known-hosts FILE or --no-host-key-check", strings.Join(f.knownHosts, ", "))
	}
	if t.HostKeyCallback, err = dispatch.KnownHosts(files...); err != nil {
		return nil, fmt.Errorf("reading known_hosts: %w", err)
	}
	return t, nil
}

// newXdshRelayCmd is the member's side of a relayed xdsh (hidden).
func newXdshRelayCmd(g *globals) *cobra.Command {
	var f sshFlags
	cmd := &cobra.Command{
		Use:    "xdsh-relay",
		Short:  "Run the nodes another member relays to this one (used by xdsh over SSH)",
		Long:   "xdsh-relay reads one relay request (JSON) on stdin, runs it on the nodes with its own fanout and writes the results as JSON lines on stdout. mnpool xdsh starts it on a member over SSH; it is not meant to be run by hand.",
		Args:   cobra.NoArgs,
		Hidden: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := f.transport(cmd.Context())
			if err != nil {
				return err
			}
			defer t.Close()
			r := &dispatch.Runner{Transport: t, RelayCommand: os.Getenv("MNPOOL_RELAY_COMMAND"), Log: g.logger()}
			return dispatch.ServeRelay(cmd.Context(), g.io.In, g.io.Out, r)
		},
	}
	f.add(cmd)
	return cmd
}
