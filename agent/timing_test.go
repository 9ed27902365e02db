package agent

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTimingResolve(t *testing.T) {
	s := time.Second
	for name, c := range map[string]struct {
		in     Timing
		detect time.Duration
		want   Timing
		err    error
	}{
		"sqlite defaults":           {Timing{}, 0, Timing{HeartbeatInterval: s, SuspectAfter: 5 * s, DeadAfter: 10 * s, LeaseTTL: 10 * s}, nil},
		"test cluster defaults":     {Timing{}, 6 * s, Timing{HeartbeatInterval: s, SuspectAfter: 7 * s, DeadAfter: 12 * s, LeaseTTL: 12 * s, GaleraDetection: 6 * s}, nil},
		"galera production":         {Timing{}, 20 * s, Timing{HeartbeatInterval: s, SuspectAfter: 21 * s, DeadAfter: 40 * s, LeaseTTL: 40 * s, GaleraDetection: 20 * s}, nil},
		"explicit within limits":    {Timing{HeartbeatInterval: s / 2, SuspectAfter: 8 * s, DeadAfter: 13 * s, LeaseTTL: 9 * s}, 6 * s, Timing{HeartbeatInterval: s / 2, SuspectAfter: 8 * s, DeadAfter: 13 * s, LeaseTTL: 9 * s, GaleraDetection: 6 * s}, nil},
		"fast interval, sqlite":     {Timing{HeartbeatInterval: 100 * time.Millisecond, SuspectAfter: 400 * time.Millisecond, DeadAfter: 800 * time.Millisecond}, 0, Timing{HeartbeatInterval: 100 * time.Millisecond, SuspectAfter: 400 * time.Millisecond, DeadAfter: 800 * time.Millisecond, LeaseTTL: 800 * time.Millisecond}, nil},
		"suspect not above galera":  {Timing{SuspectAfter: 6 * s}, 6 * s, Timing{}, ErrUnsafeTiming},
		"dead below 2 x galera":     {Timing{DeadAfter: 11 * s}, 6 * s, Timing{}, ErrUnsafeTiming},
		"dead below suspect":        {Timing{SuspectAfter: 9 * s, DeadAfter: 9 * s}, 0, Timing{}, ErrUnsafeTiming},
		"lease not above galera":    {Timing{LeaseTTL: 6 * s}, 6 * s, Timing{}, ErrUnsafeTiming},
		"lease below 3 intervals":   {Timing{HeartbeatInterval: s, LeaseTTL: 2 * s}, 0, Timing{}, ErrUnsafeTiming},
		"suspect below 2 intervals": {Timing{HeartbeatInterval: 3 * s, SuspectAfter: 5 * s}, 0, Timing{}, ErrUnsafeTiming},
		"negative":                  {Timing{SuspectAfter: -s}, 0, Timing{}, ErrInvalid},
		"interval too short":        {Timing{HeartbeatInterval: time.Millisecond}, 0, Timing{}, ErrInvalid},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := c.in.Resolve(c.detect)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("Resolve = %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseAutoFailover(t *testing.T) {
	for in, want := range map[string]bool{"": false, "0": false, "1": true, " 1 ": true} {
		if got, err := ParseAutoFailover(in); err != nil || got != want {
			t.Errorf("ParseAutoFailover(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"yes", "2", "true", "on"} {
		if got, err := ParseAutoFailover(in); !errors.Is(err, ErrInvalid) || got {
			t.Errorf("ParseAutoFailover(%q) = %v, %v; want off and ErrInvalid", in, got, err)
		}
	}
}
