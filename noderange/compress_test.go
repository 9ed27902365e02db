package noderange

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCompress(t *testing.T) {
	tests := map[string]struct {
		names []string
		want  string
	}{
		"nothing":             {nil, ""},
		"one":                 {[]string{"cn001"}, "cn001"},
		"no digits":           {[]string{"login", "head"}, "head,login"},
		"padded run":          {seq("cn%03d", 1, 100), "cn[001-100]"},
		"unsorted input":      {[]string{"cn3", "cn1", "cn2"}, "cn[1-3]"},
		"duplicates":          {[]string{"cn1", "cn1", "cn2"}, "cn[1-2]"},
		"gaps":                {[]string{"cn1", "cn2", "cn3", "cn5", "cn7", "cn8"}, "cn[1-3,5,7-8]"},
		"two":                 {[]string{"cn1", "cn2"}, "cn[1-2]"},
		"two apart":           {[]string{"cn1", "cn9"}, "cn[1,9]"},
		"natural width grows": {[]string{"cn8", "cn9", "cn10", "cn11"}, "cn[8-11]"},
		"padded width grows":  {seq("cn%03d", 98, 101), "cn[098-101]"},
		"mixed padding":       {[]string{"cn1", "cn01", "cn2", "cn02", "cn3"}, "cn[01-02,1-3]"},
		"padded then natural": {[]string{"cn09", "cn10", "cn8"}, "cn[8,09-10]"},
		"suffix":              {seq("cn%02d.ib", 1, 4), "cn[01-04].ib"},
		"last number varies":  {cat(seq("rack1node%02d", 1, 4), seq("rack2node%02d", 1, 2)), "rack1node[01-04],rack2node[01-02]"},
		"families sorted":     {[]string{"sn1", "cn10", "sn2", "cn9", "login"}, "cn[9-10],login,sn[1-2]"},
		"only digits":         {[]string{"1", "2", "3"}, "[1-3]"},
		"huge number plain":   {[]string{"n1234567890123456789", "n1"}, "n1,n1234567890123456789"},
		"dash names":          {seq("ib-cn%02d", 1, 3), "ib-cn[01-03]"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Compress(tc.names)); diff != "" {
				t.Errorf("Compress(%q) (-want +got):\n%s", tc.names, diff)
			}
		})
	}
}

// TestCompressRoundTrip: Expand(Compress(x)) gives x back, sorted, for
// random sets of nodes.
func TestCompressRoundTrip(t *testing.T) {
	u := testUniverse(t)
	all := u.Nodes()
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 300 {
		var pick []string
		for _, n := range all {
			if rng.IntN(4) == 0 {
				pick = append(pick, n)
			}
		}
		if len(pick) == 0 {
			continue
		}
		rng.Shuffle(len(pick), func(i, j int) { pick[i], pick[j] = pick[j], pick[i] })
		expr := Compress(pick)
		got, err := Expand(expr, u)
		if err != nil {
			t.Fatalf("round %d: Expand(Compress(%q)) = Expand(%q): %v", i, pick, expr, err)
		}
		slices.SortFunc(pick, Compare)
		if diff := cmp.Diff(pick, got); diff != "" {
			t.Fatalf("round %d: Expand(%q) (-want +got):\n%s", i, expr, diff)
		}
	}
}
