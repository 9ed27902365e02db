package noderange

import (
	"cmp"
	"slices"
	"strings"
)

// Compress writes names as a short noderange for display, the inverse of
// Expand: consecutive numbers in the last number of otherwise equal names
// become a bracket range, as in cn[001-100],sn1. Padding is kept: cn[8-10]
// and cn[08-10] differ. The result is deterministic (sorted naturally by the
// first name of each part) and expands back to the same names when they are
// all nodes. Duplicates are dropped; names are not validated.
func Compress(names []string) string {
	type entry struct {
		name, digits string
		value        uint64
	}
	type family struct {
		prefix, suffix string
		entries        []entry
	}
	fams := make(map[[2]string]*family)
	var plain []string
	for _, n := range names {
		e := len(n)
		for e > 0 && !isDigit(n[e-1]) {
			e--
		}
		s := e
		for s > 0 && isDigit(n[s-1]) {
			s--
		}
		v, ok := parseNum(n[s:e])
		if s == e || !ok {
			plain = append(plain, n)
			continue
		}
		key := [2]string{n[:s], n[e:]}
		f := fams[key]
		if f == nil {
			f = &family{prefix: n[:s], suffix: n[e:]}
			fams[key] = f
		}
		f.entries = append(f.entries, entry{n, n[s:e], v})
	}

	type part struct{ first, text string }
	parts := make([]part, 0, len(plain)+len(fams))
	for _, n := range plain {
		parts = append(parts, part{n, n})
	}
	for _, f := range fams {
		es := f.entries
		slices.SortFunc(es, func(a, b entry) int {
			return cmp.Or(cmp.Compare(a.value, b.value), strings.Compare(a.digits, b.digits))
		})
		es = slices.CompactFunc(es, func(a, b entry) bool { return a.digits == b.digits })
		if len(es) == 1 {
			parts = append(parts, part{es[0].name, es[0].name})
			continue
		}
		// Runs of consecutive numbers written with the same padding: an
		// entry extends the first open run it fits, else starts one.
		type runT struct {
			lo, hi string
			end    uint64
			width  int
		}
		var runs []runT
	next:
		for _, en := range es {
			for i := range runs {
				r := &runs[i]
				if r.end+1 == en.value && fits(en.digits, r.width) {
					r.hi, r.end = en.digits, en.value
					continue next
				}
			}
			runs = append(runs, runT{en.digits, en.digits, en.value, len(en.digits)})
		}
		var b strings.Builder
		b.WriteString(f.prefix)
		b.WriteByte('[')
		for i, r := range runs {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(r.lo)
			if r.hi != r.lo {
				b.WriteByte('-')
				b.WriteString(r.hi)
			}
		}
		b.WriteByte(']')
		b.WriteString(f.suffix)
		parts = append(parts, part{es[0].name, b.String()})
	}
	slices.SortFunc(parts, func(a, b part) int { return Compare(a.first, b.first) })
	parts = slices.CompactFunc(parts, func(a, b part) bool { return a.text == b.text })
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p.text)
	}
	return b.String()
}

// fits reports whether digits is how a range padded to width writes its
// number: exactly width digits, or more without a leading zero.
func fits(digits string, width int) bool {
	return len(digits) == width || len(digits) > width && digits[0] != '0'
}
