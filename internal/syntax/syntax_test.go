package syntax_test

import (
	"strings"
	"testing"

	"github.com/mnpool/mnpool/internal/syntax"
)

func TestHostLabel(t *testing.T) {
	for s, want := range map[string]bool{
		"cn001": true, "a": true, "A-9": true, strings.Repeat("a", 63): true,
		"": false, "-a": false, "a-": false, "a.b": false, "a_b": false, strings.Repeat("a", 64): false, "a\n": false,
	} {
		if got := syntax.HostLabel(s); got != want {
			t.Errorf("HostLabel(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestConfPath(t *testing.T) {
	for s, want := range map[string]bool{
		"/": true, "/var/lib/named": true, "/etc/chrony/c+d_e-1.conf": true,
		"": false, "rel/path": false, "/a b": false, "/a\"b": false, "/a;b": false, "/a\nb": false, "/a{b}": false,
	} {
		if got := syntax.ConfPath(s); got != want {
			t.Errorf("ConfPath(%q) = %v, want %v", s, got, want)
		}
	}
}
