// Package cli holds the command-line programs of mnpool (mnpool, snmove,
// makemn, makedhcp, mnpoold). The programs in cmd/ only call Main; the
// pool logic itself lives in the library packages.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mnpool/mnpool/agent"
	"github.com/mnpool/mnpool/console"
	"github.com/mnpool/mnpool/dhcp"
	"github.com/mnpool/mnpool/dispatch"
	"github.com/mnpool/mnpool/dns"
	"github.com/mnpool/mnpool/gateway"
	"github.com/mnpool/mnpool/internal/schemas"
	"github.com/mnpool/mnpool/noderange"
	"github.com/mnpool/mnpool/ntp"
	"github.com/mnpool/mnpool/pki"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/dsn"
	"github.com/mnpool/mnpool/sshkeys"
	"github.com/mnpool/mnpool/xcat"
)

// EnvSelf names the member a command runs as when --self is not given.
const EnvSelf = "MNPOOL_SELF"

// IO is where a program reads and writes.
type IO struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// globals are the flags every mnpool command takes.
type globals struct {
	io      IO
	db      string
	dbFile  string
	self    string
	json    bool
	verbose bool
	log     *slog.Logger
	warned  bool // secret-file warnings printed (warnSecretFiles)
}

func (g *globals) addFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&g.db, "db", "", "pool database: sqlite:PATH or mysql:USER:PASS@tcp(HOST:PORT)/DB[,...] (default $MNPOOL_DB, else the file of --db-file)")
	f.StringVar(&g.dbFile, "db-file", dsn.DefaultFile, "file holding the database DSN")
	f.StringVar(&g.self, "self", "", "the pool member this command runs on (default $MNPOOL_SELF, else the short host name)")
	f.BoolVarP(&g.verbose, "verbose", "V", false, "log what is done to stderr")
}

func (g *globals) addJSON(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&g.json, "json", false, "print JSON instead of a table")
}

// selfName resolves --self, $MNPOOL_SELF, then the short host name.
func (g *globals) selfName() string {
	name, _ := g.selfAndSource()
	return name
}

// selfAndSource is selfName and where the name came from, for messages.
func (g *globals) selfAndSource() (name, source string) {
	if g.self != "" {
		return g.self, "--self"
	}
	if v := os.Getenv(EnvSelf); v != "" {
		return v, "$" + EnvSelf
	}
	h, _ := os.Hostname()
	h, _, _ = strings.Cut(h, ".")
	return h, "the host name"
}

// errNotMember: the member a command runs as is not in the pool. A usage
// error (exit 2): the fix is to run it on a member or to give --self.
var errNotMember = errors.New("not a member of the pool")

// requireMember checks that the member this command acts as (--self,
// $MNPOOL_SELF, else the short host name) is in the pool. Every command
// that acts as a member (makedhcp, makemn, sync, heartbeat, console serve,
// dns serve, mnpoold) calls it right after opening the pool, so a host
// that is not a member gets one clear message naming the host and --self.
func (g *globals) requireMember(ctx context.Context, s *pool.Store) error {
	name, source := g.selfAndSource()
	if _, err := s.Member(ctx, name); !errors.Is(err, pool.ErrNotFound) {
		return err
	}
	known := "none yet"
	if ms, err := s.Members(ctx); err == nil && len(ms) > 0 {
		names := make([]string, len(ms))
		for i, m := range ms {
			names[i] = m.Name
		}
		known = strings.Join(names, ", ")
	}
	return fmt.Errorf("%s is %w (the name is from %s; members: %s); run this on a member, or name the member with --self NAME or $%s",
		name, errNotMember, source, known, EnvSelf)
}

func actor() string {
	for _, k := range []string{"SUDO_USER", "USER", "LOGNAME"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// open opens an existing pool and brings its schema up to date (a no-op
// read when it is current). It creates nothing: a missing SQLite file or a
// database without the pool schema is an error that says to run
// `mnpool init` (a typo in --db must not create a new, empty pool).
func (g *globals) open(ctx context.Context) (*pool.Store, error) {
	return g.openPool(ctx, false)
}

// openPool is open; with create it makes the database and schema (init).
func (g *globals) openPool(ctx context.Context, create bool) (*pool.Store, error) {
	source, src, err := dsn.Resolve(g.db, g.dbFile)
	if err != nil {
		return nil, err
	}
	g.warnSecretFiles(source, src)
	if create {
		if d, err := dsn.Parse(source); err == nil {
			if err := ensureDatabase(ctx, d); err != nil {
				return nil, err
			}
		}
	}
	if !create {
		if d, err := dsn.Parse(source); err == nil && d.Kind == dsn.SQLite {
			if _, err := os.Stat(d.Path); err != nil {
				return nil, fmt.Errorf("%w: no pool database at %s (from %s); create one with `mnpool init`", pool.ErrNotInitialized, d.Path, src)
			}
		}
	}
	s, err := pool.Open(ctx, source, pool.WithSelf(g.selfName()), pool.WithActor(actor()), pool.WithLogger(g.logger()))
	if err != nil {
		return nil, err
	}
	if !create {
		v, err := s.SchemaVersion(ctx)
		if err == nil && v == 0 {
			err = fmt.Errorf("%w: %s has no pool yet; run `mnpool init --mn NAME` first", pool.ErrNotInitialized, dsn.Mask(source))
		}
		if err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := s.Migrate(ctx, schemas.All()...); err != nil {
		s.Close()
		return nil, err
	}
	return g.auditAs(ctx, s, source)
}

// auditAs makes sure the audit log only ever names a pool member: on a
// host that is not one (an administrator's workstation) the store is
// reopened without a member, and the actor records user@host instead.
func (g *globals) auditAs(ctx context.Context, s *pool.Store, source string) (*pool.Store, error) {
	self := g.selfName()
	_, err := s.Member(ctx, self)
	if !errors.Is(err, pool.ErrNotFound) {
		return s, nil // a member, or a read error the command will meet again
	}
	s.Close()
	g.logger().Debug("not a pool member: audit records the actor with this host's name and no member", "self", self)
	return pool.Open(ctx, source, pool.WithActor(actor()+"@"+self), pool.WithLogger(g.logger()))
}

func (g *globals) logger() *slog.Logger {
	if g.log != nil {
		return g.log
	}
	if g.verbose {
		g.log = slog.New(slog.NewTextHandler(g.io.Err, &slog.HandlerOptions{Level: slog.LevelDebug}))
	} else {
		g.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return g.log
}

// usageError marks errors in the command line itself (exit status 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// NewMnpool builds the mnpool command tree.
func NewMnpool(io IO) *cobra.Command {
	g := &globals{io: io}
	root := &cobra.Command{
		Use:   "mnpool",
		Short: "Manage a pool of active management nodes (MN and service nodes)",
		Long: `mnpool manages an xCAT-style Management Node Pool: one MN plus service
nodes (SNs), all active. Every member can run every command; each compute node
is served by an ordered list of two or more members (noderes.servicenode).

The pool database is given with --db, $MNPOOL_DB or /etc/mnpool/db:
  sqlite:/var/lib/mnpool/pool.db                           (one host, demos)
  mysql:USER:PASS@tcp(HOST:3306)/mnpool,tcp(HOST2:3306),...  (MariaDB Galera; local node first)`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(io.In)
	root.SetOut(io.Out)
	root.SetErr(io.Err)
	g.addFlags(root)
	root.AddCommand(
		newInitCmd(g),
		newMemberCmd(g),
		newNetworkCmd(g),
		newNodeCmd(g),
		newSiteCmd(g),
		newStatusCmd(g),
		newAuditCmd(g),
		newSSHKeysCmd(g),
		newDNSCmd(g),
		newNTPCmd(g),
		newGatewayCmd(g),
		newImportXCATCmd(g),
		newExportCmd(g),
		newSyncCmd(g),
		newConsoleCmd(g),
		newCertsCmd(g),
		newLockCmd(g),
		newVersionCmd(g),
	)
	root.AddCommand(newMembershipCmds(g)...)
	root.AddCommand(newXdshCmds(g)...)
	return root
}

// Exit statuses of every mnpool program (mnpool, snmove, makemn,
// makedhcp, mnpoold), decided in Run and nowhere else.
const (
	// ExitOK: the command did what it was asked.
	ExitOK = 0
	// ExitFailed: the operation failed (database down, a daemon's
	// check failed, a conflict); the command line itself was fine.
	ExitFailed = 1
	// ExitUsage: the command line is wrong: an unknown command or flag,
	// a missing argument, a value that does not parse, or a name (node,
	// group, member, network) that is not in the pool.
	ExitUsage = 2
)

// Run executes cmd with args and returns the process exit status (see
// ExitOK, ExitFailed, ExitUsage; `mnpool lock run` passes the status of
// the program it ran through). Errors are printed as "PROGRAM: message"
// with the library's package tags left out.
func Run(ctx context.Context, cmd *cobra.Command, args []string, errOut io.Writer) int {
	cmd.SetArgs(args)
	if cmd.Version == "" {
		cmd.Version = version()
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w\nSee '%s --help'.", err, c.CommandPath())}
	})
	requireSubcommands(cmd)
	addCompletion(cmd)
	started := new(bool)
	markStarted(cmd, started)
	failed, err := cmd.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	msg := cleanError(err.Error())
	code := exitCode(err, *started)
	// An error cobra returned before the command body ran (a missing or
	// extra argument, a required flag) gets the usage line.
	var ue usageError
	if code == ExitUsage && !*started && failed != nil && !errors.As(err, &ue) {
		msg += "\nUsage: " + failed.UseLine()
	}
	fmt.Fprintf(errOut, "%s: %s\n", cmd.Name(), msg)
	return code
}

// exitCode maps an error to the exit status. started tells whether the
// command body ran: an error from before it (cobra's argument, flag and
// unknown-command checks) is always a usage error.
func exitCode(err error, started bool) int {
	var ue usageError
	if !started || errors.As(err, &ue) || isUsageError(err) {
		return ExitUsage
	}
	// A command that ran another program (mnpool lock run) exits with
	// that program's status.
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) && ec.ExitCode() > 0 {
		return ec.ExitCode()
	}
	return ExitFailed
}

// isUsageError reports whether a library error means the command line
// was wrong: a value that does not parse or a name that is not in the
// pool. Matched by type (errors.Is), never by message text.
func isUsageError(err error) bool {
	for _, target := range []error{
		pool.ErrInvalid, pool.ErrNotFound,
		noderange.ErrSyntax, noderange.ErrUnknown, noderange.ErrInvalidName, noderange.ErrTooLarge,
		dhcp.ErrInvalid, dns.ErrInvalid, ntp.ErrInvalid, gateway.ErrInvalid, agent.ErrInvalid,
		dns.ErrNotFound, ntp.ErrNotFound,
		console.ErrInvalid, console.ErrNotFound, pki.ErrInvalid,
		dispatch.ErrInvalid, dispatch.ErrUnknown, xcat.ErrInvalid,
		sshkeys.ErrInvalidKind, sshkeys.ErrInvalidAlgorithm, sshkeys.ErrInvalidTarget,
		sshkeys.ErrInvalidName, sshkeys.ErrInvalidAddress,
		errNotMember,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// markStarted wraps the body of every command under cmd so that it sets
// *started when it begins: what fails before that is the command line.
func markStarted(cmd *cobra.Command, started *bool) {
	for _, c := range cmd.Commands() {
		markStarted(c, started)
	}
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(c *cobra.Command, args []string) error {
			*started = true
			return run(c, args)
		}
	}
	if run := cmd.Run; run != nil {
		cmd.Run = func(c *cobra.Command, args []string) {
			*started = true
			run(c, args)
		}
	}
}

// pkgTag matches the package prefixes of library errors ("pool: ",
// "dhcp: "), which embedders match with errors.Is and a person at a
// terminal does not need.
var pkgTag = regexp.MustCompile(`\b(pool|dhcp|console|locking|sshkeys|dns|ntp|gateway|noderange|atomicfile|confcheck|agent|nodecfg): `)

func cleanError(s string) string {
	return pkgTag.ReplaceAllString(s, "")
}

// requireSubcommands makes a command that only groups others (mnpool
// member) refuse an unknown subcommand with exit status 2 and a
// suggestion, instead of printing its help and exiting 0.
func requireSubcommands(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		requireSubcommands(c)
	}
	if !cmd.HasSubCommands() || cmd.Run != nil || cmd.RunE != nil || !cmd.HasParent() {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return c.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		if c.SuggestionsMinimumDistance <= 0 {
			c.SuggestionsMinimumDistance = 2
		}
		if sug := c.SuggestionsFor(args[0]); len(sug) > 0 {
			msg += "; did you mean " + strings.Join(sug, " or ") + "?"
		}
		return usagef("%s\nRun '%s --help' for its subcommands.", msg, c.CommandPath())
	}
}

// Mnpool is the main function of cmd/mnpool.
func Mnpool(ctx context.Context, args []string, io IO) int {
	return Run(ctx, NewMnpool(io), args, io.Err)
}

// withStore adapts a command body that works on the pool: it opens the
// store (see open) before fn and closes it after.
func (g *globals) withStore(fn func(cmd *cobra.Command, args []string, s *pool.Store) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		s, err := g.open(cmd.Context())
		if err != nil {
			return err
		}
		defer s.Close()
		return fn(cmd, args, s)
	}
}
