package pool

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
)

// ErrPreflight: a makemn check failed (and was not forced); nothing was
// written.
var ErrPreflight = errors.New("pool: makemn preflight failed")

// Defaults of MakeMN.
const (
	// DefaultReplicaWait bounds how long MakeMN waits, after the replica
	// hook ran, for the target's database node to appear Synced in the
	// cluster (a state transfer of a large pool takes a while).
	DefaultReplicaWait = 5 * time.Minute
	// DefaultReplicaPoll is how often it looks.
	DefaultReplicaPoll = time.Second
)

// Names of the makemn steps, in the order they run. Sync steps are
// reported as "sync/" + the step's name.
const (
	MakeMNStepDB      = "db"
	MakeMNStepTarget  = "target"
	MakeMNStepReplica = "replica"
	MakeMNStepOldMN   = "old-mn"
	MakeMNStepPromote = "promote"
	MakeMNStepHold    = "hold"
	MakeMNStepSync    = "sync"
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

// MakeMNStep is one line of the makemn report.
type MakeMNStep struct {
	Name    string        `json:"name"`
	Status  StepStatus    `json:"status"`
	Message string        `json:"message"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// MakeMNOptions are the arguments of MakeMN.
type MakeMNOptions struct {
	// Target is the member that becomes the MN: the member MakeMN runs on.
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
	Liveness LivenessView
	// DBAddresses maps a member to the address its Galera node is reached
	// at, for sites where the database runs on an interface that is not
	// one of the member's pool addresses. Without an entry a member's pool
	// addresses are matched against the cluster's incoming addresses.
	DBAddresses map[string]netip.Addr
	// ReplicaHook, when the target holds no replica, is called to start
	// one (for example a script that joins MariaDB Galera on the target);
	// MakeMN then waits up to ReplicaWait for it to be Synced.
	ReplicaHook func(ctx context.Context, member string) error
	ReplicaWait time.Duration
	ReplicaPoll time.Duration
	// Guard configures the MN guard that confirms the new role before the
	// dynamic range is rendered (the hold step).
	Guard []GuardOption
	// Sync is run at the end (its Gate is set to the guard).
	Sync SyncOptions
	// Reason goes into the audit record of the promotion.
	Reason string
	// OnStep, when set, is called as each step ends (to print progress).
	OnStep func(MakeMNStep)
	// Fence, when set, runs inside the promotion's transaction
	// (PromoteOptions.Fence): the makemn package passes the Guard of its
	// cluster-wide lock. Use makemn.Run, which takes that lock, rather than
	// MakeMN directly: two MakeMN calls at once without it can promote one
	// after the other.
	Fence func(ctx context.Context, tx *sqlx.Tx) error
}

// MakeMNReport is the outcome of MakeMN.
type MakeMNReport struct {
	Target   string       `json:"target"`
	DryRun   bool         `json:"dry_run,omitempty"`
	Previous Master       `json:"previous"`
	Master   Master       `json:"master"`
	Steps    []MakeMNStep `json:"steps"`
	Sync     *SyncReport  `json:"sync,omitempty"`
	// OK is true when no step failed.
	OK bool `json:"ok"`
}

type makemnRun struct {
	s    *Store
	o    MakeMNOptions
	rep  MakeMNReport
	errs []error
}

func (r *makemnRun) step(name string, st StepStatus, start time.Time, format string, args ...any) {
	stp := MakeMNStep{Name: name, Status: st, Message: fmt.Sprintf(format, args...), Elapsed: time.Since(start)}
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

// MakeMN makes o.Target the MN, whether the old MN is up or down:
//
//  1. checks (each reported): the local database node is Primary and
//     Synced; the target is a member, alive and not disabled; the target
//     holds a Synced replica of the pool database (else the replica hook
//     starts one, else MakeMN refuses and says what to do); the old MN's
//     liveness is reported;
//  2. promote: Promote from the epoch read in the checks (exactly one of
//     concurrent makemn runs wins);
//  3. hold: an MNGuard confirms the new role through a healthy node and
//     waits out the hold, so the old MN's dynamic range has expired before
//     the new one is rendered;
//  4. sync: Sync for the target (role files, DHCP, ...).
//
// Every step is reported through o.OnStep and in the report. The error is
// nil only when no step failed; ErrPreflight when a check failed (nothing
// was written). A failure after the promotion leaves the database
// consistent (the promotion is one transaction); run MakeMN again, which
// finds the target is the MN and repeats the hold and the sync.
func MakeMN(ctx context.Context, s *Store, o MakeMNOptions) (MakeMNReport, error) {
	if err := ValidateName("member", o.Target); err != nil {
		return MakeMNReport{}, err
	}
	for m := range o.DBAddresses {
		if err := ValidateName("member", m); err != nil {
			return MakeMNReport{}, fmt.Errorf("DB address mapping: %w", err)
		}
	}
	if o.Liveness == nil {
		o.Liveness = StaticLiveness{}
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
	guard, err := NewMNGuard(s, o.Target, o.Guard...)
	if err != nil {
		return MakeMNReport{}, err
	}
	r := &makemnRun{s: s, o: o, rep: MakeMNReport{Target: o.Target, DryRun: o.DryRun}}
	err = r.run(ctx, guard)
	r.rep.OK = err == nil
	return r.rep, err
}

func (r *makemnRun) run(ctx context.Context, guard *MNGuard) error {
	h, healthy := r.checkDB(ctx)
	cur, target, ok := r.checkTarget(ctx, healthy)
	r.rep.Previous, r.rep.Master = cur, cur
	if ok {
		r.checkReplica(ctx, h, target)
	} else {
		r.step(MakeMNStepReplica, StepSkipped, time.Now(), "not checked: an earlier check failed")
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
	p, err := r.s.Promote(ctx, r.o.Target, PromoteOptions{Epoch: cur.Epoch, AllowDisabled: r.o.Force, Reason: r.o.Reason, Fence: r.o.Fence})
	if err != nil {
		var ce *PromoteConflictError
		if errors.As(err, &ce) {
			r.rep.Master = ce.Winner
		}
		r.step(MakeMNStepPromote, StepFailed, start, "%v", err)
		return fmt.Errorf("pool: makemn: %w", err)
	}
	r.rep.Master = p.Master
	if p.Unchanged {
		r.step(MakeMNStepPromote, StepOK, start, "%s is already the MN of epoch %d; nothing written", p.Master.Member, p.Master.Epoch)
	} else {
		r.step(MakeMNStepPromote, StepOK, start, "%s is the MN of epoch %d (was %s, epoch %d); site.master=%s",
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
func (r *makemnRun) checkDB(ctx context.Context) (Health, bool) {
	start := time.Now()
	h, err := r.s.Health(ctx)
	if err != nil {
		r.step(MakeMNStepDB, StepFailed, start, "reading database health: %v", err)
		return h, false
	}
	switch h.Backend {
	case "sqlite":
		r.step(MakeMNStepDB, StepOK, start, "SQLite %s (single host)", h.Node)
		return h, true
	case "mysql":
		if !h.Healthy {
			r.step(MakeMNStepDB, StepFailed, start, "MariaDB %s is not usable: %s", h.Node, h.Problem)
			return h, false
		}
		r.step(MakeMNStepDB, StepOK, start, "MariaDB %s without Galera (one database host)", h.Node)
		return h, true
	}
	if len(h.Nodes) == 0 {
		r.step(MakeMNStepDB, StepFailed, start, "no database node configured")
		return h, false
	}
	local := h.Nodes[0]
	switch {
	case local.Healthy:
		r.step(MakeMNStepDB, StepOK, start, "local Galera node %s is Primary and Synced (cluster size %d)", local.Node, local.ClusterSize)
		return h, true
	case h.Healthy:
		r.check(MakeMNStepDB, start, true, "local Galera node %s is not Primary and Synced (%s); the store uses %s instead. "+
			"Repair the local node (systemctl status mariadb; it must rejoin the Primary component)", local.Node, local.Problem, h.Node)
		return h, true
	default:
		r.step(MakeMNStepDB, StepFailed, start, "no Galera node is Primary and Synced (%s); a promotion needs a quorum: "+
			"bring a majority of the database nodes back first (see docs/GALERA.md)", nodeProblems(h))
		return h, false
	}
}

func nodeProblems(h Health) string {
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
func (r *makemnRun) checkTarget(ctx context.Context, dbOK bool) (Master, Member, bool) {
	start := time.Now()
	if !dbOK {
		r.step(MakeMNStepTarget, StepSkipped, start, "not checked: the database is not usable")
		return Master{}, Member{}, false
	}
	var cur Master
	var members []Member
	err := r.s.Read(ctx, func(tx *sqlx.Tx) error {
		var err error
		if cur, err = readMaster(ctx, tx); err != nil {
			return err
		}
		members, err = readMembers(ctx, tx)
		return err
	})
	if err != nil {
		r.step(MakeMNStepTarget, StepFailed, start, "reading the pool: %v", err)
		return cur, Member{}, false
	}
	if cur.Member == "" {
		r.step(MakeMNStepTarget, StepFailed, start, "the pool has no MN yet; run `mnpool init --mn NAME` first")
		return cur, Member{}, false
	}
	var target Member
	found := false
	names := make([]string, 0, len(members))
	for _, m := range members {
		names = append(names, m.Name)
		if m.Name == r.o.Target {
			target, found = m, true
		}
	}
	if !found {
		r.step(MakeMNStepTarget, StepFailed, start, "%s is not a member of the pool (members: %s); add it with `mnpool member add %s --ip NETWORK=IP` or run makemn on a member (--self)",
			r.o.Target, strings.Join(names, ", "), r.o.Target)
		return cur, Member{}, false
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
		r.check(MakeMNStepTarget, start, true, "%s is a member, but %s", r.o.Target, strings.Join(problems, " and "))
		return cur, target, true
	}
	note := ""
	if cur.Member == r.o.Target {
		note = fmt.Sprintf("; it is already the MN of epoch %d (only the hold and the sync run)", cur.Epoch)
	}
	r.step(MakeMNStepTarget, StepOK, start, "%s is an enabled member, liveness %s%s", r.o.Target, live, note)
	return cur, target, true
}

// checkReplica: the target holds a Synced replica of the pool database.
func (r *makemnRun) checkReplica(ctx context.Context, h Health, target Member) {
	start := time.Now()
	if h.Backend != "galera" {
		r.step(MakeMNStepReplica, StepSkipped, start, "not applicable (%s, single host)", h.Backend)
		return
	}
	want := r.dbAddrs(target)
	if len(want) == 0 {
		r.check(MakeMNStepReplica, start, true, "%s has no address to match against the database nodes; "+
			"give its database address (makemn --db-address %s=IP)", target.Name, target.Name)
		return
	}
	msg, ok := replicaOf(h, want)
	if ok {
		r.step(MakeMNStepReplica, StepOK, start, "%s", msg)
		return
	}
	switch {
	case r.o.ReplicaHook == nil:
		r.check(MakeMNStepReplica, start, true, "%s; start MariaDB Galera on %s joined to the cluster (docs/MAKEMN-RUNBOOK.md), "+
			"or pass --replica-hook CMD, or map the member to its database address with --db-address %s=IP", msg, target.Name, target.Name)
		return
	case r.o.DryRun:
		r.step(MakeMNStepReplica, StepWould, start, "%s; would run the replica hook and wait up to %v for it", msg, r.o.ReplicaWait)
		return
	case r.failed():
		r.check(MakeMNStepReplica, start, true, "%s; the replica hook is not run because an earlier check failed", msg)
		return
	}
	if err := r.o.ReplicaHook(ctx, target.Name); err != nil {
		r.check(MakeMNStepReplica, start, true, "%s; the replica hook failed: %v", msg, err)
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
				r.step(MakeMNStepReplica, StepOK, start, "replica hook ran; %s", msg)
				return
			}
		}
		select {
		case <-wctx.Done():
			r.check(MakeMNStepReplica, start, true, "the replica hook ran, but after %v: %s", r.o.ReplicaWait, msg)
			return
		case <-t.C:
		}
	}
}

// dbAddrs are the hosts the target's database node may appear as.
func (r *makemnRun) dbAddrs(m Member) []string {
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
func replicaOf(h Health, hosts []string) (string, bool) {
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
func (r *makemnRun) reportOldMN(cur Master) {
	start := time.Now()
	switch {
	case cur.Member == "":
		r.step(MakeMNStepOldMN, StepSkipped, start, "no MN recorded")
		return
	case cur.Member == r.o.Target:
		r.step(MakeMNStepOldMN, StepSkipped, start, "%s is the MN already", cur.Member)
		return
	}
	live := r.o.Liveness.LiveState(cur.Member)
	var what string
	switch live {
	case LiveAlive:
		what = "it reads the new master record within a guard interval, stops serving the dynamic range and becomes an SN on its next sync"
	case LiveSuspect:
		what = "it may be slow or cut off; its MN guard stops it serving the dynamic range once it cannot confirm its role, and it becomes an SN when it next syncs"
	case LiveDead:
		what = "when it comes back it reads the new master record and stays an SN"
	default:
		r.step(MakeMNStepOldMN, StepInfo, start, "%s (MN of epoch %d): liveness unknown; if it is up it stops serving the dynamic range "+
			"within a guard interval and becomes an SN on its next sync, if it is down it stays an SN when it returns", cur.Member, cur.Epoch)
		return
	}
	r.step(MakeMNStepOldMN, StepInfo, start, "%s (MN of epoch %d) is %s: %s", cur.Member, cur.Epoch, live, what)
}

func (r *makemnRun) dryRun(cur Master, guard *MNGuard) {
	now := time.Now()
	if cur.Member == r.o.Target {
		r.step(MakeMNStepPromote, StepWould, now, "nothing to promote: %s is the MN of epoch %d", cur.Member, cur.Epoch)
	} else {
		r.step(MakeMNStepPromote, StepWould, now, "would make %s the MN of epoch %d (now %s, epoch %d) and set site.master=%s",
			r.o.Target, cur.Epoch+1, cur.Member, cur.Epoch, r.o.Target)
	}
	_, _, hold := guard.Timing()
	r.step(MakeMNStepHold, StepWould, now, "would confirm the role through a Primary node and wait the hold (%v) before serving the dynamic range", hold)
	var names []string
	for _, st := range r.o.Sync.Steps {
		names = append(names, st.Name())
	}
	if len(names) == 0 {
		names = []string{"(no steps configured)"}
	}
	r.step(MakeMNStepSync, StepWould, now, "would sync %s: %s", r.o.Target, strings.Join(names, ", "))
}

// hold runs the MN guard until it lets the target serve the dynamic range.
func (r *makemnRun) hold(ctx context.Context, guard *MNGuard, want Master) {
	start := time.Now()
	every, validFor, hold := guard.Timing()
	limit := hold + 2*validFor + every
	hctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = guard.Run(hctx)
	}()
	defer func() { cancel(); <-done }()
	for {
		if e, ok := guard.ServeDynamic(); ok {
			r.step(MakeMNStepHold, StepOK, start, "confirmed as the MN of epoch %d through a Primary database node; the dynamic range may be served", e)
			return
		}
		st := guard.Status()
		if st.Confirms > 0 && !st.IsMN {
			r.step(MakeMNStepHold, StepFailed, start, "%s is not the MN any more: %s is the MN of epoch %d; the dynamic range is not served here",
				r.o.Target, st.Master.Member, st.Master.Epoch)
			return
		}
		select {
		case <-guard.Changed():
		case <-time.After(50 * time.Millisecond):
		case <-hctx.Done():
			last := st.LastError
			if last == "" {
				last = "no error recorded"
			}
			r.step(MakeMNStepHold, StepFailed, start, "could not confirm %s as the MN of epoch %d through a Primary database node within %v (last error: %s); "+
				"the dynamic range is not served; run makemn again once the database is healthy", r.o.Target, want.Epoch, limit, last)
			return
		}
	}
}

func (r *makemnRun) sync(ctx context.Context, guard *MNGuard) {
	start := time.Now()
	so := r.o.Sync
	so.Gate = guard
	rep, err := Sync(ctx, r.s, r.o.Target, so)
	if rep.Self == "" { // the snapshot could not be read
		r.step(MakeMNStepSync, StepFailed, start, "%v", err)
		return
	}
	r.rep.Sync = &rep
	dyn := "not served"
	if rep.ServeDynamic {
		dyn = fmt.Sprintf("served under epoch %d", rep.DynamicEpoch)
	}
	r.step(MakeMNStepSync, StepInfo, start, "%s is %s (MN %s, epoch %d); dynamic range %s", rep.Self, rep.Role, rep.Master.Member, rep.Master.Epoch, dyn)
	for _, st := range rep.Steps {
		if st.Err != nil {
			r.step(MakeMNStepSync+"/"+st.Step, StepFailed, start, "%v", st.Err)
			continue
		}
		detail := st.Detail
		if detail == "" {
			detail = map[bool]string{true: "changed", false: "unchanged"}[st.Changed]
		}
		r.step(MakeMNStepSync+"/"+st.Step, StepOK, start, "%s", detail)
	}
	if err != nil && len(rep.Failed()) == 0 {
		r.step(MakeMNStepSync, StepFailed, start, "%v", err)
	}
}
