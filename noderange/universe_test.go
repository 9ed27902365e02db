package noderange

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidateName(t *testing.T) {
	tests := map[string]struct {
		name string
		ok   bool
	}{
		"plain":         {"cn001", true},
		"dots dashes":   {"cn-01.ib_0", true},
		"digits":        {"10", true},
		"all":           {"all", true},
		"range look":    {"cn1-cn3", true},
		"longest":       {strings.Repeat("a", MaxNameLen), true},
		"empty":         {"", false},
		"too long":      {strings.Repeat("a", MaxNameLen+1), false},
		"leading dash":  {"-cn1", false},
		"space":         {"cn 1", false},
		"comma":         {"cn1,cn2", false},
		"bracket":       {"cn[1]", false},
		"colon":         {"cn1:cn2", false},
		"plus":          {"cn1+1", false},
		"at":            {"cn@x", false},
		"slash":         {"/cn", false},
		"caret":         {"^cn", false},
		"shell":         {"cn;rm", false},
		"non ascii":     {"cné", false},
		"newline":       {"cn\n", false},
		"parenthesised": {"(cn)", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := ValidateName(tc.name)
			if tc.ok != (err == nil) {
				t.Fatalf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidName) {
				t.Errorf("error %v does not match ErrInvalidName", err)
			}
		})
	}
}

func TestNewStatic(t *testing.T) {
	u, err := NewStatic([]string{"cn10", "cn2", "cn2", "cn1"}, map[string][]string{
		"b": {"cn10", "cn1", "cn1"},
		"a": nil,
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"cn1", "cn2", "cn10"}, u.Nodes()); diff != "" {
		t.Errorf("Nodes (-want +got):\n%s", diff)
	}
	for i, n := range u.Nodes() {
		if j, ok := u.Lookup(n); !ok || j != i {
			t.Errorf("Lookup(%q) = %d, %v; want %d, true", n, j, ok, i)
		}
	}
	if _, ok := u.Lookup("cn3"); ok {
		t.Error("Lookup(cn3) found a node that does not exist")
	}
	if m, ok := u.Group("b"); !ok || !cmp.Equal(m, []string{"cn1", "cn10"}) {
		t.Errorf("Group(b) = %q, %v", m, ok)
	}
	if m, ok := u.Group("a"); !ok || len(m) != 0 {
		t.Errorf("Group(a) = %q, %v; want empty, true", m, ok)
	}
	if _, ok := u.Group("c"); ok {
		t.Error("Group(c) found a group that does not exist")
	}
	if diff := cmp.Diff([]string{"a", "b"}, u.Groups()); diff != "" {
		t.Errorf("Groups (-want +got):\n%s", diff)
	}
}

func TestNewStaticCopies(t *testing.T) {
	nodes := []string{"cn1", "cn2"}
	members := []string{"cn1"}
	u, err := NewStatic(nodes, map[string][]string{"g": members})
	if err != nil {
		t.Fatal(err)
	}
	nodes[0], members[0] = "zz", "zz"
	if got, _ := u.Group("g"); got[0] != "cn1" || u.Nodes()[0] != "cn1" {
		t.Errorf("NewStatic kept the caller's slices: nodes %q group %q", u.Nodes(), got)
	}
}

func TestNewStaticErrors(t *testing.T) {
	tests := map[string]struct {
		nodes   []string
		groups  map[string][]string
		wantErr error
		wantMsg string
	}{
		"bad node": {
			nodes: []string{"cn1", "cn 2"}, wantErr: ErrInvalidName,
			wantMsg: `noderange: invalid node or group name: "cn 2" has " " at byte 3; names contain 1 to 255 letters, digits, '-', '_' and '.', and do not start with '-'`,
		},
		"bad group": {
			nodes: []string{"cn1"}, groups: map[string][]string{"a,b": {"cn1"}}, wantErr: ErrInvalidName,
			wantMsg: `group: noderange: invalid node or group name: "a,b" has "," at byte 2; names contain 1 to 255 letters, digits, '-', '_' and '.', and do not start with '-'`,
		},
		"member not a node": {
			nodes: []string{"cn1"}, groups: map[string][]string{"g": {"cn1", "cn3", "cn2"}}, wantErr: ErrUnknown,
			wantMsg: `group "g" has members that are not nodes: noderange: unknown nodes or groups: cn2, cn3`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			u, err := NewStatic(tc.nodes, tc.groups)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("NewStatic = %v, %v; want %v", u, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.wantMsg, err.Error()); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}
}
