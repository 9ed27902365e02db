package console_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mnpool/mnpool/console"
)

func TestEscapeParser(t *testing.T) {
	type step struct {
		out  string
		cmd  byte
		rest string
	}
	cases := map[string]struct {
		chunks []string
		want   []step
	}{
		"plain":              {[]string{"ls -l\r"}, []step{{"ls -l\r", 0, ""}}},
		"quit":               {[]string{"ab\x05c.cd"}, []step{{"ab", '.', "cd"}}},
		"split over reads":   {[]string{"x\x05", "c", "."}, []step{{"x", 0, ""}, {"", 0, ""}, {"", '.', ""}}},
		"ctrl-e then other":  {[]string{"\x05x"}, []step{{"\x05x", 0, ""}}},
		"ctrl-e ctrl-e c ?":  {[]string{"\x05\x05c?"}, []step{{"\x05", '?', ""}}},
		"ctrl-e c then data": {[]string{"\x05cz1"}, []step{{"", 'z', "1"}}},
		"lone ctrl-e held":   {[]string{"a\x05"}, []step{{"a", 0, ""}}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			state := 0
			var got []step
			for _, ch := range c.chunks {
				out, cmd, rest := console.Feed(&state, []byte(ch))
				got = append(got, step{string(out), cmd, string(rest)})
			}
			if d := cmp.Diff(c.want, got, cmp.AllowUnexported(step{})); d != "" {
				t.Fatalf("(-want +got)\n%s", d)
			}
		})
	}
}

func TestRing(t *testing.T) {
	cases := map[string]struct {
		size   int
		writes []string
		want   string
	}{
		"empty":        {8, nil, ""},
		"partial":      {8, []string{"abc", "de"}, "abcde"},
		"exactly full": {8, []string{"abcd", "efgh"}, "abcdefgh"},
		"wraps":        {8, []string{"abcdef", "ghij"}, "cdefghij"},
		"big write":    {4, []string{"ab", "0123456789"}, "6789"},
		"many":         {5, []string{"a", "b", "c", "d", "e", "f", "g"}, "cdefg"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := console.NewRing(c.size)
			for _, w := range c.writes {
				r.Write([]byte(w))
			}
			if got := string(r.Bytes()); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}
