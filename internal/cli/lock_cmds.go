package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mnpool/mnpool/internal/supervise"
	"github.com/mnpool/mnpool/locking"
)

// Environment of a command run by `mnpool lock run`.
const (
	EnvLockName  = "MNPOOL_LOCK_NAME"
	EnvLockToken = "MNPOOL_LOCK_TOKEN"
	EnvLockDir   = "MNPOOL_LOCK_DIR"
)

// unlockTimeout bounds the release after the command ended.
const unlockTimeout = 10 * time.Second

// exitStatus is the exit status of a command run under a lock. Its
// ExitCode is the status mnpool should exit with.
type exitStatus struct {
	code int
	msg  string
}

func (e exitStatus) Error() string { return e.msg }
func (e exitStatus) ExitCode() int { return e.code }

func newLockCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lock",
		Short: "Cluster-wide locks: run a command while holding one, list them",
		Long: `Locks are leases in the pool database with a fencing token that only grows
per lock name. A holder renews its lease every TTL/3; a member waiting for the
lock takes it over only after seeing the lease stand still for the TTL on its
own clock. A NAME that is an absolute path locks that directory of the shared
install tree: the lease plus an flock(2) on DIR/.mnpool.lock, with the token
written to DIR/.mnpool.lock.token. See docs/LOCKING.md.`,
	}
	cmd.AddCommand(newLockRunCmd(g), newLockListCmd(g))
	return cmd
}

const lockRunLong = `run takes the lock NAME (waiting in line behind other members), runs COMMAND
with $MNPOOL_LOCK_NAME and $MNPOOL_LOCK_TOKEN (and $MNPOOL_LOCK_DIR for a
directory lock) in its environment, and releases the lock when COMMAND ends.
It exits with COMMAND's exit status (128+N when killed by signal N).

COMMAND runs in its own process group under a small supervisor (mnpool
itself, re-executed), which kills COMMAND and everything it started (setsid
and double-forked processes included) the moment this mnpool process dies,
whatever the signal, SIGKILL included. If the lease is lost while COMMAND
runs (the database is unreachable for TTL minus the safety margin of TTL/5,
or an administrator deleted the lock), run says so on stderr, sends SIGTERM
to COMMAND and all its descendants and SIGKILL after half the margin, before
another member can take the lock over. Processes left behind by COMMAND are
ended the same way when it exits. Writers that must never overlap check the token: with
'mnpool lock' for a directory, compare $MNPOOL_LOCK_TOKEN with the content of
$MNPOOL_LOCK_DIR/.mnpool.lock.token before each step.

The TTL must be well above the Galera failure detection time (see
docs/LOCKING.md); the default suits MariaDB's defaults.`

const lockRunExample = `  mnpool lock run /install/netboot/rhels9/x86_64 -- copycds /tmp/rhel-9.4-x86_64-dvd.iso
  mnpool lock run --wait 10m --ttl 2m repo-sync -- reposync -p /install/post/otherpkgs
  mnpool lock run --nonblock nightly -- /usr/local/sbin/nightly.sh`

func newLockRunCmd(g *globals) *cobra.Command {
	var a lockRunArgs
	cmd := &cobra.Command{
		Use:     "run [--ttl D] [--wait D | --nonblock] NAME -- COMMAND [ARGS...]",
		Short:   "Run a command while holding a cluster-wide lock",
		Long:    lockRunLong,
		Example: lockRunExample,
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.parse(args, cmd.Flags().Changed("wait")); err != nil {
				return err
			}
			return lockRun(cmd.Context(), g, a)
		},
	}
	cmd.Flags().SetInterspersed(false) // flags after NAME belong to COMMAND
	cmd.Flags().DurationVar(&a.ttl, "ttl", locking.DefaultTTL, "lease time: how long the lock survives this process without renewal")
	cmd.Flags().DurationVarP(&a.wait, "wait", "w", 0, "give up when the lock is not free after this long (0: wait as long as it takes)")
	cmd.Flags().BoolVarP(&a.nonblock, "nonblock", "n", false, "fail at once if the lock is held")
	return cmd
}

// parse checks the arguments and flags of lock run and sets the lock name,
// directory and command from args. waitGiven says whether --wait was given.
func (a *lockRunArgs) parse(args []string, waitGiven bool) error {
	// Flag parsing stops at NAME, so the "--" after it is still here.
	if len(args) > 1 && args[1] == "--" {
		args = append(args[:1:1], args[2:]...)
	}
	if len(args) < 2 {
		return usagef("want NAME -- COMMAND [ARGS...], got %d argument(s)", len(args))
	}
	if a.nonblock && waitGiven {
		return usagef("--nonblock and --wait exclude each other")
	}
	if a.wait < 0 {
		return usagef("--wait %v: want a positive duration, or 0 to wait as long as it takes", a.wait)
	}
	name, command := args[0], args[1:]
	dir := ""
	if strings.HasPrefix(name, "/") {
		dir = name
		if _, err := locking.InstallName(dir); err != nil {
			return usagef("%v", err)
		}
	} else if err := locking.ValidateName(name); err != nil {
		return usagef("%v", err)
	}
	if _, err := exec.LookPath(command[0]); err != nil {
		return usagef("command %q: %v", command[0], err)
	}
	a.name, a.dir, a.command = name, dir, command
	return nil
}

type lockRunArgs struct {
	name, dir string
	command   []string
	ttl, wait time.Duration
	nonblock  bool
}

// openLocker opens the store and a Locker on it; close closes the store.
func openLocker(ctx context.Context, g *globals) (lk *locking.Locker, close func() error, err error) {
	s, err := g.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	if lk, err = locking.New(s, locking.WithLogger(g.logger())); err != nil {
		s.Close()
		return nil, nil, err
	}
	return lk, s.Close, nil
}

func lockRun(ctx context.Context, g *globals, a lockRunArgs) error {
	lk, closeStore, err := openLocker(ctx, g)
	if err != nil {
		return err
	}
	defer closeStore()
	opts := []locking.Option{
		locking.WithTTL(a.ttl),
		locking.WithInfo(fmt.Sprintf("pid %d: %s", os.Getpid(), strings.Join(a.command, " "))),
	}
	actx := ctx
	if a.wait > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, a.wait)
		defer cancel()
	}
	l, unlock, err := acquire(actx, lk, a, opts)
	if err != nil {
		return lockFailed(err, a)
	}
	g.logger().Debug("lock acquired", "lock", l.Name(), "token", l.Token())

	env := append(os.Environ(), EnvLockName+"="+l.Name(), EnvLockToken+"="+strconv.FormatInt(l.Token(), 10))
	if a.dir != "" {
		env = append(env, EnvLockDir+"="+a.dir)
	}
	// The supervisor kills COMMAND and everything it started when this
	// process dies by any signal, SIGKILL included, so nothing of it
	// outlives the lease (internal/supervise).
	p, err := supervise.Start(supervise.Command{
		Path: a.command[0], Args: a.command, Env: env,
		Stdin: g.io.In, Stdout: g.io.Out, Stderr: g.io.Err,
		Grace: l.Margin() / 2,
	})
	if err != nil {
		uerr := unlock(context.WithoutCancel(ctx))
		return errors.Join(fmt.Errorf("starting %s: %w", a.command[0], err), uerr)
	}
	lost := false
	select {
	case <-p.Done():
	case <-l.Done():
		lost = true
		fmt.Fprintf(g.io.Err, "mnpool: lock %q lost: %v; killing %s and everything it started\n", l.Name(), l.Err(), a.command[0])
		p.Stop()
	case <-ctx.Done():
		fmt.Fprintf(g.io.Err, "mnpool: interrupted; stopping %s and everything it started\n", a.command[0])
		p.Stop()
	}
	werr := p.Wait()

	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
	defer cancel()
	if err := unlock(uctx); err != nil && !lost {
		fmt.Fprintf(g.io.Err, "mnpool: %v\n", err)
	}
	return commandStatus(a.command[0], werr)
}

// acquire takes the lock of a (an install-tree lock for a directory) and
// returns it with its release function.
func acquire(ctx context.Context, lk *locking.Locker, a lockRunArgs, opts []locking.Option) (*locking.Lock, func(context.Context) error, error) {
	switch {
	case a.dir != "":
		take := lk.Install
		if a.nonblock {
			take = lk.TryInstall
		}
		il, err := take(ctx, a.dir, opts...)
		if err != nil {
			return nil, nil, err
		}
		return il.Lock, il.Unlock, nil
	case a.nonblock:
		l, err := lk.TryLock(ctx, a.name, opts...)
		if err != nil {
			return nil, nil, err
		}
		return l, l.Unlock, nil
	}
	l, err := lk.Lock(ctx, a.name, opts...)
	if err != nil {
		return nil, nil, err
	}
	return l, l.Unlock, nil
}

// commandStatus turns the command's wait error into mnpool's result.
func commandStatus(name string, err error) error {
	if err == nil {
		return nil
	}
	var ee *supervise.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("running %s: %w", name, err)
	}
	if ee.Status.Signaled() {
		return exitStatus{code: ee.ExitCode(), msg: fmt.Sprintf("%s killed by signal %v", name, ee.Status.Signal())}
	}
	return exitStatus{code: ee.ExitCode(), msg: fmt.Sprintf("%s exited with status %d", name, ee.ExitCode())}
}

// lockFailed explains why the lock was not taken.
func lockFailed(err error, a lockRunArgs) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded) && a.wait > 0:
		return fmt.Errorf("lock %q not acquired within --wait %v: %w", a.name, a.wait, err)
	case errors.Is(err, locking.ErrLocked):
		return fmt.Errorf("lock %q not acquired (--nonblock): %w", a.name, err)
	}
	return err
}

func newLockListCmd(g *globals) *cobra.Command {
	var heldOnly bool
	cmd := &cobra.Command{
		Use:   "list [--held] [--json]",
		Short: "List locks: holder member and session, fencing token, lease counter, waiters",
		Long: `list shows every lock the pool database knows. LEASE is the renewal counter:
it moves every TTL/3 while the holder is alive. SINCE is the holder's clock,
for reading only. A free lock shows the token of its last holding.`,
		Example: `  mnpool lock list
  mnpool lock list --held --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lk, closeStore, err := openLocker(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer closeStore()
			all, err := lk.List(cmd.Context())
			if err != nil {
				return err
			}
			list := all[:0]
			for _, in := range all {
				if in.Held || !heldOnly {
					list = append(list, in)
				}
			}
			if g.json {
				return printJSON(g.io.Out, list)
			}
			t := newTable(g.io.Out, "name", "held", "token", "member", "session", "lease", "ttl", "waiters", "since", "info")
			for _, in := range list {
				held, ttl, since, session := "no", "", "", in.Session
				if in.Held {
					held = "yes"
					ttl = (time.Duration(in.TTL) * time.Millisecond).String()
					since = in.Since.Format(time.RFC3339)
				}
				if len(session) > 8 {
					session = session[:8]
				}
				t.row(in.Name, held, strconv.FormatInt(in.Token, 10), in.Member, session, strconv.FormatInt(in.Lease, 10),
					ttl, strconv.Itoa(in.Waiters), since, in.Info)
			}
			return t.flush()
		},
	}
	g.addJSON(cmd)
	cmd.Flags().BoolVar(&heldOnly, "held", false, "only locks that are held")
	return cmd
}
