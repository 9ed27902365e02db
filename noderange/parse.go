package noderange

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

const (
	// MaxExprLen is the longest noderange Parse accepts, in bytes.
	MaxExprLen = 16 << 20
	// maxDepth bounds the nesting of parentheses.
	maxDepth = 32
	// maxDigits is the most significant digits a number in a range may have.
	maxDigits = 18
	// maxValue is the largest number a range may reach.
	maxValue = 999_999_999_999_999_999
)

// Range is a parsed noderange. Parse checks the syntax; Expand resolves the
// names against a Universe. The zero Range is empty. A Range is immutable and
// safe for concurrent use.
type Range struct {
	expr  string
	terms []term
	ops   []operand
	root  int32 // first term of the top level
	file  string
	line  int // where expr is a line of a ^file
}

// term is one comma-separated element: an intersection chain of operands,
// optionally excluded. Terms of one group are linked through next.
type term struct {
	exclude bool
	first   int32 // first operand of the chain
	next    int32 // next term of the same group, or -1
}

type opKind uint8

const (
	opName    opKind = iota // node, group, "all", bare number, or a hyphen range
	opPattern               // a[1-3]b, a1:a3, a1+2: generated names
	opRegex                 // /regex
	opFile                  // ^path
	opParen                 // ( noderange )
)

// operand is one element of an intersection chain. Operands of one chain are
// linked through next.
type operand struct {
	kind opKind
	pos  int32  // byte offset of text in the expression
	next int32  // next operand of the same intersection, or -1
	sub  int32  // opParen: first term of the group
	text string // the source text (opFile: the path; opRegex: without '/')
	x    *extra // nil for plain names
}

type extra struct {
	pat      *pattern       // opPattern; opName: the hyphen-range reading
	badRange string         // opName: why the hyphen-range reading is invalid
	re       *regexp.Regexp // opRegex
}

// pattern generates names: literals and numeric ranges, concatenated.
type pattern struct {
	segs   []segment
	maxLen int // upper bound of a generated name's length
}

// segment is a literal (items == nil) or a list of numeric ranges.
type segment struct {
	lit   string
	items []numRange
}

// numRange is lo..hi inclusive, zero padded to width digits.
type numRange struct {
	lo, hi uint64
	width  int
}

// count returns how many names p generates; false if that overflows.
func (p *pattern) count() (uint64, bool) {
	n := uint64(1)
	for _, s := range p.segs {
		if s.items == nil {
			continue
		}
		var k uint64
		for _, it := range s.items {
			k += it.hi - it.lo + 1
			if k < it.hi-it.lo+1 { // wrapped
				return 0, false
			}
		}
		if k != 0 && n > ^uint64(0)/k {
			return 0, false
		}
		n *= k
	}
	return n, true
}

func newPattern(segs ...segment) *pattern {
	p := &pattern{segs: segs}
	for _, s := range segs {
		p.maxLen += len(s.lit)
		if s.items != nil {
			w := maxDigits
			for _, it := range s.items {
				w = max(w, it.width)
			}
			p.maxLen += w
		}
	}
	return p
}

// Parse checks the syntax of a noderange and returns it for Expand. Errors
// match ErrSyntax (a *SyntaxError with the column and offending text),
// ErrEmpty (nothing but spaces) or ErrTooLarge (longer than MaxExprLen).
// Whether names exist is only known to Expand.
func Parse(expr string) (Range, error) {
	return parse(expr, "", 0)
}

func parse(expr, file string, line int) (Range, error) {
	if len(expr) > MaxExprLen {
		return Range{}, fmt.Errorf("%w: the noderange is %d bytes long; at most %d are allowed", ErrTooLarge, len(expr), MaxExprLen)
	}
	if strings.TrimSpace(expr) == "" {
		return Range{}, fmt.Errorf("%w: the noderange is empty; give node names, groups or ranges such as cn[001-010]", ErrEmpty)
	}
	n := strings.Count(expr, ",") + 1
	p := &parser{
		expr:  expr,
		file:  file,
		line:  line,
		terms: make([]term, 0, n),
		ops:   make([]operand, 0, n+strings.Count(expr, "@")),
	}
	root, err := p.group()
	if err != nil {
		return Range{}, err
	}
	if p.pos < len(expr) { // group stops only at the end or at ')'
		return Range{}, p.errAt(p.pos, ")", "')' without a matching '('")
	}
	return Range{expr: expr, terms: p.terms, ops: p.ops, root: root, file: file, line: line}, nil
}

// String returns the noderange as it was given to Parse.
func (r Range) String() string { return r.expr }

type parser struct {
	expr  string
	pos   int
	depth int
	file  string
	line  int
	terms []term
	ops   []operand
}

func (p *parser) errAt(pos int, text, msg string, args ...any) error {
	if len(args) > 0 {
		msg = fmt.Sprintf(msg, args...)
	}
	return &SyntaxError{Expr: p.expr, Pos: pos, Text: text, Msg: msg, File: p.file, Line: p.line}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (p *parser) skipSpace() {
	for p.pos < len(p.expr) && isSpace(p.expr[p.pos]) {
		p.pos++
	}
}

// group parses terms separated by ',' up to the end or a ')', which it
// leaves for the caller. It returns the first term.
func (p *parser) group() (int32, error) {
	first, prev := int32(-1), int32(-1)
	for {
		t, err := p.term()
		if err != nil {
			return 0, err
		}
		if prev < 0 {
			first = t
		} else {
			p.terms[prev].next = t
		}
		prev = t
		p.skipSpace()
		if p.pos == len(p.expr) {
			return first, nil
		}
		switch c := p.expr[p.pos]; c {
		case ',':
			p.pos++
		case ')':
			return first, nil
		default:
			return 0, p.errAt(p.pos, tokenAt(p.expr, p.pos),
				"unexpected %q: separate terms with ',' (union) or '@' (intersection)", tokenAt(p.expr, p.pos))
		}
	}
}

// tokenAt returns the text at pos up to the next separator, for messages.
func tokenAt(s string, pos int) string {
	end := pos + 1
	for end < len(s) && !strings.ContainsRune(",@() \t\n\r", rune(s[end])) && end-pos < maxShown {
		end++
	}
	return s[pos:end]
}

func (p *parser) term() (int32, error) {
	p.skipSpace()
	exclude := false
	if p.pos < len(p.expr) && p.expr[p.pos] == '-' {
		exclude = true
		p.pos++
	}
	first, err := p.chain()
	if err != nil {
		return 0, err
	}
	p.terms = append(p.terms, term{exclude: exclude, first: first, next: -1})
	return int32(len(p.terms) - 1), nil
}

// chain parses operands joined by '@'.
func (p *parser) chain() (int32, error) {
	first, err := p.operand()
	if err != nil {
		return 0, err
	}
	prev := first
	for {
		p.skipSpace()
		if p.pos == len(p.expr) || p.expr[p.pos] != '@' {
			return first, nil
		}
		p.pos++
		o, err := p.operand()
		if err != nil {
			return 0, err
		}
		p.ops[prev].next = o
		prev = o
	}
}

func (p *parser) add(op operand) int32 {
	op.next = -1
	p.ops = append(p.ops, op)
	return int32(len(p.ops) - 1)
}

func (p *parser) operand() (int32, error) {
	p.skipSpace()
	start := p.pos
	if start == len(p.expr) {
		return 0, p.errAt(start, "", "empty term at the end: remove the trailing separator or add a node, group or range")
	}
	switch c := p.expr[start]; c {
	case ',', '@', ')':
		return 0, p.errAt(start, string(c), "empty term before %q: write a node, group or range there, or remove the separator", string(c))
	case '-':
		return 0, p.errAt(start, "-", "'-' (exclusion) may only start a term, as in all,-cn005; to exclude from an intersection write a@(b,-c)")
	case '(':
		if p.depth >= maxDepth {
			return 0, p.errAt(start, "(", "parentheses nested more than %d deep", maxDepth)
		}
		p.pos++
		p.depth++
		sub, err := p.group()
		p.depth--
		if err != nil {
			return 0, err
		}
		if p.pos == len(p.expr) {
			return 0, p.errAt(start, "(", "'(' is never closed: add ')'")
		}
		p.pos++ // ')'
		return p.add(operand{kind: opParen, pos: int32(start), sub: sub, text: p.expr[start:p.pos]}), nil
	case '/':
		return p.regex()
	case '^':
		return p.file_()
	}
	return p.name()
}

func (p *parser) regex() (int32, error) {
	start := p.pos
	end := scanRegex(p.expr, start+1)
	src := strings.TrimRight(p.expr[start+1:end], " \t\r\n")
	p.pos = end
	if src == "" {
		return 0, p.errAt(start, "/", "empty regular expression after '/': write one such as /cn0[1-4].*")
	}
	// Anchor the parsed expression, not the text, so that no input can
	// escape the anchors.
	tree, err := syntax.Parse(src, syntax.Perl)
	var re *regexp.Regexp
	if err == nil {
		re, err = regexp.Compile(`^(?:` + tree.String() + `)$`)
	}
	if err != nil {
		return 0, p.errAt(start, p.expr[start:end], "invalid regular expression %q (Go RE2 syntax, matched against whole node names): %v", src, err)
	}
	return p.add(operand{kind: opRegex, pos: int32(start), text: src, x: &extra{re: re}}), nil
}

// scanRegex returns where a regular expression starting at i ends: at a
// ',', '@' or unbalanced ')' outside parentheses, braces and classes.
func scanRegex(s string, i int) int {
	parens, braces := 0, 0
	for i < len(s) {
		switch s[i] {
		case '\\':
			i += 2
			continue
		case '[':
			i = scanClass(s, i)
			continue
		case '(':
			parens++
		case ')':
			if parens == 0 {
				return i
			}
			parens--
		case '{':
			braces++
		case '}':
			if braces > 0 {
				braces--
			}
		case ',', '@':
			if parens == 0 && braces == 0 {
				return i
			}
		}
		i++
	}
	return len(s)
}

// scanClass returns the index after the character class that starts at i.
func scanClass(s string, i int) int {
	i++
	if i < len(s) && s[i] == '^' {
		i++
	}
	if i < len(s) && s[i] == ']' {
		i++
	}
	for i < len(s) {
		switch {
		case s[i] == '\\':
			i += 2
			continue
		case s[i] == '[' && i+1 < len(s) && s[i+1] == ':':
			if j := strings.Index(s[i+2:], ":]"); j >= 0 {
				i += j + 4
				continue
			}
		case s[i] == ']':
			return i + 1
		}
		i++
	}
	return len(s)
}

func (p *parser) file_() (int32, error) {
	start := p.pos
	end := start + 1
	for end < len(p.expr) && !strings.ContainsRune(",@) \t\r\n", rune(p.expr[end])) {
		end++
	}
	p.pos = end
	if end == start+1 {
		return 0, p.errAt(start, "^", "'^' must be followed by the path of a node list file, as in ^/tmp/nodes")
	}
	return p.add(operand{kind: opFile, pos: int32(start), text: p.expr[start+1 : end]}), nil
}

// isNameByte reports whether c may appear in a node or group name.
func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) || c == '-' || c == '_' || c == '.'
}

func (p *parser) name() (int32, error) {
	start := p.pos
	sc, err := p.scanName()
	if err != nil {
		return 0, err
	}
	s, i, colon, plus := p.expr, sc.end, sc.colon, sc.plus
	p.pos = i
	text := s[start:i]
	op := operand{kind: opName, pos: int32(start), text: text}
	switch {
	case sc.brackets && (colon >= 0 || plus >= 0):
		at := max(colon, plus)
		return 0, p.errAt(at, s[at:at+1], "use either [...] or %q in a range, not both", s[at:at+1])
	case colon >= 0 && plus >= 0:
		return 0, p.errAt(max(colon, plus), "+", "use either ':' or '+' in a range, not both")
	case sc.brackets:
		pat, err := p.brackets(start, text)
		if err != nil {
			return 0, err
		}
		op.kind, op.x = opPattern, &extra{pat: pat}
	case colon >= 0:
		pat, err := p.colonRange(start, colon, i)
		if err != nil {
			return 0, err
		}
		op.kind, op.x = opPattern, &extra{pat: pat}
	case plus >= 0:
		pat, err := p.increment(start, plus, i)
		if err != nil {
			return 0, err
		}
		op.kind, op.x = opPattern, &extra{pat: pat}
	default:
		if k := dashSplit(text); k >= 0 {
			if pat, msg, ok := rangePair(text[:k], text[k+1:]); ok {
				op.x = &extra{pat: pat, badRange: msg}
			}
		}
	}
	return p.add(op), nil
}

// nameScan is what scanName found: where the name ends, the position of
// its ':' and '+' (-1 when none), and whether it has a [...] part.
type nameScan struct {
	end, colon, plus int
	brackets         bool
}

// scanName finds the end of the name at p.pos (which it does not move),
// checking each character.
func (p *parser) scanName() (nameScan, error) {
	s := p.expr
	start := p.pos
	i := start
	colon, plus := -1, -1
	brackets := false
scan:
	for i < len(s) {
		c := s[i]
		switch {
		case isNameByte(c):
			i++
		case c == ':' || c == '+':
			at := &colon
			if c == '+' {
				at = &plus
			}
			if *at >= 0 {
				return nameScan{}, p.errAt(i, string(c), "only one %q is allowed in a range, as in cn01:cn10 or cn01+9", string(c))
			}
			*at = i
			i++
		case c == '[':
			j := i + 1
			for j < len(s) && (isDigit(s[j]) || s[j] == ',' || s[j] == '-' || s[j] == ':') {
				j++
			}
			if j == len(s) {
				return nameScan{}, p.errAt(i, s[i:], "'[' is never closed: add ']', as in cn[001-100]")
			}
			if s[j] != ']' {
				return nameScan{}, p.errAt(j, s[j:j+1], "%q is not allowed inside [...]: use digits, ranges such as 001-100, and commas", s[j:j+1])
			}
			brackets = true
			i = j + 1
		case c == ']':
			return nameScan{}, p.errAt(i, "]", "']' without a matching '['")
		case c == ',' || c == '@' || c == ')' || isSpace(c):
			break scan
		case c == '=' || c == '~' || c == '!':
			return nameScan{}, p.errAt(i, s[start:i+1], "attribute selections such as nodehm.mgt==ipmi are not supported: use names, groups, ranges or /regex")
		case c == '(' || c == '/' || c == '^':
			return nameScan{}, p.errAt(i, string(c), "%q may only start a term, after ',' or '@'", string(c))
		default:
			r, _ := utf8.DecodeRuneInString(s[i:])
			bad := string(r)
			if r == utf8.RuneError {
				bad = s[i : i+1]
			}
			return nameScan{}, p.errAt(i, bad, "character %q is not allowed in a name: names contain letters, digits, '-', '_' and '.'", bad)
		}
	}
	return nameScan{end: i, colon: colon, plus: plus, brackets: brackets}, nil
}

// colonRange is the pattern of the range s[start:end] written with ':'
// at colon, as in cn01:cn10.
func (p *parser) colonRange(start, colon, end int) (*pattern, error) {
	s := p.expr
	text := s[start:end]
	l, r := s[start:colon], s[colon+1:end]
	if l == "" || r == "" {
		return nil, p.errAt(colon, text, "%q needs a name on both sides of ':', as in cn01:cn10", text)
	}
	pat, msg, ok := rangePair(l, r)
	if !ok {
		msg = "the two sides of ':' must be the same name except for one number, as in cn01:cn10"
	}
	if msg != "" {
		return nil, p.errAt(start, text, "%q: %s", text, msg)
	}
	return pat, nil
}

// dashSplit returns the index of the middle '-' of name, as xCAT splits
// node1-compute-node9-compute, or -1 if name has no or an even number of '-'.
func dashSplit(name string) int {
	n := strings.Count(name, "-")
	if n%2 == 0 {
		return -1
	}
	k := -1
	for range n/2 + 1 {
		k += 1 + strings.IndexByte(name[k+1:], '-')
	}
	return k
}

// run returns the end of the run of digits or of non-digits starting at i.
func run(s string, i int) int {
	d := isDigit(s[i])
	for i++; i < len(s) && isDigit(s[i]) == d; i++ {
	}
	return i
}

// parseNum parses a run of digits of at most maxDigits significant digits.
func parseNum(s string) (uint64, bool) {
	t := strings.TrimLeft(s, "0")
	if len(t) > maxDigits {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(t); i++ {
		v = v*10 + uint64(t[i]-'0')
	}
	return v, true
}

const tooLong = "numbers in a range may have at most 18 significant digits"

// rangePair reads l and r as the two ends of a range such as cn001 and cn100:
// the same text except for one number. ok is false when they are not; a
// non-empty msg says why a range of that shape is invalid.
func rangePair(l, r string) (pat *pattern, msg string, ok bool) {
	if l == r {
		return newPattern(segment{lit: l}), "", true
	}
	i, j := 0, 0
	for i < len(l) && j < len(r) {
		li, rj := run(l, i), run(r, j)
		ld := isDigit(l[i])
		if ld != isDigit(r[j]) {
			return nil, "", false
		}
		a, b := l[i:li], r[j:rj]
		if a == b {
			i, j = li, rj
			continue
		}
		if !ld || l[li:] != r[rj:] {
			return nil, "", false
		}
		lo, ok1 := parseNum(a)
		hi, ok2 := parseNum(b)
		switch {
		case !ok1 || !ok2:
			return nil, tooLong, true
		case lo > hi:
			return nil, fmt.Sprintf("reversed range: %s is greater than %s; write the smaller number first", a, b), true
		case lo == hi:
			return nil, fmt.Sprintf("%s and %s are the same number with different zero padding", a, b), true
		}
		return newPattern(segment{lit: l[:i]}, segment{items: []numRange{{lo, hi, len(a)}}}, segment{lit: l[li:]}), "", true
	}
	return nil, "", false
}

// increment parses name+count (s[start:plus] + s[plus+1:end]) as xCAT does:
// the number counted from is the first one followed by '.' or the end.
func (p *parser) increment(start, plus, end int) (*pattern, error) {
	s := p.expr
	front, inc := s[start:plus], s[plus+1:end]
	if inc == "" || strings.Trim(inc, "0123456789") != "" {
		return nil, p.errAt(plus, s[plus:end], "'+' must be followed by a count, as in cn01+3 (cn01 to cn04)")
	}
	ds, de := -1, -1
	for i := 0; i < len(front); {
		e := run(front, i)
		if isDigit(front[i]) && (e == len(front) || front[e] == '.') {
			ds, de = i, e
			break
		}
		i = e
	}
	if ds < 0 {
		return nil, p.errAt(start, s[start:end], "%q: '+' counts up from a name ending in a number, as in cn01+3 or cn01.ib+3", s[start:end])
	}
	lo, ok1 := parseNum(front[ds:de])
	n, ok2 := parseNum(inc)
	if !ok1 || !ok2 || lo > maxValue-n {
		return nil, p.errAt(start, s[start:end], "%q: %s", s[start:end], tooLong)
	}
	return newPattern(segment{lit: front[:ds]}, segment{items: []numRange{{lo, lo + n, de - ds}}}, segment{lit: front[de:]}), nil
}

// brackets parses a name with [...] groups such as rack[1-2]node[01-04].
func (p *parser) brackets(start int, text string) (*pattern, error) {
	var segs []segment
	lit := 0
	for i := 0; i < len(text); i++ {
		if text[i] != '[' {
			continue
		}
		if i > lit {
			segs = append(segs, segment{lit: text[lit:i]})
		}
		end := i + strings.IndexByte(text[i:], ']')
		items, err := p.bracketItems(start+i+1, text[i+1:end])
		if err != nil {
			return nil, err
		}
		segs = append(segs, segment{items: items})
		i = end
		lit = end + 1
	}
	if lit < len(text) {
		segs = append(segs, segment{lit: text[lit:]})
	}
	return newPattern(segs...), nil
}

// bracketItems parses the inside of [...]: items N, N-M or N:M separated by
// commas. pos is the offset of body in the expression.
func (p *parser) bracketItems(pos int, body string) ([]numRange, error) {
	if body == "" {
		return nil, p.errAt(pos-1, "[]", "empty brackets: write numbers or ranges inside, as in cn[001-100]")
	}
	var items []numRange
	for off := 0; off <= len(body); {
		end := strings.IndexByte(body[off:], ',')
		if end < 0 {
			end = len(body)
		} else {
			end += off
		}
		item := body[off:end]
		at := pos + off
		sep := strings.IndexAny(item, "-:")
		lo, hi := item, item
		if sep >= 0 {
			lo, hi = item[:sep], item[sep+1:]
		}
		if lo == "" || hi == "" || strings.ContainsAny(hi, "-:") {
			if item == "" {
				return nil, p.errAt(at, ",", "empty item inside [...]: write a number or a range between the commas")
			}
			return nil, p.errAt(at, item, "%q is not a number or a range: write N or N-M inside [...], as in cn[001-100,200]", item)
		}
		a, ok1 := parseNum(lo)
		b, ok2 := parseNum(hi)
		switch {
		case !ok1 || !ok2:
			return nil, p.errAt(at, item, "%q: %s", item, tooLong)
		case a > b:
			return nil, p.errAt(at, item, "reversed range %q: %s is greater than %s; write the smaller number first", item, lo, hi)
		case a == b && lo != hi:
			return nil, p.errAt(at, item, "%q: %s and %s are the same number with different zero padding", item, lo, hi)
		}
		items = append(items, numRange{a, b, len(lo)})
		off = end + 1
	}
	return items, nil
}
