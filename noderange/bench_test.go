package noderange

import (
	"fmt"
	"strings"
	"testing"
)

// bigUniverse is a cluster of n nodes cn000001... with racks of 1,000.
func bigUniverse(b *testing.B, n int) *Static {
	b.Helper()
	nodes := bigNames(n)
	groups := map[string][]string{"odd": nil}
	for i := 0; i < n; i += 2 {
		groups["odd"] = append(groups["odd"], nodes[i])
	}
	for r := 0; r*1000 < n; r++ {
		groups[fmt.Sprintf("rack%d", r+1)] = nodes[r*1000 : min(n, (r+1)*1000)]
	}
	u, err := NewStatic(nodes, groups)
	if err != nil {
		b.Fatal(err)
	}
	return u
}

func benchExpand(b *testing.B, expr string, want int) {
	u := bigUniverse(b, 100_000)
	b.ReportAllocs()
	for b.Loop() {
		got, err := Expand(expr, u)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != want {
			b.Fatalf("got %d names, want %d", len(got), want)
		}
	}
}

func BenchmarkExpandBracket100k(b *testing.B) {
	benchExpand(b, "cn[000001-100000]", 100_000)
}

func BenchmarkExpandHyphen100k(b *testing.B) {
	benchExpand(b, "cn000001-cn100000", 100_000)
}

// bigNames returns cn000001 ... for n nodes.
func bigNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("cn%06d", i+1)
	}
	return names
}

func BenchmarkExpandCommaList100k(b *testing.B) {
	benchExpand(b, strings.Join(bigNames(100_000), ","), 100_000)
}

func BenchmarkExpandAllExclude100k(b *testing.B) {
	benchExpand(b, "all,-cn[050001-100000],-rack3", 49_000)
}

func BenchmarkExpandGroupIntersect100k(b *testing.B) {
	benchExpand(b, "odd@cn[000001-020000]", 10_000)
}

func BenchmarkExpandRegex100k(b *testing.B) {
	benchExpand(b, "/cn0[0-4].*", 49_999)
}

func BenchmarkExpandOneNodeOf100k(b *testing.B) {
	benchExpand(b, "cn054321", 1)
}

func BenchmarkParseCommaList100k(b *testing.B) {
	expr := strings.Join(bigNames(100_000), ",")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(expr); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompress100k(b *testing.B) {
	u := bigUniverse(b, 100_000)
	b.ReportAllocs()
	for b.Loop() {
		if got := Compress(u.Nodes()); got != "cn[000001-100000]" {
			b.Fatal(got)
		}
	}
}

func BenchmarkNewStatic100k(b *testing.B) {
	nodes := bigNames(100_000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewStatic(nodes, nil); err != nil {
			b.Fatal(err)
		}
	}
}
