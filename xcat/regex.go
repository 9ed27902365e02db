package xcat

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
)

// xCAT lets a row keyed by a group give each node of the group its own
// value through a regular expression on the node name:
//
//	/pattern/replacement/   the node name with the match replaced, as
//	                        Perl's s/pattern/replacement/ ($1, ${1});
//	|pattern|replacement|   the replacement alone, after matching the
//	                        node name; every parenthesised part of the
//	                        replacement is an arithmetic expression:
//	                        |\D+(\d+)|10.0.0.($1+0)| gives cn007 the
//	                        address 10.0.0.7, |\D+(\d+)|sn(($1%3)+1)|
//	                        gives cn007 sn2.
//
// The arithmetic has integers, + - * / % and parentheses, as xCAT allows.
// Captured digits are decimal ("010" is ten, not Perl's octal eight); a
// division that leaves a fraction gives a decimal fraction, as Perl does
// (which no address or name accepts, so such a row is reported). Patterns
// are Go (RE2) regular expressions: xCAT's usual \d, \D, \w, anchors and
// groups work; back-references and look-around do not and are reported.

// ErrNoMatch: the pattern of a regular-expression value does not match
// the node name.
var ErrNoMatch = errors.New("xcat: regular expression does not match the node")

// Limits that keep a hostile table cheap to evaluate.
const (
	maxRegexValue = 1024
	maxExprDepth  = 32
	maxNumDigits  = 18
)

// IsRegex reports whether v is an xCAT regular-expression value
// (/pattern/replacement/ or |pattern|replacement|).
func IsRegex(v string) bool {
	return len(v) > 2 && (v[0] == '/' || v[0] == '|') && v[len(v)-1] == v[0] && strings.Count(v, v[:1]) >= 3
}

// Eval returns the value the regular-expression value v gives node. Errors
// wrap ErrInvalid (a malformed value) or ErrNoMatch.
func Eval(v, node string) (string, error) {
	if !IsRegex(v) {
		return "", fmt.Errorf("%w: %q is not a regular-expression value (/pattern/replacement/ or |pattern|replacement|)", ErrInvalid, clip(v))
	}
	if len(v) > maxRegexValue {
		return "", fmt.Errorf("%w: regular-expression value longer than %d characters", ErrInvalid, maxRegexValue)
	}
	d := v[0]
	body := v[1 : len(v)-1]
	i := strings.LastIndexByte(body, d)
	pattern, repl := body[:i], body[i+1:]
	re, err := regexp.Compile(pattern)
	if err != nil {
		return "", fmt.Errorf("%w: pattern %q: %v", ErrInvalid, clip(pattern), err)
	}
	m := re.FindStringSubmatchIndex(node)
	if m == nil {
		return "", fmt.Errorf("%w: %q does not match %s", ErrNoMatch, clip(pattern), node)
	}
	groups := make([]string, len(m)/2)
	for g := range groups {
		if m[2*g] >= 0 {
			groups[g] = node[m[2*g]:m[2*g+1]]
		}
	}
	if d == '/' {
		out, err := expandPlain(repl, groups)
		if err != nil {
			return "", err
		}
		return node[:m[0]] + out + node[m[1]:], nil
	}
	return expandArith(repl, groups)
}

// group reads $N or ${N} at s[i] (s[i] == '$') and returns the group
// number and the length read.
func group(s string, i int) (int, int, error) {
	j := i + 1
	brace := j < len(s) && s[j] == '{'
	if brace {
		j++
	}
	k := j
	for k < len(s) && s[k] >= '0' && s[k] <= '9' && k-j < 3 {
		k++
	}
	if k == j {
		return 0, 0, fmt.Errorf("%w: '$' at %d is not followed by a group number", ErrInvalid, i+1)
	}
	n, _ := strconv.Atoi(s[j:k])
	if brace {
		if k >= len(s) || s[k] != '}' {
			return 0, 0, fmt.Errorf("%w: ${ at %d is not closed", ErrInvalid, i+1)
		}
		k++
	}
	return n, k - i, nil
}

func groupValue(groups []string, n int) (string, error) {
	if n >= len(groups) {
		return "", fmt.Errorf("%w: $%d: the pattern has only %d groups", ErrInvalid, n, len(groups)-1)
	}
	return groups[n], nil
}

// expandPlain replaces $N and ${N} with the groups; \$ is a literal '$'.
func expandPlain(repl string, groups []string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(repl); i++ {
		switch c := repl[i]; {
		case c == '\\' && i+1 < len(repl) && repl[i+1] == '$':
			b.WriteByte('$')
			i++
		case c == '$':
			n, l, err := group(repl, i)
			if err != nil {
				return "", err
			}
			v, err := groupValue(groups, n)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i += l - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// expandArith expands the replacement of the |...|...| form: groups
// outside parentheses, arithmetic inside.
func expandArith(repl string, groups []string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(repl); i++ {
		switch c := repl[i]; c {
		case '(':
			end, err := closing(repl, i)
			if err != nil {
				return "", err
			}
			p := &arith{s: repl[i+1 : end], groups: groups}
			v, err := p.eval()
			if err != nil {
				return "", fmt.Errorf("%w: arithmetic (%s): %v", ErrInvalid, clip(repl[i+1:end]), err)
			}
			b.WriteString(formatNumber(v))
			i = end
		case ')':
			return "", fmt.Errorf("%w: ')' at %d has no '('", ErrInvalid, i+1)
		case '$':
			n, l, err := group(repl, i)
			if err != nil {
				return "", err
			}
			v, err := groupValue(groups, n)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i += l - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// closing returns the index of the ')' that closes the '(' at s[open].
func closing(s string, open int) (int, error) {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i, nil
			}
		}
	}
	return 0, fmt.Errorf("%w: '(' at %d is not closed", ErrInvalid, open+1)
}

func formatNumber(v *big.Rat) string {
	if v.IsInt() {
		return v.Num().String()
	}
	s := strings.TrimRight(v.FloatString(15), "0")
	return strings.TrimSuffix(s, ".")
}

// arith is a recursive-descent evaluator of integer arithmetic with
// + - * / %, unary signs, parentheses and $N.
type arith struct {
	s      string
	i      int
	depth  int
	groups []string
}

func (p *arith) eval() (*big.Rat, error) {
	v, err := p.expr()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i < len(p.s) {
		return nil, fmt.Errorf("unexpected %q", p.s[p.i:])
	}
	return v, nil
}

func (p *arith) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *arith) expr() (*big.Rat, error) {
	v, err := p.term()
	for err == nil {
		p.space()
		if p.i >= len(p.s) || (p.s[p.i] != '+' && p.s[p.i] != '-') {
			break
		}
		op := p.s[p.i]
		p.i++
		var w *big.Rat
		if w, err = p.term(); err == nil {
			if op == '+' {
				v = new(big.Rat).Add(v, w)
			} else {
				v = new(big.Rat).Sub(v, w)
			}
		}
	}
	return v, err
}

func (p *arith) term() (*big.Rat, error) {
	v, err := p.factor()
	for err == nil {
		p.space()
		if p.i >= len(p.s) || strings.IndexByte("*/%", p.s[p.i]) < 0 {
			break
		}
		op := p.s[p.i]
		p.i++
		var w *big.Rat
		if w, err = p.factor(); err == nil {
			v, err = applyOp(op, v, w)
		}
	}
	return v, err
}

func applyOp(op byte, v, w *big.Rat) (*big.Rat, error) {
	switch op {
	case '*':
		return new(big.Rat).Mul(v, w), nil
	case '/':
		if w.Sign() == 0 {
			return nil, errors.New("division by zero")
		}
		return new(big.Rat).Quo(v, w), nil
	}
	if !v.IsInt() || !w.IsInt() {
		return nil, errors.New("% needs whole numbers")
	}
	if w.Sign() == 0 {
		return nil, errors.New("modulo by zero")
	}
	// Perl's % takes the sign of the right operand.
	m := new(big.Int).Mod(v.Num(), new(big.Int).Abs(w.Num()))
	if w.Sign() < 0 && m.Sign() != 0 {
		m.Add(m, w.Num())
	}
	return new(big.Rat).SetInt(m), nil
}

func (p *arith) factor() (*big.Rat, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxExprDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxExprDepth)
	}
	p.space()
	if p.i >= len(p.s) {
		return nil, errors.New("expression ends early")
	}
	switch c := p.s[p.i]; {
	case c == '-' || c == '+':
		p.i++
		v, err := p.factor()
		if err != nil || c == '+' {
			return v, err
		}
		return new(big.Rat).Neg(v), nil
	case c == '(':
		p.i++
		v, err := p.expr()
		if err != nil {
			return nil, err
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return nil, errors.New("missing ')'")
		}
		p.i++
		return v, nil
	case c == '$':
		n, l, err := group(p.s, p.i)
		if err != nil {
			return nil, err
		}
		p.i += l
		g, err := groupValue(p.groups, n)
		if err != nil {
			return nil, err
		}
		return number(g, fmt.Sprintf("$%d", n))
	case c >= '0' && c <= '9':
		j := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		return number(p.s[j:p.i], "number")
	}
	return nil, fmt.Errorf("unexpected %q", p.s[p.i:])
}

func number(s, what string) (*big.Rat, error) {
	t := strings.TrimLeft(s, "0")
	if t == "" && s != "" {
		t = "0"
	}
	if t == "" || len(t) > maxNumDigits || strings.Trim(t, "0123456789") != "" {
		return nil, fmt.Errorf("%s = %q is not a whole number of at most %d digits", what, clip(s), maxNumDigits)
	}
	v, _ := new(big.Rat).SetString(t)
	return v, nil
}
