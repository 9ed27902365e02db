package noderange

import (
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

func TestExpand(t *testing.T) {
	u := testUniverse(t)
	files := fstest.MapFS{
		"racks": {Data: []byte("# racks of the lab\n\ncn001-cn003   # first three\n  rack3@gpu\n-cn002\r\n/sn[12]\n")},
		"bad":   {Data: []byte("cn001\ncn[3-1]\n")},
		"loop":  {Data: []byte("cn001\n^racks\n")},
	}
	opener := WithFileOpener(func(name string) (io.ReadCloser, error) { return files.Open(name) })
	tests := map[string]struct {
		expr string
		opts []Option
		want []string
	}{
		"single node":              {expr: "cn001", want: []string{"cn001"}},
		"comma list sorted":        {expr: "sn10,cn002,sn2", want: []string{"cn002", "sn2", "sn10"}},
		"duplicates dropped":       {expr: "cn001,cn001,cn[001-002]", want: []string{"cn001", "cn002"}},
		"spaces around terms":      {expr: " cn001 , cn002 @ compute ", want: []string{"cn001", "cn002"}},
		"bracket padded":           {expr: "cn[001-005]", want: seq("cn%03d", 1, 5)},
		"bracket across widths":    {expr: "cn[098-101]", want: seq("cn%03d", 98, 101)},
		"bracket unpadded":         {expr: "sn[1-2]", want: []string{"sn1", "sn2"}},
		"bracket item list":        {expr: "cn[001-003,010,099:100]", want: []string{"cn001", "cn002", "cn003", "cn010", "cn099", "cn100"}},
		"bracket single":           {expr: "cn[007]", want: []string{"cn007"}},
		"bracket equal ends":       {expr: "cn[007-007]", want: []string{"cn007"}},
		"multiple brackets":        {expr: "rack[1-2]node[01-04]", want: cat(seq("rack1node%02d", 1, 4), seq("rack2node%02d", 1, 4))},
		"bracket in the middle":    {expr: "cn[01-04].ib", want: seq("cn%02d.ib", 1, 4)},
		"hyphen range":             {expr: "cn001-cn005", want: seq("cn%03d", 1, 5)},
		"hyphen range crosses 100": {expr: "cn098-cn102", want: seq("cn%03d", 98, 102)},
		"hyphen same ends":         {expr: "cn005-cn005", want: []string{"cn005"}},
		"hyphen range suffix":      {expr: "cn01.ib-cn03.ib", want: seq("cn%02d.ib", 1, 3)},
		"hyphen middle dash":       {expr: "ib-cn01-ib-cn03", want: seq("ib-cn%02d", 1, 3)},
		"node named like a range":  {expr: "cn1-cn3", want: []string{"cn1-cn3"}},
		"colon range":              {expr: "cn001:cn003", want: seq("cn%03d", 1, 3)},
		"colon with dashes":        {expr: "ib-cn01:ib-cn02", want: seq("ib-cn%02d", 1, 2)},
		"increment":                {expr: "cn001+3", want: seq("cn%03d", 1, 4)},
		"increment zero":           {expr: "cn001+0", want: []string{"cn001"}},
		"increment before domain":  {expr: "cn01.ib+2", want: seq("cn%02d.ib", 1, 3)},
		"increment grows width":    {expr: "cn099+2", want: seq("cn%03d", 99, 101)},
		"group":                    {expr: "svc", want: []string{"sn1", "sn2", "sn10"}},
		"group range":              {expr: "rack2-rack3", want: seq("cn%03d", 41, 120)},
		"group bracket":            {expr: "rack[1,3]", want: cat(seq("cn%03d", 1, 40), seq("cn%03d", 81, 120))},
		"empty group and a node":   {expr: "empty,cn001", want: []string{"cn001"}},
		"all":                      {expr: "all", want: sortedUnique(testNodes())},
		"all less groups":          {expr: "all,-compute,-rack3,-rack[1-2]node[01-04],-ib-cn01-ib-cn04,-cn[01-04].ib", want: []string{"10", "cn1-cn3", "login", "node5", "node11", "node12", "sn1", "sn2", "sn10"}},
		"exclusion any order":      {expr: "-cn003,cn001-cn004", want: []string{"cn001", "cn002", "cn004"}},
		"exclusion wins":           {expr: "cn001-cn010,-cn003-cn005,cn004", want: []string{"cn001", "cn002", "cn006", "cn007", "cn008", "cn009", "cn010"}},
		"exclusion of a group":     {expr: "rack1,-gpu", want: seq("cn%03d", 11, 40)},
		"intersection":             {expr: "gpu@rack1", want: seq("cn%03d", 1, 10)},
		"intersection chain":       {expr: "compute@rack1@cn[005-050]", want: seq("cn%03d", 5, 40)},
		"intersection binds tight": {expr: "sn1,gpu@rack3", want: []string{"cn101", "sn1"}},
		"excluded intersection":    {expr: "rack1,-gpu@rack1", want: seq("cn%03d", 11, 40)},
		"parentheses":              {expr: "(sn1,gpu)@rack3", want: []string{"cn101"}},
		"nested parentheses":       {expr: "((gpu,svc)@(rack3,sn[1-2]))", want: []string{"cn101", "sn1", "sn2"}},
		"exclusion inside parens":  {expr: "(gpu,-cn001),cn001", want: []string{"cn001", "cn002", "cn003", "cn004", "cn005", "cn006", "cn007", "cn008", "cn009", "cn010", "cn101"}},
		"exclusion of parens":      {expr: "gpu,-(rack1,-cn001)", want: []string{"cn001", "cn101"}},
		"intersection with parens": {expr: "rack1@(gpu,-cn002)", want: cat([]string{"cn001"}, seq("cn%03d", 3, 10))},
		"regex":                    {expr: "/sn.*", want: []string{"sn1", "sn2", "sn10"}},
		"regex anchored":           {expr: "/cn00[1-3]", want: seq("cn%03d", 1, 3)},
		"regex anchored end":       {expr: "/sn1", want: []string{"sn1"}},
		"regex with braces comma":  {expr: "/cn0{2}[1-3]{1,1},sn1", want: []string{"cn001", "cn002", "cn003", "sn1"}},
		"regex with alternation":   {expr: "/(sn1|login)@all", want: []string{"login", "sn1"}},
		"regex in parens":          {expr: "(/sn1.*)", want: []string{"sn1", "sn10"}},
		"regex char class":         {expr: "/sn[[:digit:]]", want: []string{"sn1", "sn2"}},
		"regex matching nothing":   {expr: "/zz.*,cn001", want: []string{"cn001"}},
		"regex exclusion":          {expr: "svc,-/sn1.*", want: []string{"sn2"}},
		"bare number prefix":       {expr: "5", want: []string{"node5"}},
		"bare number range":        {expr: "10-12", want: []string{"10", "node11", "node12"}},
		"bare number increment":    {expr: "11+1", want: []string{"node11", "node12"}},
		"custom numeric prefix":    {expr: "1-2,-sn2", opts: []Option{WithNumericPrefix("sn", "")}, want: []string{"sn1"}},
		"numeric prefix suffix":    {expr: "[1-2]", opts: []Option{WithNumericPrefix("cn0", ".ib")}, want: []string{"cn01.ib", "cn02.ib"}},
		"node named 10":            {expr: "10", want: []string{"10"}},
		"limit reached exactly":    {expr: "cn[001-005],cn[006-010]", opts: []Option{WithLimit(10)}, want: seq("cn%03d", 1, 10)},
		"limit ignores groups":     {expr: "compute", opts: []Option{WithLimit(1)}, want: seq("cn%03d", 1, 100)},
		"file":                     {expr: "^racks", opts: []Option{opener}, want: []string{"cn001", "cn003", "cn101", "sn1", "sn2"}},
		"file twice and excluded":  {expr: "^racks,sn10,-^racks", opts: []Option{opener}, want: []string{"sn10"}},
		"file in intersection":     {expr: "rack1@^racks", opts: []Option{opener}, want: []string{"cn001", "cn003"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Expand(tc.expr, u, tc.opts...)
			if err != nil {
				t.Fatalf("Expand(%q): %v", tc.expr, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Expand(%q) mismatch (-want +got):\n%s", tc.expr, diff)
			}
		})
	}
}

func TestExpandErrors(t *testing.T) {
	u := testUniverse(t)
	files := fstest.MapFS{
		"bad":   {Data: []byte("cn001\n\ncn[3-1]\n")},
		"loop":  {Data: []byte("cn001\n^bad # nested\n")},
		"big":   {Data: make([]byte, MaxFileSize+1)},
		"ghost": {Data: []byte("cn001\nghost1\n")},
	}
	opener := WithFileOpener(func(name string) (io.ReadCloser, error) { return files.Open(name) })
	tests := map[string]struct {
		expr    string
		opts    []Option
		wantErr error
		wantMsg string // the whole message
	}{
		"unknown names listed": {
			expr: "foo,cn999,cn001,bar,foo", wantErr: ErrUnknown,
			wantMsg: "noderange: unknown nodes or groups: bar, cn999, foo",
		},
		"unknown in a range": {
			expr: "sn[1-10]", wantErr: ErrUnknown,
			wantMsg: "noderange: unknown nodes or groups: sn3, sn4, sn5, sn6, sn7, sn8, sn9",
		},
		"unknown excluded name": {
			expr: "all,-cn0005", wantErr: ErrUnknown,
			wantMsg: "noderange: unknown nodes or groups: cn0005",
		},
		"unknown in intersection": {
			expr: "gpu@rack9", wantErr: ErrUnknown,
			wantMsg: "noderange: unknown nodes or groups: rack9",
		},
		"unknown list truncated": {
			expr: "x[01-25]", wantErr: ErrUnknown,
			wantMsg: "noderange: unknown nodes or groups: x01, x02, x03, x04, x05, x06, x07, x08, x09, x10, x11, x12, x13, x14, x15, x16, x17, x18, x19, x20 and 5 more",
		},
		"hyphen not a range": {
			expr: "cn001-sn002", wantErr: ErrUnknown,
			wantMsg: "noderange: unknown nodes or groups: cn001-sn002",
		},
		"bare number without prefix": {
			expr: "5", opts: []Option{WithNumericPrefix("", "")}, wantErr: ErrUnknown,
			wantMsg: "noderange: unknown nodes or groups: 5",
		},
		"bare number with prefix unknown": {
			expr: "7", wantErr: ErrUnknown,
			wantMsg: "noderange: unknown nodes or groups: node7",
		},
		"reversed hyphen range": {
			expr: "cn001,cn010-cn002", wantErr: ErrSyntax,
			wantMsg: `noderange: syntax error at column 7 of "cn001,cn010-cn002": "cn010-cn002" is not a node or group, and as a range: reversed range: 010 is greater than 002; write the smaller number first`,
		},
		"empty result": {
			expr: "gpu,-compute,-cn101", wantErr: ErrEmpty,
			wantMsg: `noderange: no nodes selected by "gpu,-compute,-cn101"`,
		},
		"empty group": {
			expr: "empty", wantErr: ErrEmpty,
			wantMsg: `noderange: no nodes selected by "empty"`,
		},
		"empty intersection": {
			expr: "rack1@rack2", wantErr: ErrEmpty,
			wantMsg: `noderange: no nodes selected by "rack1@rack2"`,
		},
		"regex matching nothing": {
			expr: "/cn00", wantErr: ErrEmpty,
			wantMsg: `noderange: no nodes selected by "/cn00"`,
		},
		"too large range": {
			expr: "cn[1-2000000]", wantErr: ErrTooLarge,
			wantMsg: `noderange: too large: "cn[1-2000000]" would expand to 2000000 names; the limit is 1000000 (see WithLimit)`,
		},
		"too large product": {
			expr: "a[1-999999999999999999]b[1-999999999999999999]", wantErr: ErrTooLarge,
			wantMsg: `noderange: too large: "a[1-999999999999999999]b[1-999999999999999999]" would expand to more than 18446744073709551615 names; the limit is 1000000 (see WithLimit)`,
		},
		"too large in sum": {
			expr: "cn[001-006],cn[007-012]", opts: []Option{WithLimit(10)}, wantErr: ErrTooLarge,
			wantMsg: `noderange: too large: with "cn[007-012]" the ranges of the noderange would expand to 12 names; the limit is 10 (see WithLimit)`,
		},
		"too large hyphen": {
			expr: "cn1-cn2000000", wantErr: ErrTooLarge,
			wantMsg: `noderange: too large: "cn1-cn2000000" would expand to 2000000 names; the limit is 1000000 (see WithLimit)`,
		},
		"files not enabled": {
			expr: "^/tmp/nodes", wantErr: ErrFile,
			wantMsg: `noderange: node list file: ^/tmp/nodes: reading node names from files is not enabled here; list the nodes instead`,
		},
		"file missing": {
			expr: "^nothere", opts: []Option{opener}, wantErr: fs.ErrNotExist,
			wantMsg: `noderange: node list file: ^nothere: open nothere: file does not exist`,
		},
		"file syntax error": {
			expr: "^bad", opts: []Option{opener}, wantErr: ErrSyntax,
			wantMsg: `noderange: syntax error in bad line 3 at column 4 of "cn[3-1]": reversed range "3-1": 3 is greater than 1; write the smaller number first`,
		},
		"file names a file": {
			expr: "^loop", opts: []Option{opener}, wantErr: ErrSyntax,
			wantMsg: `noderange: syntax error in loop line 2 at column 1 of "^bad ": a node list file may not name another file with '^'`,
		},
		"file too big": {
			expr: "^big", opts: []Option{opener}, wantErr: ErrTooLarge,
			wantMsg: `noderange: too large: ^big is larger than 16777216 bytes`,
		},
		"file unknown names": {
			expr: "^ghost", opts: []Option{opener}, wantErr: ErrUnknown,
			wantMsg: `noderange: unknown nodes or groups: ghost1`,
		},
		"syntax error from Parse": {
			expr: "cn[1-", wantErr: ErrSyntax,
			wantMsg: `noderange: syntax error at column 3 of "cn[1-": '[' is never closed: add ']', as in cn[001-100]`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Expand(tc.expr, u, tc.opts...)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Expand(%q) = %q, %v; want error %v", tc.expr, got, err, tc.wantErr)
			}
			if got != nil {
				t.Errorf("Expand(%q) returned names %q with the error", tc.expr, got)
			}
			if diff := cmp.Diff(tc.wantMsg, err.Error()); diff != "" {
				t.Errorf("message mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnknownErrorNames(t *testing.T) {
	_, err := Expand("sn[1-5],foo,-sn4,foo", testUniverse(t))
	var ue *UnknownError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v is not an *UnknownError", err)
	}
	if diff := cmp.Diff([]string{"foo", "sn3", "sn4", "sn5"}, ue.Names); diff != "" {
		t.Errorf("Names mismatch (-want +got):\n%s", diff)
	}
}

func TestFileOpenedOnce(t *testing.T) {
	opens := 0
	open := WithFileOpener(func(name string) (io.ReadCloser, error) {
		opens++
		return io.NopCloser(strings.NewReader("cn001\ncn002\n")), nil
	})
	got, err := Expand("^f,^f,^f@^f", testUniverse(t), open)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"cn001", "cn002"}, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	if opens != 1 {
		t.Errorf("the file was opened %d times, want 1", opens)
	}
}

// closeErr is a file whose Close fails.
type closeErr struct{ io.Reader }

func (closeErr) Close() error { return errors.New("disk on fire") }

func TestFileCloseError(t *testing.T) {
	open := WithFileOpener(func(string) (io.ReadCloser, error) { return closeErr{strings.NewReader("cn001")}, nil })
	_, err := Expand("^f", testUniverse(t), open)
	if !errors.Is(err, ErrFile) || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("err = %v, want ErrFile with the Close error", err)
	}
}

func TestZeroRange(t *testing.T) {
	var r Range
	if _, err := r.Expand(testUniverse(t)); !errors.Is(err, ErrEmpty) {
		t.Errorf("zero Range: err = %v, want ErrEmpty", err)
	}
}

// TestAllGroupAndNode: a node or group called all wins over the built-in.
func TestAllGroupAndNode(t *testing.T) {
	tests := map[string]struct {
		nodes  []string
		groups map[string][]string
		want   []string
	}{
		"built-in":    {nodes: []string{"a1", "a2"}, want: []string{"a1", "a2"}},
		"group all":   {nodes: []string{"a1", "a2"}, groups: map[string][]string{"all": {"a2"}}, want: []string{"a2"}},
		"node all":    {nodes: []string{"a1", "all"}, groups: map[string][]string{"all": {"a1"}}, want: []string{"all"}},
		"empty group": {nodes: []string{"a1"}, groups: map[string][]string{"all": nil, "x": {"a1"}}, want: []string{"a1"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			u, err := NewStatic(tc.nodes, tc.groups)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Expand("all,x", u)
			if tc.groups["x"] == nil {
				got, err = Expand("all", u)
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// unsortedUniverse returns its nodes out of natural order, as a careless
// database-backed Universe might.
type unsortedUniverse struct{ nodes []string }

func (u unsortedUniverse) Nodes() []string { return u.nodes }
func (u unsortedUniverse) Lookup(name string) (int, bool) {
	for i, n := range u.nodes {
		if n == name {
			return i, true
		}
	}
	return 0, false
}
func (u unsortedUniverse) Group(name string) ([]string, bool) {
	if name == "odd" {
		return []string{"n1", "ghost"}, true
	}
	return nil, false
}

func TestUnsortedUniverse(t *testing.T) {
	u := unsortedUniverse{nodes: []string{"n10", "n2", "n1"}}
	got, err := Expand("all", u)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"n1", "n2", "n10"}, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	// A group member that is not a node is reported, not dropped.
	if _, err := Expand("odd", u); !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "ghost") {
		t.Errorf("group with a non-node member: err = %v, want ErrUnknown naming ghost", err)
	}
}

// TestConcurrentExpand: a Range and a Static are shared by goroutines (run
// with -race).
func TestConcurrentExpand(t *testing.T) {
	u := testUniverse(t)
	r, err := Parse("rack1@gpu,cn[050-060],-cn055,/sn.*")
	if err != nil {
		t.Fatal(err)
	}
	want, err := r.Expand(u)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for range 50 {
				got, err := r.Expand(u)
				if err == nil && !cmp.Equal(want, got) {
					err = errors.New(cmp.Diff(want, got))
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
