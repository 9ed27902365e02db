package xcat_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mnpool/mnpool/xcat"
)

func TestEval(t *testing.T) {
	cases := []struct {
		v, node, want string
		err           error
	}{
		{`|\D+(\d+)|10.0.0.($1+0)|`, "cn007", "10.0.0.7", nil},
		{`|\D+(\d+)|10.0.0.($1+0)|`, "cn010", "10.0.0.10", nil}, // decimal, not octal
		{`|\D+(\d+)|10.0.1.($1*2+10)|`, "cn003", "10.0.1.16", nil},
		{`|\D+(\d+)|sn(($1%3)+1)|`, "cn007", "sn2", nil},
		{`|node(\d+)|bmc($1-1)|`, "node1", "bmc0", nil},
		{`|\D+(\d+)|10.($1/256).($1%256)|`, "cn0512", "10.2.0", nil},
		{`|rack(\d+)n(\d+)|10.$1.0.(($1-1)*40+$2)|`, "rack2n07", "10.2.0.47", nil},
		{`|(.*)|$1-ib0|`, "cn001", "cn001-ib0", nil},
		{`|\D+(\d+)|($1/2)|`, "cn3", "1.5", nil}, // Perl division
		{`|\D+(\d+)|(-$1 % 3)|`, "cn4", "2", nil},
		{`/\z/-bmc/`, "cn001", "cn001-bmc", nil},
		{`/cn/bmc/`, "cn001", "bmc001", nil},
		{`/(\d+)$/-${1}x/`, "cn001", "cn-001x", nil},
		{`|\D+(\d+)|10.0.0.($1+0)|`, "mn", "", xcat.ErrNoMatch},
		{`|\D+(\d+)|10.0.0.($1/0)|`, "cn1", "", xcat.ErrInvalid},
		{`|\D+(\d+)|10.0.0.($2)|`, "cn1", "", xcat.ErrInvalid},
		{`|\D+(\d+)|10.0.0.($1+|`, "cn1", "", xcat.ErrInvalid},
		{`|(a)\1|x|`, "aa", "", xcat.ErrInvalid}, // back-reference: not RE2
		{`|(\D+)|($1+1)|`, "cn", "", xcat.ErrInvalid},
		{`10.0.0.1`, "cn1", "", xcat.ErrInvalid},
	}
	for _, c := range cases {
		got, err := xcat.Eval(c.v, c.node)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("Eval(%q, %s) = %q, %v; want %v", c.v, c.node, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Eval(%q, %s) = %q, %v; want %q", c.v, c.node, got, err, c.want)
		}
	}
}

// FuzzEval: any value and node name either evaluate or fail with one of
// the package's errors; nothing panics or runs away.
func FuzzEval(f *testing.F) {
	for _, s := range []string{`|\D+(\d+)|10.0.0.($1+0)|`, `|\D+(\d+)|sn(($1%3)+1)|`, `/\z/-bmc/`, `|(\d+)|(((($1))))|`, `|x|(1/0)|`, `|(.*)|${1}$1|`} {
		f.Add(s, "cn001")
	}
	f.Fuzz(func(t *testing.T, v, node string) {
		out, err := xcat.Eval(v, node)
		if err != nil {
			if !errors.Is(err, xcat.ErrInvalid) && !errors.Is(err, xcat.ErrNoMatch) {
				t.Fatalf("Eval(%q, %q): error %v is neither ErrInvalid nor ErrNoMatch", v, node, err)
			}
			return
		}
		if len(out) > 64*(len(v)+len(node))+64 {
			t.Fatalf("Eval(%q, %q) grew to %d bytes", v, node, len(out))
		}
		if !xcat.IsRegex(v) {
			t.Fatalf("Eval accepted %q, which IsRegex refuses", v)
		}
		_ = strings.TrimSpace(out)
	})
}
