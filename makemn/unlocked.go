package makemn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/mnpool/mnpool/mnguard"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/liveness"
	"github.com/mnpool/mnpool/poolsync"
)

// ErrPreflight: a makemn check failed (and was not forced); nothing was
// written.
var ErrPreflight = errors.New("pool: makemn preflight failed")

// Defaults of RunUnlocked.
const (
	// DefaultReplicaWait bounds how long RunUnlocked waits, after the replica
	// hook ran, for the target's database node to appear Synced in the
	// cluster (a state transfer of a large pool takes a while).
	DefaultReplicaWait = 5 * time.Minute
	// DefaultReplicaPoll is how often it looks.
	DefaultReplicaPoll = time.Second
)

// Names of the makemn steps, in the order they run. Sync steps are
// reported as "sync/" + the step's name.
const (
	StepDB      = "db"
	StepTarget  = "target"
	StepReplica = "replica"
	StepOldMN   = "old-mn"
	StepPromote = "promote"
	StepHold    = "hold"
	StepSync    = "sync"
)

// StepStatus is the outcome of one makemn step.
type StepStatus string

// Step outcomes.
const (
	StepOK      StepStatus = "ok"
	StepFailed  StepStatus = "failed"
	StepForced  StepStatus = "forced"  // a check failed and --force went past it
	StepInfo    StepStatus = "info"    // reported, not checked
	StepSkipped StepStatus = "skipped" // not applicable or not reached
	StepWould   StepStatus = "would"   // dry run: what would be done
)

// Step is one line of the makemn report.
type Step struct {
	Name    string        `json:"name"`
	Status  StepStatus    `json:"status"`
	Message string        `json:"message"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Request is what a makemn run is asked to do: the arguments of
// RunUnlocked, and of Run (Options.MakeMN).
type Request struct {
	// Target is the member that becomes the MN: the member makemn runs on.
	Target string
	// Force goes past the checks that allow it: local database node not
	// Primary/Synced (while another node is), target disabled or not
	// alive, no database replica on the target.
	Force bool
	// DryRun runs the checks (without the replica hook) and reports what
	// would be done; nothing is written.
	DryRun bool
	// Liveness says which members are alive; nil means nothing is known
	// (every member "unknown").
	Liveness liveness.Source
	// DBAddresses maps a member to the address its Galera node is reached
	// at, for sites where the database runs on an interface that is not
	// one of the member's pool addresses. Without an entry a member's pool
	// addresses are matched against the cluster's incoming addresses.
	DBAddresses map[string]netip.Addr
	// ReplicaHook, when the target holds no replica, is called to start
	// one (for example a script that joins MariaDB Galera on the target);
	// RunUnlocked then waits up to ReplicaWait for it to be Synced.
	ReplicaHook func(ctx context.Context, member string) error
	ReplicaWait time.Duration
	ReplicaPoll time.Duration
	// Guard configures the MN guard that confirms the new role before the
	// dynamic range is rendered (the hold step).
	Guard []mnguard.Option
	// Sync is run at the end (its Gate is set to the guard).
	Sync poolsync.Options
	// Reason goes into the audit record of the promotion.
	Reason string
	// OnStep, when set, is called as each step ends (to print progress).
	OnStep func(Step)
	// Fence, when set, runs inside the promotion's transaction
	// (pool.PromoteOptions.Fence): Run passes the Guard of its cluster-wide
	// lock. Use Run, which takes that lock, rather than RunUnlocked
	// directly: two RunUnlocked calls at once without it can promote one
	// after the other.
	Fence func(ctx context.Context, tx *sqlx.Tx) error
}

// Outcome is the outcome of RunUnlocked (Report adds the lock).
type Outcome struct {
	Target   string           `json:"target"`
	DryRun   bool             `json:"dry_run,omitempty"`
	Previous pool.Master      `json:"previous"`
	Master   pool.Master      `json:"master"`
	Steps    []Step           `json:"steps"`
	Sync     *poolsync.Report `json:"sync,omitempty"`
	// OK is true when no step failed.
	OK bool `json:"ok"`
}

type makemnRun struct {
	s    *pool.Store
	o    Request
	rep  Outcome
	errs []error
}

func (r *makemnRun) step(name string, st StepStatus, start time.Time, format string, args ...any) {
	stp := Step{Name: name, Status: st, Message: fmt.Sprintf(format, args...), Elapsed: time.Since(start)}
	r.rep.Steps = append(r.rep.Steps, stp)
	if st == StepFailed {
		r.errs = append(r.errs, fmt.Errorf("%s: %s", name, stp.Message))
	}
	if r.o.OnStep != nil {
		r.o.OnStep(stp)
	}
}

// check reports a failed check as forced when force is allowed and given.
func (r *makemnRun) check(name string, start time.Time, forceable bool, format string, args ...any) {
	if forceable && r.o.Force {
		r.step(name, StepForced, start, format+" (forced)", args...)
		return
	}
	hint := ""
	if forceable {
		hint = "; --force goes past this check"
	}
	r.step(name, StepFailed, start, format+hint, args...)
}

func (r *makemnRun) failed() bool { return len(r.errs) > 0 }

// RunUnlocked makes o.Target the MN, without the cluster-wide makemn
// lock (Run takes it and calls RunUnlocked), whether the old MN is up or down:
//
//  1. checks (each reported): the local database node is Primary and
//     Synced; the target is a member, alive and not disabled; the target
//     holds a Synced replica of the pool database (else the replica hook
//     starts one, else RunUnlocked refuses and says what to do); the old MN's
//     liveness is reported;
//  2. promote: pool.Store.Promote from the epoch read in the checks (exactly one of
//     concurrent makemn runs wins);
//  3. hold: a mnguard.Guard confirms the new role through a healthy node and
//     waits out the hold, so the old MN's dynamic range has expired before
//     the new one is rendered;
//  4. sync: poolsync.Sync for the target (role files, DHCP, ...).
//
// Every step is reported through o.OnStep and in the report. The error is
// nil only when no step failed; ErrPreflight when a check failed (nothing
// was written). A failure after the promotion leaves the database
// consistent (the promotion is one transaction); run makemn again, which
// finds the target is the MN and repeats the hold and the sync.
func RunUnlocked(ctx context.Context, s *pool.Store, o Request) (Outcome, error) {
	if err := pool.ValidateName("member", o.Target); err != nil {
		return Outcome{}, err
	}
	for m := range o.DBAddresses {
		if err := pool.ValidateName("member", m); err != nil {
			return Outcome{}, fmt.Errorf("DB address mapping: %w", err)
		}
	}
	if o.Liveness == nil {
		o.Liveness = liveness.Static{}
	}
	if o.ReplicaWait <= 0 {
		o.ReplicaWait = DefaultReplicaWait
	}
	if o.ReplicaPoll <= 0 {
		o.ReplicaPoll = DefaultReplicaPoll
	}
	if o.Reason == "" {
		o.Reason = "makemn"
	}
	guard, err := mnguard.New(s, o.Target, o.Guard...)
	if err != nil {
		return Outcome{}, err
	}
	r := &makemnRun{s: s, o: o, rep: Outcome{Target: o.Target, DryRun: o.DryRun}}
	err = r.run(ctx, guard)
	r.rep.OK = err == nil
	return r.rep, err
}

func (r *makemnRun) run(ctx context.Context, guard *mnguard.Guard) error {
	h, healthy := r.checkDB(ctx)
	cur, target, ok := r.checkTarget(ctx, healthy)
	r.rep.Previous, r.rep.Master = cur, cur
	if ok {
		r.checkReplica(ctx, h, target)
	} else {
		r.step(StepReplica, StepSkipped, time.Now(), "not checked: an earlier check failed")
	}
	r.reportOldMN(cur)
	if r.failed() {
		return fmt.Errorf("%w: %w", ErrPreflight, errors.Join(r.errs...))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.o.DryRun {
		r.dryRun(cur, guard)
		return nil
	}

	start := time.Now()
	p, err := r.s.Promote(ctx, r.o.Target, pool.PromoteOptions{Epoch: cur.Epoch, AllowDisabled: r.o.Force, Reason: r.o.Reason, Fence: r.o.Fence})
	if err != nil {
		var ce *pool.PromoteConflictError
		if errors.As(err, &ce) {
			r.rep.Master = ce.Winner
		}
		r.step(StepPromote, StepFailed, start, "%v", err)
		return fmt.Errorf("pool: makemn: %w", err)
	}
	r.rep.Master = p.Master
	if p.Unchanged {
		r.step(StepPromote, StepOK, start, "%s is already the MN of epoch %d; nothing written", p.Master.Member, p.Master.Epoch)
	} else {
		r.step(StepPromote, StepOK, start, "%s is the MN of epoch %d (was %s, epoch %d); site.master=%s",
			p.Master.Member, p.Master.Epoch, p.Previous.Member, p.Previous.Epoch, p.Master.Member)
	}

	r.hold(ctx, guard, p.Master)
	r.sync(ctx, guard)
	if r.failed() {
		return fmt.Errorf("pool: makemn: %w", errors.Join(r.errs...))
	}
	return nil
}

// checkDB: the local database node (the first DSN) is Primary and Synced.
func (r *makemnRun) checkDB(ctx context.Context) (pool.Health, bool) {
	start := time.Now()
	h, err := r.s.Health(ctx)
	if err != nil {
		r.step(StepDB, StepFailed, start, "reading database health: %v", err)
		return h, false
	}
	switch h.Backend {
	case "sqlite":
		r.step(StepDB, StepOK, start, "SQLite %s (single host)", h.Node)
		return h, true
	case "mysql":
		if !h.Healthy {
			r.step(StepDB, StepFailed, start, "MariaDB %s is not usable: %s", h.Node, h.Problem)
			return h, false
		}
		r.step(StepDB, StepOK, start, "MariaDB %s without Galera (one database host)", h.Node)
		return h, true
	}
	if len(h.Nodes) == 0 {
		r.step(StepDB, StepFailed, start, "no database node configured")
		return h, false
	}
	local := h.Nodes[0]
	switch {
	case local.Healthy:
		r.step(StepDB, StepOK, start, "local Galera node %s is Primary and Synced (cluster size %d)", local.Node, local.ClusterSize)
		return h, true
	case h.Healthy:
		r.check(StepDB, start, true, "local Galera node %s is not Primary and Synced (%s); the store uses %s instead. "+
			"Repair the local node (systemctl status mariadb; it must rejoin the Primary component)", local.Node, local.Problem, h.Node)
		return h, true
	default:
		r.step(StepDB, StepFailed, start, "no Galera node is Primary and Synced (%s); a promotion needs a quorum: "+
			"bring a majority of the database nodes back first (see docs/GALERA.md)", nodeProblems(h))
		return h, false
	}
}

func nodeProblems(h pool.Health) string {
	var p []string
	for _, n := range h.Nodes {
		p = append(p, n.Node+": "+n.Problem)
	}
	if len(p) == 0 {
		return h.Problem
	}
	return strings.Join(p, "; ")
}

// checkTarget: the target is a member, enabled and alive. It returns the
// master record the promotion will start from.
func (r *makemnRun) checkTarget(ctx context.Context, dbOK bool) (pool.Master, pool.Member, bool) {
	start := time.Now()
	if !dbOK {
		r.step(StepTarget, StepSkipped, start, "not checked: the database is not usable")
		return pool.Master{}, pool.Member{}, false
	}
	cur, members, err := r.s.MasterAndMembers(ctx)
	if err != nil {
		r.step(StepTarget, StepFailed, start, "reading the pool: %v", err)
		return cur, pool.Member{}, false
	}
	if cur.Member == "" {
		r.step(StepTarget, StepFailed, start, "the pool has no MN yet; run `mnpool init --mn NAME` first")
		return cur, pool.Member{}, false
	}
	var target pool.Member
	found := false
	names := make([]string, 0, len(members))
	for _, m := range members {
		names = append(names, m.Name)
		if m.Name == r.o.Target {
			target, found = m, true
		}
	}
	if !found {
		r.step(StepTarget, StepFailed, start, "%s is not a member of the pool (members: %s); add it with `mnpool member add %s --ip NETWORK=IP` or run makemn on a member (--self)",
			r.o.Target, strings.Join(names, ", "), r.o.Target)
		return cur, pool.Member{}, false
	}
	live := r.o.Liveness.LiveState(r.o.Target)
	var problems []string
	if target.Disabled {
		problems = append(problems, "it is disabled (mnpool member set "+r.o.Target+" --enable)")
	}
	if !live.Usable() {
		problems = append(problems, fmt.Sprintf("its heartbeat says %s (is mnpoold running on %s?)", live, r.o.Target))
	}
	if len(problems) > 0 {
		r.check(StepTarget, start, true, "%s is a member, but %s", r.o.Target, strings.Join(problems, " and "))
		return cur, target, true
	}
	note := ""
	if cur.Member == r.o.Target {
		note = fmt.Sprintf("; it is already the MN of epoch %d (only the hold and the sync run)", cur.Epoch)
	}
	r.step(StepTarget, StepOK, start, "%s is an enabled member, liveness %s%s", r.o.Target, live, note)
	return cur, target, true
}

// checkReplica: the target holds a Synced replica of the pool database.
func (r *makemnRun) checkReplica(ctx context.Context, h pool.Health, target pool.Member) {
	start := time.Now()
	if h.Backend != "galera" {
		r.step(StepReplica, StepSkipped, start, "not applicable (%s, single host)", h.Backend)
		return
	}
	want := r.dbAddrs(target)
	if len(want) == 0 {
		r.check(StepReplica, start, true, "%s has no address to match against the database nodes; "+
			"give its database address (makemn --db-address %s=IP)", target.Name, target.Name)
		return
	}
	msg, ok := replicaOf(h, want)
	if ok {
		r.step(StepReplica, StepOK, start, "%s", msg)
		return
	}
	switch {
	case r.o.ReplicaHook == nil:
		r.check(StepReplica, start, true, "%s; start MariaDB Galera on %s joined to the cluster (docs/MAKEMN-RUNBOOK.md), "+
			"or pass --replica-hook CMD, or map the member to its database address with --db-address %s=IP", msg, target.Name, target.Name)
		return
	case r.o.DryRun:
		r.step(StepReplica, StepWould, start, "%s; would run the replica hook and wait up to %v for it", msg, r.o.ReplicaWait)
		return
	case r.failed():
		r.check(StepReplica, start, true, "%s; the replica hook is not run because an earlier check failed", msg)
		return
	}
	if err := r.o.ReplicaHook(ctx, target.Name); err != nil {
		r.check(StepReplica, start, true, "%s; the replica hook failed: %v", msg, err)
		return
	}
	wctx, cancel := context.WithTimeout(ctx, r.o.ReplicaWait)
	defer cancel()
	t := time.NewTicker(r.o.ReplicaPoll)
	defer t.Stop()
	for {
		h2, err := r.s.Health(wctx)
		if err == nil {
			if msg, ok = replicaOf(h2, want); ok {
				r.step(StepReplica, StepOK, start, "replica hook ran; %s", msg)
				return
			}
		}
		select {
		case <-wctx.Done():
			r.check(StepReplica, start, true, "the replica hook ran, but after %v: %s", r.o.ReplicaWait, msg)
			return
		case <-t.C:
		}
	}
}

// dbAddrs are the hosts the target's database node may appear as.
func (r *makemnRun) dbAddrs(m pool.Member) []string {
	if a, ok := r.o.DBAddresses[m.Name]; ok {
		return []string{a.Unmap().String()}
	}
	nets := make([]string, 0, len(m.Addresses))
	for n := range m.Addresses {
		nets = append(nets, n)
	}
	sort.Strings(nets)
	out := make([]string, 0, len(nets))
	for _, n := range nets {
		out = append(out, m.Addresses[n].Unmap().String())
	}
	return out
}

// replicaOf looks for one of hosts among the cluster's incoming addresses
// and, when the store is configured with that node, requires it Synced.
func replicaOf(h pool.Health, hosts []string) (string, bool) {
	want := map[string]bool{}
	for _, a := range hosts {
		want[a] = true
	}
	for _, rep := range h.Replicas {
		if !want[hostOf(rep)] {
			continue
		}
		for _, n := range h.Nodes {
			if hostOf(n.Node) != hostOf(rep) {
				continue
			}
			if !n.Healthy {
				return fmt.Sprintf("the replica at %s is in the cluster but not Primary and Synced (%s)", rep, n.Problem), false
			}
			return fmt.Sprintf("Synced replica at %s (cluster size %d)", rep, n.ClusterSize), true
		}
		return fmt.Sprintf("replica at %s is in the Primary component (not among this store's DSNs, so its state is not checked)", rep), true
	}
	return fmt.Sprintf("no database replica at %s among the cluster's nodes (%s)", strings.Join(hosts, ", "), strings.Join(h.Replicas, ", ")), false
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// reportOldMN says what is known of the MN being replaced.
func (r *makemnRun) reportOldMN(cur pool.Master) {
	start := time.Now()
	switch {
	case cur.Member == "":
		r.step(StepOldMN, StepSkipped, start, "no MN recorded")
		return
	case cur.Member == r.o.Target:
		r.step(StepOldMN, StepSkipped, start, "%s is the MN already", cur.Member)
		return
	}
	live := r.o.Liveness.LiveState(cur.Member)
	var what string
	switch live {
	case liveness.Alive:
		what = "it reads the new master record within a guard interval, stops serving the dynamic range and becomes an SN on its next sync"
	case liveness.Suspect:
		what = "it may be slow or cut off; its MN guard stops it serving the dynamic range once it cannot confirm its role, and it becomes an SN when it next syncs"
	case liveness.Dead:
		what = "when it comes back it reads the new master record and stays an SN"
	default:
		r.step(StepOldMN, StepInfo, start, "%s (MN of epoch %d): liveness unknown; if it is up it stops serving the dynamic range "+
			"within a guard interval and becomes an SN on its next sync, if it is down it stays an SN when it returns", cur.Member, cur.Epoch)
		return
	}
	r.step(StepOldMN, StepInfo, start, "%s (MN of epoch %d) is %s: %s", cur.Member, cur.Epoch, live, what)
}

func (r *makemnRun) dryRun(cur pool.Master, guard *mnguard.Guard) {
	now := time.Now()
	if cur.Member == r.o.Target {
		r.step(StepPromote, StepWould, now, "nothing to promote: %s is the MN of epoch %d", cur.Member, cur.Epoch)
	} else {
		r.step(StepPromote, StepWould, now, "would make %s the MN of epoch %d (now %s, epoch %d) and set site.master=%s",
			r.o.Target, cur.Epoch+1, cur.Member, cur.Epoch, r.o.Target)
	}
	_, _, hold := guard.Timing()
	r.step(StepHold, StepWould, now, "would confirm the role through a Primary node and wait the hold (%v) before serving the dynamic range", hold)
	var names []string
	for _, st := range r.o.Sync.Steps {
		names = append(names, st.Name())
	}
	if len(names) == 0 {
		names = []string{"(no steps configured)"}
	}
	r.step(StepSync, StepWould, now, "would sync %s: %s", r.o.Target, strings.Join(names, ", "))
}

// hold runs the MN guard until it lets the target serve the dynamic range.
func (r *makemnRun) hold(ctx context.Context, guard *mnguard.Guard, want pool.Master) {
	start := time.Now()
	every, validFor, hold := guard.Timing()
	if e, ok := guard.WaitServe(ctx); ok {
		r.step(StepHold, StepOK, start, "confirmed as the MN of epoch %d through a Primary database node; the dynamic range may be served", e)
		return
	}
	st := guard.Status()
	if st.Confirms > 0 && !st.IsMN {
		r.step(StepHold, StepFailed, start, "%s is not the MN any more: %s is the MN of epoch %d; the dynamic range is not served here",
			r.o.Target, st.Master.Member, st.Master.Epoch)
		return
	}
	last := st.LastError
	if last == "" {
		last = "no error recorded"
	}
	r.step(StepHold, StepFailed, start, "could not confirm %s as the MN of epoch %d through a Primary database node within %v (last error: %s); "+
		"the dynamic range is not served; run makemn again once the database is healthy", r.o.Target, want.Epoch, hold+2*validFor+every, last)
}

func (r *makemnRun) sync(ctx context.Context, guard *mnguard.Guard) {
	start := time.Now()
	so := r.o.Sync
	so.Gate = guard
	rep, err := poolsync.Sync(ctx, r.s, r.o.Target, so)
	if rep.Self == "" { // the snapshot could not be read
		r.step(StepSync, StepFailed, start, "%v", err)
		return
	}
	r.rep.Sync = &rep
	dyn := "not served"
	if rep.ServeDynamic {
		dyn = fmt.Sprintf("served under epoch %d", rep.DynamicEpoch)
	}
	r.step(StepSync, StepInfo, start, "%s is %s (MN %s, epoch %d); dynamic range %s", rep.Self, rep.Role, rep.Master.Member, rep.Master.Epoch, dyn)
	for _, st := range rep.Steps {
		if st.Err != nil {
			r.step(StepSync+"/"+st.Step, StepFailed, start, "%v", st.Err)
			continue
		}
		detail := st.Detail
		if detail == "" {
			detail = map[bool]string{true: "changed", false: "unchanged"}[st.Changed]
		}
		r.step(StepSync+"/"+st.Step, StepOK, start, "%s", detail)
	}
	if err != nil && len(rep.Failed()) == 0 {
		r.step(StepSync, StepFailed, start, "%v", err)
	}
}
