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
	"strings"

	"github.com/spf13/cobra"

	"github.com/mnpool/mnpool/pool"
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
}

func (g *globals) addFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&g.db, "db", "", "pool database: sqlite:PATH or mysql:USER:PASS@tcp(HOST:PORT)/DB[,...] (default $MNPOOL_DB, else the file of --db-file)")
	f.StringVar(&g.dbFile, "db-file", pool.DefaultDSNFile, "file holding the database DSN")
	f.StringVar(&g.self, "self", "", "the pool member this command runs on (default $MNPOOL_SELF, else the short host name)")
	f.BoolVarP(&g.verbose, "verbose", "V", false, "log what is done to stderr")
}

func (g *globals) addJSON(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&g.json, "json", false, "print JSON instead of a table")
}

// selfName resolves --self, $MNPOOL_SELF, then the short host name.
func (g *globals) selfName() string {
	if g.self != "" {
		return g.self
	}
	if v := os.Getenv(EnvSelf); v != "" {
		return v
	}
	h, _ := os.Hostname()
	h, _, _ = strings.Cut(h, ".")
	return h
}

func actor() string {
	for _, k := range []string{"SUDO_USER", "USER", "LOGNAME"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return ""
}

// open opens the store and brings its schema up to date (a no-op read when
// it is current).
func (g *globals) open(ctx context.Context) (*pool.Store, error) {
	dsn, _, err := pool.ResolveDSN(g.db, g.dbFile)
	if err != nil {
		return nil, err
	}
	s, err := pool.Open(ctx, dsn, pool.WithSelf(g.selfName()), pool.WithActor(actor()), pool.WithLogger(g.logger()))
	if err != nil {
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
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
		newSyncCmd(g),
		newConsoleCmd(g),
		newLockCmd(g),
	)
	root.AddCommand(newMembershipCmds(g)...)
	return root
}

// Run executes cmd with args and returns the process exit status: 0 on
// success, 2 for a bad command line, 1 for any other error.
func Run(ctx context.Context, cmd *cobra.Command, args []string, errOut io.Writer) int {
	cmd.SetArgs(args)
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w\nSee '%s --help'.", err, c.CommandPath())}
	})
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	name := cmd.Name()
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") || strings.Contains(err.Error(), "arg(s)") {
		fmt.Fprintf(errOut, "%s: %v\n", name, err)
		return 2
	}
	fmt.Fprintf(errOut, "%s: %v\n", name, err)
	// A command that ran another program (mnpool lock run) exits with
	// that program's status.
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) && ec.ExitCode() > 0 {
		return ec.ExitCode()
	}
	return 1
}

// Mnpool is the main function of cmd/mnpool.
func Mnpool(ctx context.Context, args []string, io IO) int {
	return Run(ctx, NewMnpool(io), args, io.Err)
}
