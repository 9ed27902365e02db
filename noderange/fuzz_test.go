package noderange

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

// seedExprs are seeds shared by the fuzz targets.
var seedExprs = []string{
	"cn001", "cn001,cn002", "cn[001-010]", "rack[1-2]node[01-04]", "cn001-cn010",
	"cn001:cn010", "cn01+3", "all,-compute", "gpu@rack1", "(sn1,gpu)@rack3",
	"/sn.*", "/cn0{2}[1-3]{1,1},sn1", "^racks", "5", "10-12", "ib-cn01-ib-cn04",
	"cn[001-003,010,099:100]", "all,-(rack1,-cn001)", "a@-b", "cn[1-", "nodehm.mgt==ipmi",
	"", " , ", "((((cn1))))", `/\Qcn`, "/[[:digit:]]", "cn1-cn3", "-cn1,all", "^bad,^loop",
}

func isPackageError(err error) bool {
	for _, e := range []error{ErrSyntax, ErrUnknown, ErrEmpty, ErrTooLarge, ErrFile} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func FuzzParse(f *testing.F) {
	for _, s := range seedExprs {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		r, err := Parse(expr)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Parse(%q): error %v matches no sentinel", expr, err)
			}
			var se *SyntaxError
			if errors.As(err, &se) && (se.Pos < 0 || se.Pos > len(expr) || se.Expr != expr) {
				t.Fatalf("Parse(%q): bad SyntaxError %+v", expr, se)
			}
			_ = err.Error()
			return
		}
		if r.String() != expr {
			t.Fatalf("String() = %q, want %q", r.String(), expr)
		}
	})
}

func fuzzOpener() Option {
	files := fstest.MapFS{
		"racks": {Data: []byte("cn001-cn003 # x\n-cn002\nrack3@gpu\n")},
		"bad":   {Data: []byte("cn[3-1]\n")},
		"loop":  {Data: []byte("^racks\n")},
	}
	return WithFileOpener(func(name string) (io.ReadCloser, error) { return files.Open(name) })
}

func FuzzExpand(f *testing.F) {
	for _, s := range seedExprs {
		f.Add(s)
	}
	u := testUniverse(f)
	opts := []Option{WithLimit(5000), fuzzOpener()}
	f.Fuzz(func(t *testing.T, expr string) {
		got, err := Expand(expr, u, opts...)
		if err != nil {
			if got != nil {
				t.Fatalf("Expand(%q) returned %q with error %v", expr, got, err)
			}
			if !isPackageError(err) {
				t.Fatalf("Expand(%q): error %v matches no sentinel", expr, err)
			}
			_ = err.Error()
			return
		}
		if len(got) == 0 {
			t.Fatalf("Expand(%q) returned no names and no error", expr)
		}
		for i, n := range got {
			if _, ok := u.Lookup(n); !ok {
				t.Fatalf("Expand(%q) returned %q, not a node", expr, n)
			}
			if i > 0 && Compare(got[i-1], n) >= 0 {
				t.Fatalf("Expand(%q) not sorted or not unique at %q, %q", expr, got[i-1], n)
			}
		}
		back, err := Expand(Compress(got), u)
		if err != nil {
			t.Fatalf("Expand(Compress(Expand(%q))) = Expand(%q): %v", expr, Compress(got), err)
		}
		if diff := cmp.Diff(got, back); diff != "" {
			t.Fatalf("Compress round trip of %q (-want +got):\n%s", expr, diff)
		}
	})
}

// FuzzCompress: for any set of valid names, Compress gives a noderange
// that Expand turns back into the same set.
func FuzzCompress(f *testing.F) {
	f.Add("cn001,cn002,cn003,sn1")
	f.Add("cn1,cn01,cn2,cn02,cn10")
	f.Add("cn1-cn3,cn1-cn4,10,all,1,2")
	f.Add("a9,a10,a010,a0010,a011")
	f.Fuzz(func(t *testing.T, list string) {
		var names []string
		for n := range strings.SplitSeq(list, ",") {
			if ValidateName(n) == nil {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			return
		}
		u, err := NewStatic(names, nil)
		if err != nil {
			t.Fatal(err)
		}
		expr := Compress(names)
		got, err := Expand(expr, u)
		if err != nil {
			t.Fatalf("Expand(Compress(%q)) = Expand(%q): %v", names, expr, err)
		}
		want := slices.Clone(u.Nodes())
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("Expand(%q) (-want +got):\n%s", expr, diff)
		}
	})
}
