package ntp_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mnpool/mnpool/ntp"
)

func TestAssess(t *testing.T) {
	ms := time.Millisecond
	ok := func(s string, off, rtt time.Duration) ntp.Result {
		return ntp.Result{Server: s, Stratum: 3, Offset: off, RTT: rtt}
	}
	for _, tc := range []struct {
		name     string
		results  []ntp.Result
		max      time.Duration
		answered int
		spread   time.Duration
		warn     []error
	}{
		{"agree", []ntp.Result{ok("a", 1*ms, ms), ok("b", -2*ms, ms), ok("c", 0, ms)}, 0, 3, 3 * ms, nil},
		{"skew", []ntp.Result{ok("a", 0, ms), ok("b", 300*ms, ms)}, 0, 2, 300 * ms, []error{ntp.ErrSkew}},
		{"within the round trip", []ntp.Result{ok("a", 0, 100*ms), ok("b", 150*ms, 100*ms)}, 100 * ms, 2, 150 * ms, nil},
		{"custom limit", []ntp.Result{ok("a", 0, ms), ok("b", 30*ms, ms)}, 10 * ms, 2, 30 * ms, []error{ntp.ErrSkew}},
		{"one answer only", []ntp.Result{ok("a", 5*time.Second, ms)}, 0, 1, 0, nil},
		{"failures", []ntp.Result{ok("a", 0, ms), {Server: "b", Err: ntp.ErrNoAnswer}, {Server: "c", Err: ntp.ErrKissOfDeath}}, 0, 1, 0, []error{ntp.ErrNoAnswer, ntp.ErrKissOfDeath}},
		{"none", nil, 0, 0, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := ntp.Assess(tc.results, tc.max)
			if a.Answered != tc.answered || a.Spread != tc.spread {
				t.Errorf("answered %d spread %v, want %d %v", a.Answered, a.Spread, tc.answered, tc.spread)
			}
			if len(a.Warnings) != len(tc.warn) {
				t.Fatalf("warnings %v, want %v", a.Warnings, tc.warn)
			}
			for i, w := range a.Warnings {
				if !errors.Is(w.Err, tc.warn[i]) {
					t.Errorf("warning %d: %v, want %v", i, w, tc.warn[i])
				}
			}
		})
	}
}

func TestMemberTargets(t *testing.T) {
	st := seeded(t, "")
	for _, tc := range []struct {
		self string
		want []ntp.Target
	}{
		{"sn2", []ntp.Target{{"mn1", "10.0.0.1"}, {"sn1", "10.0.0.2"}, {"sn2", "10.0.0.3"}, {"sn4", "10.0.0.5"}}},
		{"", []ntp.Target{{"mn1", "10.0.0.1"}, {"sn1", "10.0.0.2"}, {"sn2", "10.0.0.3"}, {"sn4", "10.0.0.5"}}},
	} {
		if diff := cmp.Diff(tc.want, ntp.MemberTargets(st, tc.self)); diff != "" {
			t.Errorf("self %q (-want +got):\n%s", tc.self, diff)
		}
	}
}
