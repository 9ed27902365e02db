package noderange

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCompare(t *testing.T) {
	tests := map[string]struct {
		a, b string
		want int
	}{
		"numbers by value":         {"cn2", "cn10", -1},
		"numbers by value reverse": {"cn10", "cn2", 1},
		"padded equal width":       {"cn002", "cn010", -1},
		"padded vs unpadded":       {"cn01", "cn1", -1}, // equal value: bytewise
		"unpadded vs padded":       {"cn1", "cn01", 1},
		"equal":                    {"cn1", "cn1", 0},
		"empty":                    {"", "", 0},
		"empty first":              {"", "a", -1},
		"prefix shorter first":     {"cn", "cn1", -1},
		"number ends name":         {"cn1", "cn1a", -1},
		"letters":                  {"a", "b", -1},
		"case is bytewise":         {"B", "a", -1},
		"second number":            {"rack2node10", "rack10node1", -1},
		"second number decides":    {"rack1node9", "rack1node10", -1},
		"digit vs letter":          {"cn1", "cna", -1},  // '1' < 'a'
		"dash vs digit":            {"cn-1", "cn1", -1}, // '-' < '1'
		"huge numbers":             {"n123456789012345678901234567890", "n123456789012345678901234567891", -1},
		"huge vs small":            {"n99", "n100000000000000000000000", -1},
		"zeros":                    {"n0", "n00", -1}, // equal value: bytewise, and n0 is a prefix
		"leading zeros only":       {"n000", "n1", -1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Compare(tc.a, tc.b); got != tc.want {
				t.Errorf("Compare(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
			}
			if got := Compare(tc.b, tc.a); got != -tc.want {
				t.Errorf("Compare(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
			}
			if got := Less(tc.a, tc.b); got != (tc.want < 0) {
				t.Errorf("Less(%q, %q) = %v", tc.a, tc.b, got)
			}
		})
	}
}

func TestSortNatural(t *testing.T) {
	got := []string{"cn10", "cn1", "sn2", "cn01", "cn2", "rack10node1", "rack2node10", "cn001", "a"}
	slices.SortFunc(got, Compare)
	want := []string{"a", "cn001", "cn01", "cn1", "cn2", "cn10", "rack2node10", "rack10node1", "sn2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

// TestCompareIsTotalOrder checks antisymmetry, transitivity and that only
// equal strings compare equal, on random names made of a few bytes.
func TestCompareIsTotalOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "0019a-"
	names := make([]string, 300)
	for i := range names {
		b := make([]byte, rng.IntN(6))
		for j := range b {
			b[j] = alphabet[rng.IntN(len(alphabet))]
		}
		names[i] = string(b)
	}
	for _, a := range names {
		for _, b := range names {
			ab, ba := Compare(a, b), Compare(b, a)
			if ab != -ba {
				t.Fatalf("Compare(%q,%q)=%d but Compare(%q,%q)=%d", a, b, ab, b, a, ba)
			}
			if (ab == 0) != (a == b) {
				t.Fatalf("Compare(%q,%q)=%d", a, b, ab)
			}
		}
	}
	for range 20000 {
		a, b, c := names[rng.IntN(len(names))], names[rng.IntN(len(names))], names[rng.IntN(len(names))]
		if Compare(a, b) <= 0 && Compare(b, c) <= 0 && Compare(a, c) > 0 {
			t.Fatalf("not transitive: %q <= %q <= %q but %q > %q", a, b, c, a, c)
		}
	}
}
