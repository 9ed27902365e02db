package testgalera

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mnpool/mnpool/internal/ctxutil"
	"github.com/mnpool/mnpool/internal/testenv"
)

// NodeStatus is what a node says about itself (SHOW GLOBAL STATUS LIKE 'wsrep_%').
type NodeStatus struct {
	Node int // 1-based node number
	// Reachable is false when the node did not answer within 5 s (it is
	// down or paused); Err then says why and the other fields are zero.
	Reachable bool
	Err       error
	// ClusterStatus is wsrep_cluster_status: "Primary", "non-Primary" or
	// "Disconnected".
	ClusterStatus string
	// StateComment is wsrep_local_state_comment: "Synced", "Joining",
	// "Joined", "Donor/Desynced", "Initialized", ...
	StateComment string
	// Ready is wsrep_ready = ON: the node accepts queries on tables.
	Ready bool
	// Size is wsrep_cluster_size: members of the node's component.
	Size int
	// ConfID is wsrep_cluster_conf_id: the number of the node's view. Nodes
	// in the same component have the same ConfID; a node that was paused
	// reports its old view until it notices it was dropped.
	ConfID int64
	// IncomingAddresses is wsrep_incoming_addresses, e.g.
	// ["127.0.0.11:4401", "127.0.0.12:4402", "127.0.0.13:4403"].
	IncomingAddresses []string
}

// Healthy reports whether the node is Primary, Synced and ready.
func (s NodeStatus) Healthy() bool {
	return s.Reachable && s.ClusterStatus == "Primary" && s.StateComment == "Synced" && s.Ready
}

// String renders the status for failure messages.
func (s NodeStatus) String() string {
	if !s.Reachable {
		return fmt.Sprintf("node %d: not answering: %v", s.Node, s.Err)
	}
	return fmt.Sprintf("node %d: %s %s ready=%v size=%d conf=%d", s.Node, s.ClusterStatus,
		s.StateComment, s.Ready, s.Size, s.ConfID)
}

// Status queries node n (1-based). It does not fail the test when the node
// does not answer: it returns Reachable=false with Err set, so a test can
// assert that a killed or paused node is unreachable.
func (e *Env) Status(t testing.TB, n int) NodeStatus {
	t.Helper()
	e.checkNode(t, n)
	return e.status(t.Context(), n)
}

func (e *Env) status(ctx context.Context, n int) NodeStatus {
	st := NodeStatus{Node: n}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	rows, err := e.admin[n-1].QueryContext(ctx, "SHOW GLOBAL STATUS WHERE Variable_name IN "+
		"('wsrep_cluster_status','wsrep_local_state_comment','wsrep_ready','wsrep_cluster_size',"+
		"'wsrep_cluster_conf_id','wsrep_incoming_addresses')")
	if err != nil {
		st.Err = fmt.Errorf("node %d (%s): %w", n, e.nodes[n-1].cfg.Addr, err)
		return st
	}
	defer rows.Close()
	vars := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			st.Err = fmt.Errorf("node %d: scan status: %w", n, err)
			return st
		}
		vars[strings.ToLower(k)] = v
	}
	if err := rows.Err(); err != nil {
		st.Err = fmt.Errorf("node %d (%s): %w", n, e.nodes[n-1].cfg.Addr, err)
		return st
	}
	st.Reachable = true
	st.ClusterStatus = vars["wsrep_cluster_status"]
	st.StateComment = vars["wsrep_local_state_comment"]
	st.Ready = vars["wsrep_ready"] == "ON"
	st.Size, _ = strconv.Atoi(vars["wsrep_cluster_size"])
	st.ConfID, _ = strconv.ParseInt(vars["wsrep_cluster_conf_id"], 10, 64)
	if a := vars["wsrep_incoming_addresses"]; a != "" {
		st.IncomingAddresses = strings.Split(a, ",")
	}
	return st
}

// synced reports whether node n is healthy and in the same view as every
// other node that answers and is Primary (so a resumed node that still
// reports its old view does not count), and, when size > 0, whether its
// component has size members.
func (e *Env) synced(ctx context.Context, n, size int) (bool, NodeStatus) {
	st := e.status(ctx, n)
	if !st.Healthy() || (size > 0 && st.Size != size) {
		return false, st
	}
	for i := range e.nodes {
		if i+1 == n {
			continue
		}
		o := e.status(ctx, i+1)
		if o.Reachable && o.ClusterStatus == "Primary" && o.ConfID != st.ConfID {
			return false, st
		}
	}
	return true, st
}

// waitSynced polls until node n is synced (see synced) or ctx ends.
func (e *Env) waitSynced(ctx context.Context, n, size int) error {
	for {
		ok, st := e.synced(ctx, n, size)
		if ok {
			return nil
		}
		if err := ctxutil.Sleep(ctx, pollInterval); err != nil {
			want := "Synced/Primary"
			if size > 0 {
				want += fmt.Sprintf(" with size %d", size)
			}
			return fmt.Errorf("testgalera: node %d not %s: %v: %w", n, want, st, err)
		}
	}
}

// waitHealthy waits until every node is Synced in one Primary component of
// all nodes.
func (e *Env) waitHealthy(ctx context.Context) error {
	var errs []error
	for i := range e.nodes {
		if err := e.waitSynced(ctx, i+1, len(e.nodes)); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("testgalera: cluster not healthy: %w", errors.Join(errs...))
	}
	return nil
}

// WaitSynced waits up to timeout until node n is Synced, Primary and ready,
// and in the same view as the other Primary nodes; it fails the test
// otherwise.
func (e *Env) WaitSynced(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	e.checkNode(t, n)
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Timeout(timeout))
	defer cancel()
	if err := e.waitSynced(ctx, n, 0); err != nil {
		t.Fatal(err)
	}
}
