package noderange

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"strconv"
	"strings"
)

const (
	// DefaultLimit is how many names the ranges of one noderange may
	// generate before Expand fails with ErrTooLarge.
	DefaultLimit = 1_000_000
	// DefaultNumericPrefix is what xCAT puts before a bare number: 5 means
	// node5 unless a node or group is named 5.
	DefaultNumericPrefix = "node"
	// MaxFileSize is the largest ^file Expand reads, in bytes.
	MaxFileSize = 16 << 20
)

// Option changes how Expand resolves a noderange.
type Option func(*options)

type options struct {
	limit          int
	prefix, suffix string
	open           func(name string) (io.ReadCloser, error)
}

// WithLimit sets how many names the ranges of one noderange may generate
// (cn[1-100] generates 100), DefaultLimit if n < 1. Names selected through
// groups, all and /regex come from the Universe and do not count.
func WithLimit(n int) Option {
	return func(o *options) {
		if n < 1 {
			n = DefaultLimit
		}
		o.limit = n
	}
}

// WithNumericPrefix sets what is put around a bare number that is neither a
// node nor a group: with ("node", "") 5 means node5 and 10-12 means
// node10,node11,node12, as in xCAT (the default). ("", "") turns this off.
func WithNumericPrefix(prefix, suffix string) Option {
	return func(o *options) { o.prefix, o.suffix = prefix, suffix }
}

// WithFileOpener enables ^path terms, which read node names from a file,
// one noderange per line, '#' starting a comment. open is called once per
// path and Expand; without this option ^path fails with ErrFile. A command
// line tool passes
//
//	func(name string) (io.ReadCloser, error) { return os.Open(name) }
func WithFileOpener(open func(name string) (io.ReadCloser, error)) Option {
	return func(o *options) { o.open = open }
}

// Expand parses expr and expands it against u; see Range.Expand.
func Expand(expr string, u Universe, opts ...Option) ([]string, error) {
	r, err := Parse(expr)
	if err != nil {
		return nil, err
	}
	return r.Expand(u, opts...)
}

// Expand resolves the noderange against u and returns the node names it
// selects, in natural order (see Compare), without duplicates. Errors match
// ErrSyntax (a hyphen range written backwards, a bad ^file line), ErrUnknown
// (an *UnknownError listing every name that is neither a node nor a group),
// ErrEmpty (no node selected), ErrTooLarge (see WithLimit) or ErrFile.
func (r Range) Expand(u Universe, opts ...Option) ([]string, error) {
	if len(r.terms) == 0 {
		return nil, fmt.Errorf("%w: the noderange is empty", ErrEmpty)
	}
	e := &evaluator{u: u, opt: options{limit: DefaultLimit, prefix: DefaultNumericPrefix}}
	for _, o := range opts {
		o(&e.opt)
	}
	e.nodes = u.Nodes()
	e.words = (len(e.nodes) + 63) / 64
	sel := e.newSet()
	if err := e.group(&r, r.root, sel); err != nil {
		return nil, err
	}
	if len(e.unknown) > 0 {
		slices.SortFunc(e.unknown, Compare)
		return nil, &UnknownError{Names: slices.Compact(e.unknown)}
	}
	n := 0
	for _, w := range sel {
		n += bits.OnesCount64(w)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w by %s", ErrEmpty, quoteAround(r.expr, 0))
	}
	out := make([]string, 0, n)
	for wi, w := range sel {
		for w != 0 {
			out = append(out, e.nodes[wi*64+bits.TrailingZeros64(w)])
			w &= w - 1
		}
	}
	if !slices.IsSortedFunc(out, Compare) {
		slices.SortFunc(out, Compare)
	}
	return out, nil
}

// bitset is a set of positions in Universe.Nodes().
type bitset []uint64

func (s bitset) set(i int) { s[i>>6] |= 1 << (uint(i) & 63) }

func (s bitset) or(t bitset) {
	for i := range s {
		s[i] |= t[i]
	}
}

func (s bitset) and(t bitset) {
	for i := range s {
		s[i] &= t[i]
	}
}

func (s bitset) andNot(t bitset) {
	if t == nil {
		return
	}
	for i := range s {
		s[i] &^= t[i]
	}
}

// chunkSize is how many bytes of generated names are converted to a string
// at once.
const chunkSize = 32 << 10

type evaluator struct {
	u         Universe
	opt       options
	nodes     []string
	words     int
	generated uint64
	unknown   []string
	files     map[string][]Range
	chunk     []byte
	ends      []int
}

func (e *evaluator) newSet() bitset { return make(bitset, e.words) }

// group evaluates the terms linked from first and adds what they select to
// sel: the union of the included terms less the union of the excluded ones.
func (e *evaluator) group(r *Range, first int32, sel bitset) error {
	direct := isZero(sel) // nothing to protect from the exclusions
	inc := sel
	if !direct {
		inc = e.newSet()
	}
	var exc bitset
	if err := e.terms(r, first, inc, &exc); err != nil {
		return err
	}
	inc.andNot(exc)
	if !direct {
		sel.or(inc)
	}
	return nil
}

func isZero(s bitset) bool {
	for _, w := range s {
		if w != 0 {
			return false
		}
	}
	return true
}

// terms adds the terms linked from first to inc or, if excluded, to *exc.
func (e *evaluator) terms(r *Range, first int32, inc bitset, exc *bitset) error {
	for t := first; t >= 0; t = r.terms[t].next {
		target := inc
		if r.terms[t].exclude {
			if *exc == nil {
				*exc = e.newSet()
			}
			target = *exc
		}
		if err := e.chain(r, r.terms[t].first, target); err != nil {
			return err
		}
	}
	return nil
}

// chain adds the intersection of the operands linked from first to target.
func (e *evaluator) chain(r *Range, first int32, target bitset) error {
	if r.ops[first].next < 0 {
		return e.operand(r, &r.ops[first], target)
	}
	acc, tmp := e.newSet(), e.newSet()
	if err := e.operand(r, &r.ops[first], acc); err != nil {
		return err
	}
	for o := r.ops[first].next; o >= 0; o = r.ops[o].next {
		clear(tmp)
		if err := e.operand(r, &r.ops[o], tmp); err != nil {
			return err
		}
		acc.and(tmp)
	}
	target.or(acc)
	return nil
}

func (e *evaluator) operand(r *Range, op *operand, target bitset) error {
	switch op.kind {
	case opName:
		return e.name(r, op, target)
	case opPattern:
		return e.pattern(op, op.x.pat, target)
	case opRegex:
		for i, n := range e.nodes {
			if op.x.re.MatchString(n) {
				target.set(i)
			}
		}
		return nil
	case opFile:
		return e.file(op, target)
	case opParen:
		return e.group(r, op.sub, target)
	}
	panic("noderange: unknown operand kind " + strconv.Itoa(int(op.kind)))
}

// name resolves a name as xCAT does: a node, else a group, else all, else a
// hyphen range, else a bare number with the numeric prefix.
func (e *evaluator) name(r *Range, op *operand, target bitset) error {
	if e.resolve(op.text, target) {
		return nil
	}
	if op.text == "all" {
		for i := range e.nodes {
			target.set(i)
		}
		return nil
	}
	if op.x != nil {
		if op.x.badRange != "" {
			return &SyntaxError{Expr: r.expr, Pos: int(op.pos), Text: op.text, File: r.file, Line: r.line,
				Msg: fmt.Sprintf("%q is not a node or group, and as a range: %s", op.text, op.x.badRange)}
		}
		return e.pattern(op, op.x.pat, target)
	}
	e.resolveNumeric(op.text, target)
	return nil
}

// resolve adds the node or the members of the group called name to target
// and reports whether there was one.
func (e *evaluator) resolve(name string, target bitset) bool {
	if i, ok := e.u.Lookup(name); ok {
		target.set(i)
		return true
	}
	members, ok := e.u.Group(name)
	if !ok {
		return false
	}
	for _, m := range members {
		if i, ok := e.u.Lookup(m); ok {
			target.set(i)
		} else {
			e.unknown = append(e.unknown, m)
		}
	}
	return true
}

// resolveNumeric resolves a name that is neither a node nor a group: a bare
// number gets the numeric prefix; anything else is unknown.
func (e *evaluator) resolveNumeric(name string, target bitset) {
	if (e.opt.prefix != "" || e.opt.suffix != "") && strings.Trim(name, "0123456789") == "" {
		name = e.opt.prefix + name + e.opt.suffix
		if e.resolve(name, target) {
			return
		}
	}
	e.unknown = append(e.unknown, name)
}

// pattern generates the names of p and resolves each as a node or group.
func (e *evaluator) pattern(op *operand, p *pattern, target bitset) error {
	n, ok := p.count()
	limit := uint64(e.opt.limit)
	if !ok || n > limit {
		return fmt.Errorf("%w: %q would expand to %s names; the limit is %d (see WithLimit)", ErrTooLarge, op.text, countString(n, ok), limit)
	}
	if e.generated+n > limit {
		return fmt.Errorf("%w: with %q the ranges of the noderange would expand to %d names; the limit is %d (see WithLimit)", ErrTooLarge, op.text, e.generated+n, limit)
	}
	e.generated += n
	e.generate(p, func(name string) {
		if !e.resolve(name, target) {
			e.resolveNumeric(name, target)
		}
	})
	return nil
}

func countString(n uint64, ok bool) string {
	if !ok {
		return "more than " + strconv.FormatUint(^uint64(0), 10)
	}
	return strconv.FormatUint(n, 10)
}

// generate calls fn with every name of p, leftmost range varying slowest.
// Names are built in a buffer and converted to strings a chunk at a time.
func (e *evaluator) generate(p *pattern, fn func(string)) {
	e.chunk, e.ends = e.chunk[:0], e.ends[:0]
	flush := func() {
		s, start := string(e.chunk), 0
		for _, end := range e.ends {
			fn(s[start:end])
			start = end
		}
		e.chunk, e.ends = e.chunk[:0], e.ends[:0]
	}
	var rec func(i int, name []byte)
	rec = func(i int, name []byte) {
		if i == len(p.segs) {
			e.chunk = append(e.chunk, name...)
			e.ends = append(e.ends, len(e.chunk))
			if len(e.chunk) >= chunkSize {
				flush()
			}
			return
		}
		s := &p.segs[i]
		if s.items == nil {
			rec(i+1, append(name, s.lit...))
			return
		}
		for _, it := range s.items {
			for v := it.lo; ; v++ {
				rec(i+1, appendPadded(name, v, it.width))
				if v == it.hi {
					break
				}
			}
		}
	}
	rec(0, make([]byte, 0, p.maxLen))
	flush()
}

// appendPadded appends v in decimal, zero padded to width digits.
func appendPadded(b []byte, v uint64, width int) []byte {
	digits := 1
	for t := v; t >= 10; t /= 10 {
		digits++
	}
	for ; digits < width; digits++ {
		b = append(b, '0')
	}
	return strconv.AppendUint(b, v, 10)
}

// file adds the nodes listed in a ^file: its lines form one group, so a
// line -name excludes from the whole file.
func (e *evaluator) file(op *operand, target bitset) error {
	lines, err := e.loadFile(op.text)
	if err != nil {
		return err
	}
	inc := e.newSet()
	var exc bitset
	for i := range lines {
		if err := e.terms(&lines[i], lines[i].root, inc, &exc); err != nil {
			return err
		}
	}
	inc.andNot(exc)
	target.or(inc)
	return nil
}

func (e *evaluator) loadFile(path string) ([]Range, error) {
	if lines, ok := e.files[path]; ok {
		return lines, nil
	}
	if e.opt.open == nil {
		return nil, fmt.Errorf("%w: ^%s: reading node names from files is not enabled here; list the nodes instead", ErrFile, path)
	}
	f, err := e.opt.open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: ^%s: %w", ErrFile, path, err)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	cerr := f.Close()
	if err = errors.Join(err, cerr); err != nil {
		return nil, fmt.Errorf("%w: ^%s: %w", ErrFile, path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: ^%s is larger than %d bytes", ErrTooLarge, path, MaxFileSize)
	}
	var lines []Range
	for i, line := range strings.Split(string(data), "\n") {
		if k := strings.IndexByte(line, '#'); k >= 0 {
			line = line[:k]
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		r, err := parse(line, path, i+1)
		if err != nil {
			return nil, err
		}
		for _, op := range r.ops {
			if op.kind == opFile {
				return nil, &SyntaxError{Expr: line, Pos: int(op.pos), Text: "^" + op.text, File: path, Line: i + 1,
					Msg: "a node list file may not name another file with '^'"}
			}
		}
		lines = append(lines, r)
	}
	if e.files == nil {
		e.files = make(map[string][]Range)
	}
	e.files[path] = lines
	return lines, nil
}
