package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mnpool/mnpool/agent"
	"github.com/mnpool/mnpool/console"
	"github.com/mnpool/mnpool/dns"
	"github.com/mnpool/mnpool/internal/schemas"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/dsn"
	"github.com/mnpool/mnpool/poolsync"
	"github.com/mnpool/mnpool/rolefiles"
)

// DefaultMetricsAddr is where mnpoold serves /metrics and /healthz.
const DefaultMetricsAddr = "127.0.0.1:9655"

type mnpooldFlags struct {
	node        nodeCfgFlags
	logFormat   string
	logLevel    string
	metricsAddr string
	tokenFile   string
	root        string
	noRoleFiles bool

	noDHCP bool
	dhcp   dhcpFlags

	timing        agent.Timing
	watchEvery    time.Duration
	resyncEvery   time.Duration
	dnsListen     []string
	console       bool
	consoleListen string
	consoleSec    consoleSecFlags
	noFailover    bool
	coolDown      time.Duration
	failoverLimit int
	window        time.Duration
}

const mnpooldLong = `mnpoold runs on every member of the pool (--self, $MNPOOL_SELF, else the short
host name) until it gets SIGINT or SIGTERM. It

  heartbeats      bumps this member's counter every --heartbeat-interval and
                  judges the others by how long theirs stood still (on this
                  host's clock only): alive, suspect, dead
  applies         whenever the pool changes: the role files (/etc/xCATMN or
                  /etc/xCATSN under --root) and this member's DHCP
                  configuration (check, atomic write, reload); the dynamic
                  range only while this member is the confirmed MN
  fails over      when the site setting autofailover is 1 (mnpool site set
                  autofailover=1): one elected member moves the nodes of a
                  member dead for --dead-after to the next alive member of
                  each node's list (as snmove -s does), audited as
                  agent.failover; a suspect member is never failed over
  serves          optionally DNS for the pool (--dns-listen), from memory,
                  reloaded on every change, and the console broker
                  (--console), which picks alive members by this agent's
                  judgement
  reports         Prometheus metrics on /metrics and health on /healthz at
                  --metrics-addr (loopback by default; /metrics has no
                  authentication, /healthz says only ok or unhealthy
                  unless the request carries the --http-token-file token as
                  "Authorization: Bearer TOKEN"); structured logs on stderr

Timeouts left at 0 are derived from the Galera cluster's failure detection
(evs.suspect_timeout + evs.inactive_timeout = D): suspect max(5s, D+1s), dead
max(10s, 2D), lease = dead. Shorter values are refused. See docs/AGENT.md.`

const mnpooldExample = `  mnpoold --self sn1
  mnpoold --self sn1 --dhcp-reload-cmd "systemctl restart isc-dhcp-server" --log-format json
  mnpoold --self sn2 --dhcp-format kea --http-token-file /etc/mnpool/http-token
  mnpool site set autofailover=1     # enable automatic failover (all agents follow)`

// NewMnpoold builds the mnpoold command.
func NewMnpoold(io IO) *cobra.Command {
	g := &globals{io: io}
	var f mnpooldFlags
	cmd := &cobra.Command{
		Use:           "mnpoold [flags]",
		Short:         "The mnpool agent: heartbeat, apply pool changes to this member, automatic failover",
		Long:          mnpooldLong,
		Example:       mnpooldExample,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMnpoold(cmd.Context(), g, &f)
		},
	}
	cmd.SetIn(io.In)
	cmd.SetOut(io.Out)
	cmd.SetErr(io.Err)
	g.addFlags(cmd)
	f.addFlags(cmd.Flags())
	return cmd
}

// addFlags registers the flags of mnpoold on fl.
func (f *mnpooldFlags) addFlags(fl *pflag.FlagSet) {
	fl.StringVar(&f.logFormat, "log-format", "text", "log format on stderr: text or json")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error (-V is debug)")
	fl.StringVar(&f.metricsAddr, "metrics-addr", DefaultMetricsAddr, `address of /metrics and /healthz ("" serves none); /metrics is unauthenticated, keep it on loopback or the management network`)
	fl.StringVar(&f.tokenFile, "http-token-file", "", "file (mode 0600) holding the bearer token that shows the detail of /healthz (JSON)")
	fl.StringVar(&f.root, "root", "/", "root directory of the role files (etc/xCATMN, etc/xCATSN)")
	fl.BoolVar(&f.noRoleFiles, "no-role-files", false, "do not keep the xCAT role files")
	fl.BoolVar(&f.noDHCP, "no-dhcp", false, "do not render the DHCP configuration")
	addDHCPFlags(fl, &f.dhcp, "default /etc/dhcp/dhcpd.conf or /etc/kea/kea-dhcp4.conf", true, "dhcp-reload")
	fl.DurationVar(&f.timing.HeartbeatInterval, "heartbeat-interval", 0, "heartbeat interval (0: 1s)")
	fl.DurationVar(&f.timing.SuspectAfter, "suspect-after", 0, "silence after which a member is suspect (0: derived from Galera)")
	fl.DurationVar(&f.timing.DeadAfter, "dead-after", 0, "silence after which a member is dead and failed over (0: derived from Galera)")
	fl.DurationVar(&f.timing.LeaseTTL, "lease-ttl", 0, "TTL of the failover leader's lease (0: the dead timeout)")
	fl.DurationVar(&f.watchEvery, "watch-interval", agent.DefaultWatchInterval, "how often the pool's change counter is read")
	fl.DurationVar(&f.resyncEvery, "resync-interval", agent.DefaultResyncInterval, "re-apply everything this often even without a change (negative: never)")
	fl.StringArrayVar(&f.dnsListen, "dns-listen", nil, "run the built-in DNS server of the pool on ADDR, UDP and TCP, e.g. :53 (repeatable)")
	fl.BoolVar(&f.console, "console", false, "run the console broker (consoles served under leases, proxied between members)")
	fl.StringVar(&f.consoleListen, "console-listen", "", "address of the console broker (default :site.consoleport)")
	f.consoleSec.add(fl, "console-")
	f.node.addFlags(fl)
	fl.BoolVar(&f.noFailover, "no-failover", false, "never take part in automatic failover on this member, whatever the site setting")
	fl.DurationVar(&f.coolDown, "failover-cooldown", agent.DefaultFailoverCoolDown, "a member failed over is not failed over again for this long")
	fl.IntVar(&f.failoverLimit, "failover-limit", agent.DefaultFailoverLimit, "most failovers per --failover-window")
	fl.DurationVar(&f.window, "failover-window", agent.DefaultFailoverWindow, "window of --failover-limit")
}

// Mnpoold is the main function of cmd/mnpoold.
func Mnpoold(ctx context.Context, args []string, io IO) int {
	return Run(ctx, NewMnpoold(io), args, io.Err)
}

func (f *mnpooldFlags) logger(g *globals) (*slog.Logger, error) {
	var level slog.Level
	if g.verbose {
		f.logLevel = "debug"
	}
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", f.logLevel)
	}
	ho := &slog.HandlerOptions{Level: level}
	switch f.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(g.io.Err, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(g.io.Err, ho)), nil
	}
	return nil, usagef("--log-format %q: want text or json", f.logFormat)
}

func runMnpoold(ctx context.Context, g *globals, f *mnpooldFlags) error {
	log, err := f.logger(g)
	if err != nil {
		return err
	}
	g.log = log
	f.dhcp.warnDeprecated(g.io.Err, "mnpoold")
	dhcpCfg, dhcpOn, err := f.dhcp.config()
	if err != nil {
		return err
	}
	nodeOpt, token, err := f.check()
	if err != nil {
		return err
	}
	self := g.selfName()
	if err := pool.ValidateName("member", self); err != nil {
		return usagef("--self: %v", err)
	}
	s, err := openAgentStore(ctx, g, self, log)
	if err != nil {
		return err
	}
	defer s.Close()

	var steps []poolsync.Step
	if !f.noRoleFiles {
		steps = append(steps, rolefiles.Step(f.root))
	}
	if !f.noDHCP && dhcpOn {
		dhcpCfg.Logger = log
		steps = append(steps, dhcpCfg.SyncStep())
	}
	var a *agent.Agent
	opts, err := f.agentOptions(ctx, s, self, log, steps, nodeOpt, token, &a)
	if err != nil {
		return err
	}
	a, err = agent.New(s, opts...)
	if err != nil {
		return err
	}
	err = a.Run(ctx)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // SIGINT or SIGTERM: a clean stop
	}
	if err != nil {
		return fmt.Errorf("member %s: %w", self, err)
	}
	return nil
}

// check checks the flags of mnpoold that need no database and returns the
// agent option of the node configuration and the /healthz token.
func (f *mnpooldFlags) check() (agent.Option, string, error) {
	if !f.console && f.consoleListen != "" {
		return nil, "", usagef("--console-listen %s needs --console", f.consoleListen)
	}
	nodeOpt, err := f.node.option()
	if err != nil {
		return nil, "", err
	}
	token, err := readTokenFile(f.tokenFile)
	if err != nil {
		return nil, "", err
	}
	if f.watchEvery <= 0 {
		return nil, "", usagef("--watch-interval %v: want more than 0", f.watchEvery)
	}
	if f.coolDown <= 0 || f.window <= 0 || f.failoverLimit <= 0 {
		return nil, "", usagef("--failover-cooldown %v, --failover-limit %d, --failover-window %v: want values above 0", f.coolDown, f.failoverLimit, f.window)
	}
	for name, d := range map[string]time.Duration{"heartbeat-interval": f.timing.HeartbeatInterval, "suspect-after": f.timing.SuspectAfter,
		"dead-after": f.timing.DeadAfter, "lease-ttl": f.timing.LeaseTTL} {
		if d < 0 {
			return nil, "", usagef("--%s %v: want 0 (derived) or more", name, d)
		}
	}
	return nodeOpt, token, nil
}

// openAgentStore opens the pool as member self, migrates the schema and
// checks that self is a member.
func openAgentStore(ctx context.Context, g *globals, self string, log *slog.Logger) (*pool.Store, error) {
	source, src, err := dsn.Resolve(g.db, g.dbFile)
	if err != nil {
		return nil, err
	}
	g.warnSecretFiles(source, src)
	s, err := pool.Open(ctx, source, pool.WithSelf(self), pool.WithActor("mnpoold"), pool.WithLogger(log))
	if err != nil {
		return nil, err
	}
	if err := s.Migrate(ctx, schemas.All()...); err != nil {
		s.Close()
		return nil, err
	}
	if err := g.requireMember(ctx, s); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// agentOptions are the options of the agent the flags ask for. The console
// broker reads the liveness of *a, which the caller sets before the agent
// runs.
func (f *mnpooldFlags) agentOptions(ctx context.Context, s *pool.Store, self string, log *slog.Logger, steps []poolsync.Step, nodeOpt agent.Option, token string, a **agent.Agent) ([]agent.Option, error) {
	opts := []agent.Option{
		agent.WithLogger(log),
		agent.WithTiming(f.timing),
		agent.WithWatchInterval(f.watchEvery),
		agent.WithResyncInterval(f.resyncEvery),
		agent.WithSteps(steps...),
		agent.WithFailover(agent.FailoverPolicy{Disabled: f.noFailover, CoolDown: f.coolDown, Limit: f.failoverLimit, Window: f.window}),
	}
	opts = append(opts, nodeOpt)
	if f.metricsAddr != "" {
		opts = append(opts, agent.WithHTTPAddr(f.metricsAddr), agent.WithHTTPToken(token))
	}
	if f.console {
		listen, err := brokerListen(ctx, s, f.consoleListen)
		if err != nil {
			return nil, err
		}
		opts = append(opts, agent.WithService("console", func(ctx context.Context) error {
			return f.consoleSec.serveBroker(ctx, s, self, listen, nil, log, console.WithLiveness((*a).LivenessView()))
		}))
	}
	if len(f.dnsListen) > 0 {
		srv := dns.NewServer(s, dns.WithListen(f.dnsListen...), dns.WithLogger(log), dns.WithWatchInterval(f.watchEvery))
		opts = append(opts, agent.WithService("dns", srv.Serve))
	}
	return opts, nil
}
