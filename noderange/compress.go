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
	fams, plain := families(names)
	parts := make([]part, 0, len(plain)+len(fams))
	for _, n := range plain {
		parts = append(parts, part{n, n})
	}
	for _, f := range fams {
		parts = append(parts, f.compress())
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

// part is one comma-separated part of a compressed noderange, with the
// first name it stands for (the sort key).
type part struct{ first, text string }

// entry is a name of a family, with its number as written and its value.
type entry struct {
	name, digits string
	value        uint64
}

// family is the names that differ only in their last number.
type family struct {
	prefix, suffix string
	entries        []entry
}

// families groups names by what is around their last number; names
// without a number (or with one too large) are returned as plain.
func families(names []string) (map[[2]string]*family, []string) {
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
	return fams, plain
}

// numRun is a run of consecutive numbers written with the same padding.
type numRun struct {
	lo, hi string
	end    uint64
	width  int
}

// compress writes the family as one part: PREFIX[RUN,...]SUFFIX, or the
// name alone when the family has one (distinct) name.
func (f *family) compress() part {
	es := f.entries
	slices.SortFunc(es, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.value, b.value), strings.Compare(a.digits, b.digits))
	})
	es = slices.CompactFunc(es, func(a, b entry) bool { return a.digits == b.digits })
	if len(es) == 1 {
		return part{es[0].name, es[0].name}
	}
	// An entry extends the first open run it fits, else starts one.
	var runs []numRun
next:
	for _, en := range es {
		for i := range runs {
			r := &runs[i]
			if r.end+1 == en.value && fits(en.digits, r.width) {
				r.hi, r.end = en.digits, en.value
				continue next
			}
		}
		runs = append(runs, numRun{en.digits, en.digits, en.value, len(en.digits)})
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
	return part{es[0].name, b.String()}
}

// fits reports whether digits is how a range padded to width writes its
// number: exactly width digits, or more without a leading zero.
func fits(digits string, width int) bool {
	return len(digits) == width || len(digits) > width && digits[0] != '0'
}
