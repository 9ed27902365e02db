package ntp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mnpool/mnpool/memberaddr"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
)

// DefaultMaxSkew is the clock difference between members above which
// Assess warns. Members synchronized by chrony on one LAN agree within a
// millisecond; 100 ms means one of them is not synchronized.
const DefaultMaxSkew = 100 * time.Millisecond

// Warning is one problem Assess found.
type Warning struct {
	// Server is the server concerned; for skew, "A/B", the two servers
	// whose clocks are furthest apart.
	Server string
	// Err wraps ErrNoAnswer, ErrKissOfDeath, ErrUnsynchronized or ErrSkew.
	Err error
}

func (w Warning) String() string {
	if errors.Is(w.Err, ErrSkew) {
		return w.Err.Error()
	}
	return w.Server + ": " + w.Err.Error()
}

// Assessment is what one round of Check says about the clocks.
type Assessment struct {
	// Answered is the number of servers that gave usable time.
	Answered int
	// Spread is the largest difference between two of those servers'
	// clocks (each measured against the local clock in the same round, so
	// no clock of another host is compared with a timestamp it wrote).
	Spread time.Duration
	// Earliest and Latest are the servers behind and ahead the most.
	Earliest, Latest string
	// Uncertainty bounds the error of Spread: half the round trip of each
	// of the two servers.
	Uncertainty time.Duration
	// Warnings lists every server that gave no usable time, then the
	// skew when Spread minus Uncertainty exceeds the allowed skew.
	Warnings []Warning
}

// Assess computes the spread of the clocks in results and warns about
// servers without usable time and about a spread above maxSkew
// (DefaultMaxSkew when 0) that the measurement error cannot explain.
func Assess(results []Result, maxSkew time.Duration) Assessment {
	if maxSkew <= 0 {
		maxSkew = DefaultMaxSkew
	}
	var a Assessment
	var lo, hi *Result
	for i := range results {
		r := &results[i]
		if r.Err != nil {
			a.Warnings = append(a.Warnings, Warning{Server: r.Server, Err: r.Err})
			continue
		}
		a.Answered++
		if lo == nil || r.Offset < lo.Offset {
			lo = r
		}
		if hi == nil || r.Offset > hi.Offset {
			hi = r
		}
	}
	if a.Answered == 0 {
		return a
	}
	a.Spread = hi.Offset - lo.Offset
	a.Earliest, a.Latest = lo.Server, hi.Server
	a.Uncertainty = lo.RTT/2 + hi.RTT/2
	if a.Answered >= 2 && a.Spread-a.Uncertainty > maxSkew {
		a.Warnings = append(a.Warnings, Warning{
			Server: lo.Server + "/" + hi.Server,
			Err:    fmt.Errorf("%w: %s is %v behind %s (±%v; allowed %v)", ErrSkew, lo.Server, a.Spread.Round(time.Microsecond), hi.Server, a.Uncertainty.Round(time.Microsecond), maxSkew),
		})
	}
	return a
}

// Target is a member to check, with the address to ask.
type Target struct {
	Member string `json:"member"`
	Addr   string `json:"addr"`
}

// MemberTargets returns the members that run ntp, each with the address
// member self reaches it by (see memberaddr.Peer; self may be "" or a host
// that is not a member: then each member's main address).
func MemberTargets(st *pool.State, self string) []Target {
	from, _ := st.Member(self)
	var out []Target
	for _, m := range st.Members {
		if !m.Runs(service.NTP) {
			continue
		}
		if a, _, ok := memberaddr.Peer(st, from, m); ok {
			out = append(out, Target{Member: m.Name, Addr: a.String()})
		}
	}
	return out
}

// CheckMembers checks the members that run ntp as seen from self and
// assesses their skew; the hook for `mnpool status`. results are in
// targets order.
func CheckMembers(ctx context.Context, st *pool.State, self string, o CheckOptions, maxSkew time.Duration) ([]Target, []Result, Assessment, error) {
	targets := MemberTargets(st, self)
	servers := make([]string, len(targets))
	for i, t := range targets {
		servers[i] = t.Addr
	}
	res, err := Check(ctx, servers, o)
	if err != nil {
		return targets, res, Assessment{}, err
	}
	// Name the members in the warnings.
	named := make([]Result, len(res))
	for i, r := range res {
		named[i] = r
		named[i].Server = targets[i].Member + " (" + r.Server + ")"
	}
	return targets, res, Assess(named, maxSkew), nil
}
