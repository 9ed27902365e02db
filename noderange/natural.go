package noderange

import (
	"cmp"
	"strings"
)

// Compare orders node names naturally: runs of digits compare by their
// numeric value, so cn2 < cn10 and rack2node10 < rack10node1; other bytes
// compare as bytes. Names that differ only in zero padding (cn01, cn1) are
// ordered bytewise, so Compare is a total order and returns 0 only for equal
// strings. It is suitable for slices.SortFunc.
func Compare(a, b string) int {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		ca, cb := a[i], b[j]
		if isDigit(ca) && isDigit(cb) {
			si, sj := i, j
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			na := strings.TrimLeft(a[si:i], "0")
			nb := strings.TrimLeft(b[sj:j], "0")
			if len(na) != len(nb) {
				return cmp.Compare(len(na), len(nb))
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			continue
		}
		if ca != cb {
			return cmp.Compare(ca, cb)
		}
		i++
		j++
	}
	switch {
	case i < len(a):
		return 1
	case j < len(b):
		return -1
	}
	return strings.Compare(a, b)
}

// Less reports whether a sorts before b in natural order (see Compare).
func Less(a, b string) bool { return Compare(a, b) < 0 }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
