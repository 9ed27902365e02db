package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mnpool/mnpool/dispatch"
	"github.com/mnpool/mnpool/pool/liveness"
)

// EnvFanout is xCAT's variable for the default fanout of xdsh.
const EnvFanout = "DSH_FANOUT"

// xdshFlags are xdsh's own flags.
type xdshFlags struct {
	ssh            sshFlags
	fanout         int
	timeout        int
	connectTimeout time.Duration
	user           string
	script         string
	envFile        string
	stream         bool
	exitStatus     bool
	quiet          bool
	via            string
	collate        bool
	port           int
	relayCommand   string
}

func newXdshCmds(g *globals) []*cobra.Command {
	return []*cobra.Command{newXdshCmd(g), newXdshbakCmd(g), newXdshRelayCmd(g)}
}

func newXdshCmd(g *globals) *cobra.Command {
	f := &xdshFlags{}
	cmd := &cobra.Command{
		Use:   "xdsh NODERANGE [-f N] [-t SECONDS] [-l USER] [-e SCRIPT] [-E ENVFILE] [-s] [-z] [-Q] [--via auto|direct|MEMBER] [--json] -- COMMAND",
		Short: "Run a command on nodes and members in parallel, through the member that serves each node (xCAT xdsh)",
		Long: `xdsh runs COMMAND on every node of NODERANGE over SSH, FANOUT at a time, and
prints each output line prefixed with "node: ". A node's output is held until
the node is done, so lines of different nodes never mix (-s prints lines as
they come).

Routing (--via): with auto (the default) each node goes through the first
alive member of its servicenode list, which runs it with its own fanout; nodes
this member serves, nodes whose members are all dead, and members themselves
run from here. --via direct runs everything from here; --via MEMBER (or
M1,M2 for two hops) runs everything through that member. Members are valid
targets: an SN can run a command on the MN. Nodes are logged into with the
compute key (then the pool key), members with the pool key; host keys are
checked against known_hosts.

The command reads an empty stdin. -e SCRIPT copies SCRIPT to each node and
runs it with the arguments after --. -E FILE exports the NAME=VALUE lines of
FILE first. Fanout: -f, else $DSH_FANOUT, else 64.

Exit status: 0 when every node ran the command with exit status 0; 1 when any
node failed or could not be reached (the counts are printed on stderr); 2 for
a bad command line.`,
		Example: `  mnpool xdsh compute -- uptime
  mnpool xdsh cn[001-100] -f 128 -t 30 -- 'systemctl is-active slurmd'
  mnpool xdsh rack1 -e ./fix.sh -- --dry-run
  mnpool xdsh all -- uname -r | mnpool xdshbak -c
  mnpool xdsh mn1 --self sn2 -- mnpool status     # an SN runs a command on the MN`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runXdsh(cmd, g, f, args)
		},
	}
	g.addJSON(cmd)
	cmd.Flags().Lookup("json").Usage = "print one JSON document at the end: every result and the summary"
	f.ssh.add(cmd)
	fl := cmd.Flags()
	fl.IntVarP(&f.fanout, "fanout", "f", 0, "nodes run at once (default $DSH_FANOUT, else 64)")
	fl.IntVarP(&f.timeout, "timeout", "t", 0, "seconds each node may take, login included (default: no limit)")
	fl.DurationVar(&f.connectTimeout, "connect-timeout", dispatch.DefaultConnectTimeout, "time allowed to reach a node and log in")
	fl.StringVarP(&f.user, "user", "l", "", "user to log in as on the targets (default root)")
	fl.StringVarP(&f.script, "execute", "e", "", "copy this local script to each target and run it (arguments after --)")
	fl.StringVarP(&f.envFile, "environment", "E", "", "file of NAME=VALUE lines exported before the command")
	fl.BoolVarP(&f.stream, "stream", "s", false, "print output lines as they arrive instead of per node")
	fl.BoolVarP(&f.exitStatus, "exit-status", "z", false, `print "node: exit status N" after each node's output`)
	fl.BoolVarP(&f.quiet, "quiet", "Q", false, "no progress line and no per-node error lines on stderr (the summary stays)")
	fl.StringVar(&f.via, "via", dispatch.ViaAuto, "auto, direct, or a member (M1,M2: through M1 then M2)")
	fl.BoolVar(&f.collate, "collate", false, "group nodes with identical output and exit status (like xdshbak -c)")
	fl.IntVar(&f.port, "ssh-port", 22, "SSH port of nodes and members")
	fl.StringVar(&f.relayCommand, "relay-command", "", "command that starts the relay on a member (default $MNPOOL_RELAY_COMMAND, else \"mnpool xdsh-relay\")")
	return cmd
}

// xdshRequest builds the request from the flags and the words after
// the noderange; every error is a bad command line.
func xdshRequest(cmd *cobra.Command, f *xdshFlags, words []string) (dispatch.Request, error) {
	req := dispatch.Request{User: f.user, Stream: f.stream, ConnectTimeout: f.connectTimeout}
	fanout, err := xdshFanout(cmd, f)
	if err != nil {
		return req, err
	}
	req.Fanout = fanout
	if f.timeout < 0 || (cmd.Flags().Changed("timeout") && f.timeout == 0) {
		return req, usagef("-t %d: want a number of seconds, 1 or more", f.timeout)
	}
	req.CommandTimeout = time.Duration(f.timeout) * time.Second
	if f.connectTimeout <= 0 {
		return req, usagef("--connect-timeout %s: want a positive duration", f.connectTimeout)
	}
	if f.script != "" {
		if req.Script, err = os.ReadFile(f.script); err != nil {
			return req, usagef("-e %s: cannot read the script: %v", f.script, errors.Unwrap(err))
		}
		if len(req.Script) == 0 {
			return req, usagef("-e %s: the script is empty", f.script)
		}
		req.Args = words
	} else {
		req.Command = strings.Join(words, " ")
		if strings.TrimSpace(req.Command) == "" {
			return req, usagef("no command: give it after the noderange (mnpool xdsh NODERANGE -- COMMAND) or give -e SCRIPT")
		}
	}
	if f.envFile != "" {
		data, err := os.ReadFile(f.envFile)
		if err != nil {
			return req, usagef("-E %s: cannot read the environment file: %v", f.envFile, errors.Unwrap(err))
		}
		if req.Env, err = dispatch.ParseEnvFile(f.envFile, data); err != nil {
			return req, usagef("-E: %v", cleanDispatch(err))
		}
	}
	if err := req.Validate(); err != nil {
		return req, usagef("%v", cleanDispatch(err))
	}
	return req, nil
}

func xdshFanout(cmd *cobra.Command, f *xdshFlags) (int, error) {
	if cmd.Flags().Changed("fanout") {
		if f.fanout < 1 || f.fanout > dispatch.MaxFanout {
			return 0, usagef("-f %d: want 1 to %d nodes at once", f.fanout, dispatch.MaxFanout)
		}
		return f.fanout, nil
	}
	if v := os.Getenv(EnvFanout); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > dispatch.MaxFanout {
			return 0, usagef("%s=%q: want 1 to %d", EnvFanout, v, dispatch.MaxFanout)
		}
		return n, nil
	}
	return dispatch.DefaultFanout, nil
}

// cleanDispatch is the message of a dispatch error for people, which
// dispatch.Error carries without the package tag.
func cleanDispatch(err error) string {
	var de *dispatch.Error
	if errors.As(err, &de) {
		return de.Msg
	}
	return err.Error()
}

func runXdsh(cmd *cobra.Command, g *globals, f *xdshFlags, args []string) error {
	ctx := cmd.Context()
	words := args[1:]
	req, err := xdshRequest(cmd, f, words)
	if err != nil {
		return err
	}
	// --json and --collate print whole results at the end: -s has no
	// meaning there, and the results must keep their output.
	req.Stream = req.Stream && !g.json && !f.collate
	if strings.TrimSpace(args[0]) == "" {
		return usagef("the noderange is empty; give node names, ranges such as cn[001-100], or groups")
	}
	if f.via == "" {
		return usagef("--via: give auto, direct or a member name")
	}
	plan, err := xdshPlan(ctx, g, f, args[0])
	if err != nil {
		return err
	}
	t, err := f.ssh.transport(ctx)
	if err != nil {
		return err
	}
	defer t.Close()
	relay := f.relayCommand
	if relay == "" {
		relay = os.Getenv("MNPOOL_RELAY_COMMAND")
	}
	// An explicit --via MEMBER is obeyed: no falling back to direct.
	r := &dispatch.Runner{Transport: t, RelayCommand: relay, NoFallback: f.via != dispatch.ViaAuto, Log: g.logger()}
	p := newXdshPrinter(g, f, plan.Len())
	s, err := r.Run(ctx, req, plan, p.handlers())
	if err != nil {
		return usagef("%v", cleanDispatch(err))
	}
	return p.finish(s)
}

// xdshPlan reads the pool and routes the noderange.
func xdshPlan(ctx context.Context, g *globals, f *xdshFlags, expr string) (dispatch.Plan, error) {
	s, err := g.open(ctx)
	if err != nil {
		return dispatch.Plan{}, err
	}
	defer s.Close()
	st, err := s.LoadState(ctx)
	if err != nil {
		return dispatch.Plan{}, err
	}
	names, err := dispatch.Select(st, expr)
	if errors.Is(err, dispatch.ErrInvalid) || errors.Is(err, dispatch.ErrUnknown) {
		return dispatch.Plan{}, usagef("%s", cleanError(cleanDispatch(err)))
	}
	if err != nil {
		return dispatch.Plan{}, errors.New(cleanError(cleanDispatch(err)))
	}
	o := dispatch.PlanOptions{Self: g.selfName(), Via: f.via, Port: f.port}
	if f.via == dispatch.ViaAuto {
		var v liveness.View
		if v, err = s.PublishedView(ctx); err != nil {
			return dispatch.Plan{}, fmt.Errorf("reading the members' liveness: %w", err)
		}
		o.Liveness = v
	}
	p, err := dispatch.NewPlan(st, names, o)
	if errors.Is(err, dispatch.ErrInvalid) {
		return p, usagef("%s", cleanDispatch(err))
	}
	return p, err
}
