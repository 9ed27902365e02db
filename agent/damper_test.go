package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDamper(t *testing.T) {
	t0 := time.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	d := newDamper(FailoverPolicy{CoolDown: 10 * time.Minute, Limit: 2, Window: 30 * time.Minute})
	check := func(when time.Duration, member string, want bool, reason string) {
		t.Helper()
		ok, why := d.allow(member, at(when))
		if ok != want || !strings.HasPrefix(why, reason) {
			t.Errorf("at %v allow(%s) = %v %q, want %v %q...", when, member, ok, why, want, reason)
		}
	}
	check(0, "sn1", true, "")
	d.record("sn1", at(0))
	check(time.Minute, "sn1", false, SuppressCoolDown)
	check(time.Minute, "sn2", true, "")
	d.record("sn2", at(time.Minute))
	check(2*time.Minute, "sn3", false, SuppressLimit)  // 2 within the window
	check(11*time.Minute, "sn1", false, SuppressLimit) // cool-down over, window still full
	check(31*time.Minute, "sn3", true, "")             // sn1's failover left the window
	check(31*time.Minute, "sn2", true, "")             // its cool-down is over too
	if diff := cmp.Diff([]string{"sn1", "sn2"}, d.expire(at(31*time.Minute))); diff != "" {
		t.Errorf("expired (-want +got):\n%s", diff)
	}
	// A cool-down restored from an earlier leader holds the member back
	// but does not count in the window.
	d.restore("sn4", at(40*time.Minute))
	check(45*time.Minute, "sn4", false, SuppressCoolDown)
	check(45*time.Minute, "sn5", true, "")
	check(50*time.Minute, "sn4", true, "")
	if got := d.expire(at(49 * time.Minute)); len(got) != 0 {
		t.Errorf("expired early: %v", got)
	}
}

func TestDamperDefaults(t *testing.T) {
	d := newDamper(FailoverPolicy{})
	want := FailoverPolicy{CoolDown: DefaultFailoverCoolDown, Limit: DefaultFailoverLimit, Window: DefaultFailoverWindow}
	if diff := cmp.Diff(want, d.p); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
