package noderange

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Sentinel errors. Every error returned by this package matches one of them
// with errors.Is.
var (
	// ErrSyntax: the noderange is not well formed. The error is a
	// *SyntaxError that names the column and the offending text.
	ErrSyntax = errors.New("noderange: syntax error")
	// ErrUnknown: names that are neither a node nor a group. The error is an
	// *UnknownError that lists all of them.
	ErrUnknown = errors.New("noderange: unknown nodes or groups")
	// ErrEmpty: the noderange is empty, or it selects no node.
	ErrEmpty = errors.New("noderange: no nodes selected")
	// ErrTooLarge: the ranges would expand to more names than the limit
	// (DefaultLimit, see WithLimit), or the expression (MaxExprLen) or a
	// ^file (MaxFileSize) is too long. A number with more than 18 digits is
	// an ErrSyntax.
	ErrTooLarge = errors.New("noderange: too large")
	// ErrFile: a ^file term could not be read, or files are not enabled
	// (see WithFileOpener).
	ErrFile = errors.New("noderange: node list file")
	// ErrInvalidName: a node or group name given to NewStatic or
	// ValidateName cannot be written in a noderange.
	ErrInvalidName = errors.New("noderange: invalid node or group name")
)

// SyntaxError describes a malformed noderange. It matches ErrSyntax.
type SyntaxError struct {
	Expr string // the noderange (or the line of a node list file)
	Pos  int    // byte offset of the offending text in Expr
	Text string // the offending text
	Msg  string // what is wrong and what is allowed
	File string // set when Expr is a line of a ^file
	Line int    // line number in File, from 1
}

// maxShown is how much of a long expression an error message quotes.
const maxShown = 60

func (e *SyntaxError) Error() string {
	var b strings.Builder
	b.WriteString("noderange: syntax error")
	if e.File != "" {
		fmt.Fprintf(&b, " in %s line %d", e.File, e.Line)
	}
	fmt.Fprintf(&b, " at column %d of %s: ", e.Pos+1, quoteAround(e.Expr, e.Pos))
	b.WriteString(e.Msg)
	return b.String()
}

// Is reports whether target is ErrSyntax.
func (e *SyntaxError) Is(target error) bool { return target == ErrSyntax }

// quoteAround quotes s, or a window of it around pos when s is long.
func quoteAround(s string, pos int) string {
	if len(s) <= maxShown {
		return strconv.Quote(s)
	}
	lo := max(pos-maxShown/2, 0)
	hi := min(lo+maxShown, len(s))
	pre, post := "", ""
	if lo > 0 {
		pre = "..."
	}
	if hi < len(s) {
		post = "..."
	}
	return pre + strconv.Quote(s[lo:hi]) + post
}

// UnknownError lists the names of a noderange that are neither a node nor a
// group of the Universe. It matches ErrUnknown.
type UnknownError struct {
	Names []string // every unknown name, in natural order, without duplicates
}

// maxListed is how many unknown names an error message lists.
const maxListed = 20

func (e *UnknownError) Error() string {
	var b strings.Builder
	b.WriteString(ErrUnknown.Error())
	b.WriteString(": ")
	for i, n := range e.Names {
		if i == maxListed {
			fmt.Fprintf(&b, " and %d more", len(e.Names)-maxListed)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(n)
	}
	return b.String()
}

// Is reports whether target is ErrUnknown.
func (e *UnknownError) Is(target error) bool { return target == ErrUnknown }
