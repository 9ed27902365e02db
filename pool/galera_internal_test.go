package pool

import (
	"errors"
	"testing"
	"time"
)

func TestParseGaleraDetection(t *testing.T) {
	for name, c := range map[string]struct {
		in   string
		want time.Duration
		bad  bool
	}{
		"empty: not galera":   {"", 0, false},
		"test cluster":        {"base_dir = /x/; evs.inactive_timeout = PT4S; evs.keepalive_period = PT0.5S; evs.suspect_timeout = PT2S; gcache.size = 32M", 6 * time.Second, false},
		"defaults when unset": {"base_dir = /var/lib/mysql/; gcache.size = 128M", 20 * time.Second, false},
		"fractions, minutes":  {"evs.suspect_timeout = PT0.5S; evs.inactive_timeout = PT1M", 60*time.Second + 500*time.Millisecond, false},
		"bad duration":        {"evs.suspect_timeout = 5s", 0, true},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := parseGaleraDetection(c.in)
			if c.bad {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("= %v, %v; want %v", got, err, c.want)
			}
		})
	}
}

func TestParseISODuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"PT5S": 5 * time.Second, "PT0.5S": 500 * time.Millisecond, "PT1M30S": 90 * time.Second, "P1D": 24 * time.Hour, "PT2H": 2 * time.Hour} {
		if got, err := parseISODuration(in); err != nil || got != want {
			t.Errorf("parseISODuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "P", "PT", "5S", "PT5", "PTS", "PT-1S"} {
		if _, err := parseISODuration(in); err == nil {
			t.Errorf("parseISODuration(%q) accepted", in)
		}
	}
}
