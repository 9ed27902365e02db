package noderange

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSyntaxErrors(t *testing.T) {
	tests := map[string]struct {
		expr string
		pos  int    // byte offset of the offending text
		text string // the offending text
		msg  string // a part of the explanation
	}{
		"double comma":            {"cn1,,cn2", 4, ",", "empty term before \",\""},
		"leading comma":           {",cn1", 0, ",", "empty term"},
		"trailing comma":          {"cn1,", 4, "", "empty term at the end"},
		"trailing at":             {"cn1@", 4, "", "empty term at the end"},
		"leading at":              {"@cn1", 0, "@", "empty term"},
		"lone dash":               {"-", 1, "", "empty term at the end"},
		"dash then comma":         {"all,-,cn1", 5, ",", "empty term"},
		"empty parens":            {"()", 1, ")", "empty term"},
		"unclosed bracket":        {"cn[1-", 2, "[1-", "'[' is never closed"},
		"stray close bracket":     {"cn]", 2, "]", "']' without a matching '['"},
		"letter in bracket":       {"cn[1-a]", 5, "a", "not allowed inside [...]"},
		"nested bracket":          {"cn[1[2]]", 4, "[", "not allowed inside [...]"},
		"empty bracket":           {"cn[]", 2, "[]", "empty brackets"},
		"reversed bracket":        {"cn[10-1]", 3, "10-1", "reversed range"},
		"padding mismatch":        {"cn[01-1]", 3, "01-1", "different zero padding"},
		"open bracket item":       {"cn[1-]", 3, "1-", "not a number or a range"},
		"open bracket start":      {"cn[-3]", 3, "-3", "not a number or a range"},
		"three part item":         {"cn[1-2-3]", 3, "1-2-3", "not a number or a range"},
		"empty bracket item":      {"cn[1,,2]", 5, ",", "empty item inside [...]"},
		"bracket number too long": {"cn[1-1234567890123456789]", 3, "1-1234567890123456789", "at most 18"},
		"unclosed paren":          {"(cn1,cn2", 0, "(", "'(' is never closed"},
		"stray close paren":       {"cn1)", 3, ")", "')' without a matching '('"},
		"exclusion after at":      {"a@-b", 2, "-", "may only start a term"},
		"double exclusion":        {"--a", 1, "-", "may only start a term"},
		"space inside name":       {"cn 1", 3, "1", "separate terms with ','"},
		"two colons":              {"cn1:cn2:cn3", 7, ":", "only one \":\""},
		"two plus":                {"cn1+1+1", 5, "+", "only one \"+\""},
		"colon mismatch":          {"cn1:sn2", 0, "cn1:sn2", "the two sides of ':'"},
		"colon reversed":          {"cn5:cn1", 0, "cn5:cn1", "reversed range: 5 is greater than 1"},
		"colon one side":          {"cn1:", 3, "cn1:", "on both sides of ':'"},
		"colon padding":           {"cn01:cn1", 0, "cn01:cn1", "different zero padding"},
		"plus without count":      {"cn1+", 3, "+", "followed by a count"},
		"plus with letters":       {"cn1+x", 3, "+x", "'+' must be followed by a count"},
		"plus without number":     {"cn+3", 0, "cn+3", "ending in a number"},
		"plus number not at end":  {"cn1x+3", 0, "cn1x+3", "ending in a number"},
		"plus too far":            {"cn999999999999999999+1", 0, "cn999999999999999999+1", "at most 18"},
		"brackets and colon":      {"cn[1-2]:cn3", 7, ":", "either [...] or \":\""},
		"brackets and plus":       {"cn[1-2]+3", 7, "+", "either [...] or \"+\""},
		"colon and plus":          {"cn1:cn3+2", 7, "+", "either ':' or '+'"},
		"empty regex":             {"/", 0, "/", "empty regular expression"},
		"bad regex":               {"/cn[", 0, "/cn[", "invalid regular expression"},
		"regex bad paren":         {"/(cn", 0, "/(cn", "missing closing )"},
		"regex trailing escape":   {`/cn\`, 0, `/cn\`, "invalid regular expression"},
		"regex quote escape":      {`/\Qcn`, -1, "", ""}, // valid: \Q quotes to the end
		"regex unbalanced close":  {"/cn)", 3, ")", "')' without a matching '('"},
		"empty file":              {"^", 0, "^", "followed by the path"},
		"attribute selection":     {"nodehm.mgt==ipmi", 10, "nodehm.mgt=", "attribute selections"},
		"regex attribute":         {"groups=~gpu", 6, "groups=", "attribute selections"},
		"dollar":                  {"cn$1", 2, "$", "not allowed in a name"},
		"star":                    {"cn*", 2, "*", "not allowed in a name"},
		"non ascii":               {"cné", 2, "é", "not allowed in a name"},
		"invalid utf8":            {"cn\xff", 2, "\xff", "not allowed in a name"},
		"paren in name":           {"cn(1)", 2, "(", "may only start a term"},
		"slash in name":           {"cn/1", 2, "/", "may only start a term"},
		"deep parens":             {strings.Repeat("(", maxDepth+1) + "cn1" + strings.Repeat(")", maxDepth+1), maxDepth, "(", "nested more than"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r, err := Parse(tc.expr)
			if tc.pos < 0 {
				if err != nil {
					t.Fatalf("Parse(%q): %v", tc.expr, err)
				}
				return
			}
			var se *SyntaxError
			if !errors.As(err, &se) || !errors.Is(err, ErrSyntax) {
				t.Fatalf("Parse(%q) = %v, %v; want a *SyntaxError", tc.expr, r, err)
			}
			got := struct {
				Pos  int
				Text string
			}{se.Pos, se.Text}
			want := struct {
				Pos  int
				Text string
			}{tc.pos, tc.text}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Parse(%q) position (-want +got):\n%s\n%v", tc.expr, diff, err)
			}
			if !strings.Contains(se.Msg, tc.msg) {
				t.Errorf("Parse(%q) message %q does not contain %q", tc.expr, se.Msg, tc.msg)
			}
			if se.Expr != tc.expr {
				t.Errorf("Expr = %q, want %q", se.Expr, tc.expr)
			}
		})
	}
}

func TestParseOtherErrors(t *testing.T) {
	tests := map[string]struct {
		expr string
		want error
	}{
		"empty":     {"", ErrEmpty},
		"blank":     {" \t\n", ErrEmpty},
		"too long":  {strings.Repeat("a", MaxExprLen+1), ErrTooLarge},
		"just long": {strings.Repeat("a", MaxExprLen), nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(tc.expr)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if errors.Is(err, ErrSyntax) {
				t.Errorf("err = %v also matches ErrSyntax", err)
			}
		})
	}
}

func TestParseKeepsText(t *testing.T) {
	for _, expr := range []string{"cn001", " all , -cn[001-005] @ (gpu,-/sn.*) ", "^/tmp/x,cn01+3"} {
		r, err := Parse(expr)
		if err != nil {
			t.Fatalf("Parse(%q): %v", expr, err)
		}
		if r.String() != expr {
			t.Errorf("String() = %q, want %q", r.String(), expr)
		}
	}
}

// TestRangeReuse: one parsed Range expands against different universes.
func TestRangeReuse(t *testing.T) {
	r, err := Parse("cn[1-3],-cn2")
	if err != nil {
		t.Fatal(err)
	}
	small, err := NewStatic([]string{"cn1", "cn2", "cn3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		got, err := r.Expand(small)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"cn1", "cn3"}, got); diff != "" {
			t.Errorf("mismatch (-want +got):\n%s", diff)
		}
	}
	if _, err := r.Expand(testUniverse(t)); !errors.Is(err, ErrUnknown) {
		t.Errorf("against another universe: err = %v, want ErrUnknown", err)
	}
}

func TestSyntaxErrorMessage(t *testing.T) {
	long := strings.Repeat("cn001,", 30) + "cn[9-1]," + strings.Repeat("cn002,", 30) + "x"
	tests := map[string]struct {
		expr string
		want string
	}{
		"short": {
			expr: "cn1,,cn2",
			want: `noderange: syntax error at column 5 of "cn1,,cn2": empty term before ",": write a node, group or range there, or remove the separator`,
		},
		"long expression is cut around the error": {
			expr: long,
			want: `noderange: syntax error at column 184 of ..."01,cn001,cn001,cn001,cn001,cn[9-1],cn002,cn002,cn002,cn002,c"...: reversed range "9-1": 9 is greater than 1; write the smaller number first`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(tc.expr)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", tc.expr)
			}
			if diff := cmp.Diff(tc.want, err.Error()); diff != "" {
				t.Errorf("message mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
