package sshkeys

import (
	"fmt"
	"strings"
)

// The markers around the lines mnpool owns in authorized_keys and known_hosts.
// Lines outside them belong to the administrator and are kept as they are.
const (
	BeginMarker = "# BEGIN mnpool managed keys"
	EndMarker   = "# END mnpool managed keys"
)

// splitLines splits data at '\n'. A final newline does not start a line;
// each line keeps any '\r' and surrounding blanks, so that lines can be
// written back byte for byte.
func splitLines(data []byte) []string {
	if len(data) == 0 {
		return nil
	}
	lines := strings.Split(string(data), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func isBegin(line string) bool { return strings.TrimSpace(line) == BeginMarker }
func isEnd(line string) bool   { return strings.TrimSpace(line) == EndMarker }

// BlockError reports unbalanced or repeated managed-block markers. It
// matches ErrBadBlock with errors.Is.
type BlockError struct {
	Line int // 1-based line of the offending marker
	Msg  string
}

func (e *BlockError) Error() string {
	return fmt.Sprintf("%v: line %d: %s", ErrBadBlock, e.Line, e.Msg)
}

// Unwrap returns ErrBadBlock.
func (e *BlockError) Unwrap() error { return ErrBadBlock }

// findBlock returns the indexes of the begin and end marker lines, or -1, -1
// when there is no block. A block that is not closed, an end without a
// begin, or a second block is a *BlockError: re-rendering such a file would
// mean guessing which lines the administrator wrote.
func findBlock(lines []string) (begin, end int, err error) {
	begin, end = -1, -1
	fail := func(i int, format string, args ...any) (int, int, error) {
		return -1, -1, &BlockError{Line: i + 1, Msg: fmt.Sprintf(format, args...)}
	}
	for i, l := range lines {
		switch {
		case isBegin(l) && begin >= 0 && end < 0:
			return fail(i, "%q inside the block opened on line %d", BeginMarker, begin+1)
		case isBegin(l) && begin >= 0:
			return fail(i, "a second block (the first is lines %d-%d)", begin+1, end+1)
		case isBegin(l):
			begin = i
		case isEnd(l) && (begin < 0 || end >= 0):
			return fail(i, "%q without %q before it", EndMarker, BeginMarker)
		case isEnd(l):
			end = i
		}
	}
	if begin >= 0 && end < 0 {
		return fail(begin, "%q is never closed by %q", BeginMarker, EndMarker)
	}
	return begin, end, nil
}

// replaceBlock returns existing with its managed block replaced by body
// (appended at the end when there is none). Lines outside the block are kept
// when keep (if not nil) says so; keep gets the 0-based line index and text.
// The result always ends with a newline.
func replaceBlock(existing []byte, body []string, keep func(i int, line string) bool) ([]byte, error) {
	lines := splitLines(existing)
	begin, end, err := findBlock(lines)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	put := func(from, to int) {
		for i := from; i < to; i++ {
			if keep == nil || keep(i, lines[i]) {
				b.WriteString(lines[i])
				b.WriteByte('\n')
			}
		}
	}
	if begin < 0 {
		begin, end = len(lines), len(lines)-1
	}
	put(0, begin)
	b.WriteString(BeginMarker + "\n")
	for _, l := range body {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	b.WriteString(EndMarker + "\n")
	put(end+1, len(lines))
	return []byte(b.String()), nil
}
