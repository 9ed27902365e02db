package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mnpool/mnpool/makemn"
	"github.com/mnpool/mnpool/mnguard"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
	"github.com/mnpool/mnpool/poolsync"
	"github.com/mnpool/mnpool/rolefiles"
)

// makemnFlags are the flags of makemn and `mnpool sync`.
type makemnFlags struct {
	force       bool
	dryRun      bool
	root        string
	replicaHook string
	replicaWait time.Duration
	dbAddrs     []string
	syncHook    string
	hold        time.Duration
	dhcp        dhcpFlags
	wait        time.Duration
}

// addDHCPFlags adds the flags of the DHCP sync step (makemn and sync).
func (f *makemnFlags) addDHCPFlags(fl *pflag.FlagSet) {
	addDHCPFlags(fl, &f.dhcp, "default under --root: etc/dhcp/dhcpd.conf or etc/kea/kea-dhcp4.conf", true, "dhcp-out")
}

// NewMakemn builds the makemn command.
func NewMakemn(io IO) *cobra.Command {
	g := &globals{io: io}
	var f makemnFlags
	cmd := &cobra.Command{
		Use:   "makemn [--force] [--dry-run] [--json]",
		Short: "Make this service node the MN of the pool (the old MN may be up or down)",
		Long: `makemn runs on the service node that is to become the MN (--self, $MNPOOL_SELF,
else the short host name). It works whether the old MN is up or down:

  lock      the cluster-wide makemn lock (a lease with a fencing token in the
            pool database): a second makemn started while this one runs, on
            any member, fails at once naming the member and token holding it,
            and changes nothing (--wait waits for it instead)
  db        the local Galera node (the first in the DSN list) is Primary and Synced
  target    this member is a member of the pool, enabled, and alive
  replica   this member holds a Synced replica of the pool database (else
            --replica-hook starts one, else makemn refuses and says what to do)
  old-mn    the old MN's liveness is reported
  promote   one conditional update: epoch+1, site.master, audit record;
            of concurrent makemn runs exactly one wins
  hold      the MN guard confirms the new role through a Primary database
            node and waits until the old MN's dynamic range has expired
  sync      role files (/etc/xCATMN here, /etc/xCATSN on the others) and the
            configuration that depends on the role (DHCP dynamic range)

Each step is printed with its outcome. The exit status is 0 when every step
succeeded, 1 when one failed (the database is left consistent: run makemn
again), 2 for a bad command line. See docs/MAKEMN-RUNBOOK.md.`,
		Example: `  makemn --dry-run
  makemn
  makemn --self sn2 --force --replica-hook "/usr/local/sbin/galera-join"
  makemn --db-address sn2=192.168.50.12 --json`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMakemn(cmd.Context(), g, f)
		},
	}
	cmd.SetIn(io.In)
	cmd.SetOut(io.Out)
	cmd.SetErr(io.Err)
	g.addFlags(cmd)
	g.addJSON(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&f.force, "force", false, "go past the checks that allow it (local DB node not Synced while another is, member disabled or not alive, no DB replica here)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "run the checks and print what would be done; change nothing")
	fl.StringVar(&f.root, "root", "/", "root directory of the role files (etc/xCATMN, etc/xCATSN)")
	f.addDHCPFlags(fl)
	fl.StringVar(&f.replicaHook, "replica-hook", "", "command that starts a Galera replica on this member when it has none; run without a shell, with the member name as its last argument")
	fl.DurationVar(&f.replicaWait, "replica-wait", makemn.DefaultReplicaWait, "how long to wait after --replica-hook for the replica to be Synced")
	fl.StringArrayVar(&f.dbAddrs, "db-address", nil, "MEMBER=IP: the address a member's Galera node is reached at, when it is not one of its pool addresses (repeatable)")
	fl.StringVar(&f.syncHook, "sync-hook", "", "command run as the last sync step, without a shell, with arguments MEMBER ROLE EPOCH DYNAMIC (yes|no); for example a script that runs makedhcp")
	fl.DurationVar(&f.wait, "wait", 0, "when another makemn holds the cluster-wide makemn lock, wait up to this long for it (a lock whose holder died is taken over after its TTL, 60s) instead of failing at once")
	fl.DurationVar(&f.hold, "hold", mnguard.DefaultValidFor+mnguard.DefaultConfirmEvery, "how long the new role must be confirmed before the dynamic range is served (shorter only when the old MN is known to be down)")
	return cmd
}

// Makemn is the main function of cmd/makemn.
func Makemn(ctx context.Context, args []string, io IO) int {
	return Run(ctx, NewMakemn(io), args, io.Err)
}

func runMakemn(ctx context.Context, g *globals, f makemnFlags) error {
	for name, d := range map[string]time.Duration{"--hold": f.hold, "--wait": f.wait} {
		if d < 0 {
			return usagef("%s %v: must not be negative", name, d)
		}
	}
	f.dhcp.warnDeprecated(g.io.Err, "makemn")
	o, err := f.options(g)
	if err != nil {
		return err
	}
	s, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := g.requireMember(ctx, s); err != nil {
		return err
	}
	if o.MakeMN.Liveness, err = livenessView(ctx, s); err != nil {
		return err
	}
	out := g.io.Out
	if !g.json {
		what := "becomes"
		if f.dryRun {
			what = "would become"
		}
		fmt.Fprintf(out, "makemn: %s %s the MN\n", o.MakeMN.Target, what)
		o.MakeMN.OnStep = func(st makemn.Step) { printStep(out, st) }
	}
	rep, err := makemn.Run(ctx, s, o)
	if g.json {
		if perr := printJSON(out, rep); perr != nil {
			return perr
		}
		return err
	}
	switch {
	case err != nil && rep.Master.Member == "":
		fmt.Fprintf(out, "makemn: FAILED; nothing was changed\n")
	case err != nil:
		fmt.Fprintf(out, "makemn: FAILED; the MN is %s (epoch %d)\n", rep.Master.Member, rep.Master.Epoch)
	case rep.DryRun:
		fmt.Fprintf(out, "makemn: dry run: nothing changed; the MN is %s (epoch %d)\n", rep.Master.Member, rep.Master.Epoch)
	default:
		fmt.Fprintf(out, "makemn: done: %s is the MN of epoch %d\n", rep.Master.Member, rep.Master.Epoch)
	}
	return err
}

// options turns the command line into makemn.Options (without the
// liveness view, which needs the store); errors are usage errors.
func (f makemnFlags) options(g *globals) (makemn.Options, error) {
	dbAddrs, err := parseDBAddrs(f.dbAddrs)
	if err != nil {
		return makemn.Options{}, err
	}
	replicaHook, err := execHook("--replica-hook", f.replicaHook)
	if err != nil {
		return makemn.Options{}, err
	}
	steps, err := syncSteps(f)
	if err != nil {
		return makemn.Options{}, err
	}
	self := g.selfName()
	if err := pool.ValidateName("member", self); err != nil {
		return makemn.Options{}, usagef("--self: %v", err)
	}
	o := makemn.Request{
		Target:      self,
		Force:       f.force,
		DryRun:      f.dryRun,
		DBAddresses: dbAddrs,
		ReplicaWait: f.replicaWait,
		Guard:       []mnguard.Option{mnguard.WithHold(f.hold), mnguard.WithLogger(g.logger())},
		Sync:        poolsync.Options{Steps: steps},
		Reason:      "makemn",
	}
	if replicaHook != nil {
		o.ReplicaHook = func(ctx context.Context, member string) error { return replicaHook(ctx, member) }
	}
	return makemn.Options{MakeMN: o, Wait: f.wait}, nil
}

func printStep(w io.Writer, st makemn.Step) {
	fmt.Fprintf(w, "%-9s %-18s %s\n", "["+string(st.Status)+"]", st.Name, st.Message)
}

// parseDBAddrs parses MEMBER=IP pairs.
func parseDBAddrs(pairs []string) (map[string]netip.Addr, error) {
	out := map[string]netip.Addr{}
	for _, p := range pairs {
		m, ip, ok := strings.Cut(p, "=")
		if !ok {
			return nil, usagef("--db-address %q: want MEMBER=IP, such as sn2=192.168.50.12", p)
		}
		if err := pool.ValidateName("member", m); err != nil {
			return nil, usagef("--db-address %q: %v", p, err)
		}
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return nil, usagef("--db-address %q: %q is not an IP address", p, ip)
		}
		out[m] = a
	}
	return out, nil
}

// hookFunc runs an external command with extra arguments.
type hookFunc func(ctx context.Context, args ...string) error

// execHook turns a command line into a hook. The line is split on white
// space (no shell: no quoting, globbing or variables); the arguments given
// at run time are appended. An empty line gives no hook.
func execHook(flag, line string) (hookFunc, error) {
	argv := strings.Fields(line)
	if len(argv) == 0 {
		return nil, nil
	}
	if strings.ContainsAny(line, "\x00\n") {
		return nil, usagef("%s %q: must be one line", flag, line)
	}
	return func(ctx context.Context, args ...string) error {
		cmd := exec.CommandContext(ctx, argv[0], append(append([]string{}, argv[1:]...), args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			msg := strings.TrimSpace(out.String())
			if len(msg) > 500 {
				msg = "..." + msg[len(msg)-500:]
			}
			if msg != "" {
				return fmt.Errorf("%s: %w: %s", argv[0], err, msg)
			}
			return fmt.Errorf("%s: %w", argv[0], err)
		}
		return nil
	}, nil
}

// syncSteps is the one place that lists what `makemn` and `mnpool sync`
// bring in line with the database, in order: the role files, the DHCP
// file (dhcp.ApplierConfig.SyncStep, as makedhcp renders it), the hook.
func syncSteps(f makemnFlags) ([]poolsync.Step, error) {
	if f.root == "" {
		return nil, usagef("--root: must not be empty (\"/\" in production)")
	}
	steps := []poolsync.Step{rolefiles.Step(f.root)}
	// The DHCP dynamic range follows the MN role: the step renders it only
	// when the sync (the MN guard) says this member may serve it.
	ac, enabled, err := f.dhcp.config()
	if err != nil {
		return nil, err
	}
	if enabled {
		if ac.Path == "" {
			ac.Path = filepath.Join(f.root, ac.Format.DefaultPath())
		}
		steps = append(steps, ac.SyncStep())
	}
	hook, err := execHook("--sync-hook", f.syncHook)
	if err != nil {
		return nil, err
	}
	if hook != nil {
		steps = append(steps, poolsync.StepFunc("hook", func(ctx context.Context, in *poolsync.Input) (poolsync.Change, error) {
			dyn := "no"
			if in.ServeDynamic {
				dyn = "yes"
			}
			if err := hook(ctx, in.Self, string(in.Role), strconv.FormatInt(in.State.Master.Epoch, 10), dyn); err != nil {
				return poolsync.Change{}, err
			}
			return poolsync.Change{Changed: true, Detail: "ran " + strings.Fields(f.syncHook)[0] + " " + in.Self + " " + string(in.Role) + " dynamic=" + dyn}, nil
		}))
	}
	return steps, nil
}

// livenessView is the one place the CLI gets members' liveness from: the
// judgements the members' observers publish (mnpool heartbeat --publish,
// the agent). A one-shot command cannot watch counters long enough itself.
func livenessView(ctx context.Context, s *pool.Store) (liveness.Source, error) {
	v, err := s.PublishedView(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the members' liveness: %w", err)
	}
	return v, nil
}

const syncLong = `sync reads the pool once and brings this member (--self) in line with it: the
xCAT role files (/etc/xCATMN on the MN, /etc/xCATSN on every other member) and
the configuration that depends on the role (the DHCP dynamic range is served
only by the MN). Run it on the old MN after a makemn, and on any member whose
files are in doubt; the agent runs it continuously.`

func newSyncCmd(g *globals) *cobra.Command {
	var f makemnFlags
	cmd := &cobra.Command{
		Use:   "sync [--root DIR] [--sync-hook CMD] [--json]",
		Short: "Bring this member's role files and role-dependent configuration in line with the pool",
		Long:  syncLong,
		Example: `  mnpool sync
  mnpool sync --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.dhcp.warnDeprecated(g.io.Err, "mnpool sync")
			steps, err := syncSteps(f)
			if err != nil {
				return err
			}
			self := g.selfName()
			if err := pool.ValidateName("member", self); err != nil {
				return usagef("--self: %v", err)
			}
			s, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			if err := g.requireMember(cmd.Context(), s); err != nil {
				return err
			}
			rep, err := poolsync.Sync(cmd.Context(), s, self, poolsync.Options{Steps: steps})
			if g.json {
				if perr := printJSON(g.io.Out, rep); perr != nil {
					return perr
				}
				return err
			}
			printSync(g, rep)
			return err
		},
	}
	g.addJSON(cmd)
	cmd.Flags().StringVar(&f.root, "root", "/", "root directory of the role files (etc/xCATMN, etc/xCATSN)")
	f.addDHCPFlags(cmd.Flags())
	cmd.Flags().StringVar(&f.syncHook, "sync-hook", "", "command run as the last step, without a shell, with arguments MEMBER ROLE EPOCH DYNAMIC (yes|no)")
	return cmd
}

// printSync prints the report of sync: the role, the MN and each step.
func printSync(g *globals, rep poolsync.Report) {
	if rep.Self == "" {
		return
	}
	dyn := "not served here"
	if rep.ServeDynamic {
		dyn = fmt.Sprintf("served here (epoch %d)", rep.DynamicEpoch)
	}
	fmt.Fprintf(g.io.Out, "%s is %s; the MN is %s (epoch %d); dynamic range %s\n", rep.Self, rep.Role, rep.Master.Member, rep.Master.Epoch, dyn)
	for _, st := range rep.Steps {
		status, msg := "ok", st.Detail
		if st.Err != nil {
			status, msg = "failed", st.Error
		}
		fmt.Fprintf(g.io.Out, "%-9s %-18s %s\n", "["+status+"]", st.Step, msg)
	}
}
