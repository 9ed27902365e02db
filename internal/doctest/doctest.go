// Package doctest turns the runnable command blocks of the Markdown docs
// into testscript scripts, so that a doc whose commands stop working fails
// the test suite.
//
// A runnable block is a ```sh fence directly after the line
//
//	<!-- doctest -->
//
// and holds a terminal transcript: "$ " starts a command (a trailing "\"
// continues it), the lines after it are its output, each matched as a
// whole line of stdout with runs of blanks matching any blanks (table
// columns), "..." as a line skips output the doc does not show, and a line
// ending in "..." matches by prefix. "[exit N]" says the command exits
// with status N; its output is then matched against stderr. Lines starting
// with "#" are comments. All runnable blocks of one file form one script,
// in order, in one scratch directory: later blocks see the pool the
// earlier ones made. sqlite:/any/dir/NAME.db becomes a file in the scratch
// directory.
package doctest

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Marker is the HTML comment (invisible when rendered) that makes the
// next ```sh block runnable.
const Marker = "<!-- doctest -->"

// Step is one command of a transcript with the output the doc shows.
type Step struct {
	Line   int      // line of the command in the Markdown file
	Args   []string // the command, split as sh would
	Exit   int      // expected exit status
	Output []string // expected output lines ("..." skips)
}

// Extract returns the steps of every runnable block of a Markdown file.
func Extract(md []byte) ([]Step, error) {
	var steps []Step
	sc := bufio.NewScanner(bytes.NewReader(md))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	n, marked, in := 0, false, false
	var cur *Step
	var cont string
	flush := func() {
		if cur != nil {
			steps = append(steps, *cur)
			cur = nil
		}
	}
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case !in && trimmed == Marker:
			marked = true
			continue
		case !in && marked && strings.HasPrefix(trimmed, "```"):
			if lang := strings.TrimPrefix(trimmed, "```"); lang != "sh" && lang != "console" {
				return nil, fmt.Errorf("line %d: a %s block must be ```sh or ```console, not %q", n, Marker, trimmed)
			}
			in, marked = true, false
			continue
		case !in:
			marked = marked && trimmed == ""
			continue
		case trimmed == "```":
			if cont != "" {
				return nil, fmt.Errorf("line %d: the block ends inside a continued command", n)
			}
			flush()
			in = false
			continue
		}
		if cont != "" || strings.HasPrefix(line, "$ ") {
			cmd := cont + strings.TrimPrefix(line, "$ ")
			if strings.HasSuffix(cmd, "\\") {
				cont = strings.TrimSuffix(cmd, "\\") + " "
				continue
			}
			cont = ""
			flush()
			args, err := SplitWords(cmd)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			if len(args) == 0 {
				return nil, fmt.Errorf("line %d: empty command", n)
			}
			cur = &Step{Line: n, Args: args}
			continue
		}
		if cur == nil {
			if trimmed == "" || strings.HasPrefix(trimmed, "#") {
				continue
			}
			return nil, fmt.Errorf("line %d: output %q before any \"$ \" command", n, line)
		}
		if m := exitRe.FindStringSubmatch(trimmed); m != nil {
			cur.Exit, _ = strconv.Atoi(m[1])
			continue
		}
		if trimmed != "" {
			cur.Output = append(cur.Output, line)
		}
	}
	if in {
		return nil, fmt.Errorf("a %s block is not closed", Marker)
	}
	return steps, sc.Err()
}

var exitRe = regexp.MustCompile(`^\[exit (\d+)\]$`)

// SplitWords splits a command line as sh would for the plain words docs
// use: blanks separate, '...' and "..." quote, \ escapes, and an unquoted
// "#" after a blank starts a comment. Pipes, redirections and $(...) are
// refused: a runnable doc runs one program per command.
func SplitWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '#' && !inWord:
			return words, nil
		case c == '\'' || c == '"':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				return nil, fmt.Errorf("unterminated %c in %q", c, s)
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			w.WriteByte(s[i])
			inWord = true
		case strings.IndexByte("|;&<>`", c) >= 0 || (c == '$' && i+1 < len(s) && s[i+1] == '('):
			return nil, fmt.Errorf("%q: pipes, redirections and substitutions are not run by the doc tests; show one command per line", s)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

var sqliteRe = regexp.MustCompile(`sqlite:/\S*/([^/\s]+)$`)

// Script renders steps as a testscript script. Every command runs through
// the "doc" command (status check, then output checks); "export K=V"
// becomes testscript's env.
func Script(name string, steps []Step) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# generated from %s; edit the doc, not this\n", name)
	for _, s := range steps {
		args := make([]string, len(s.Args))
		for i, a := range s.Args {
			if m := sqliteRe.FindStringSubmatchIndex(a); m != nil {
				a = a[:m[0]] + "sqlite:$WORK/" + a[m[2]:m[3]]
			}
			args[i] = quote(a)
		}
		fmt.Fprintf(&b, "\n# %s:%d\n", name, s.Line)
		if s.Args[0] == "export" {
			fmt.Fprintf(&b, "env %s\n", strings.Join(args[1:], " "))
			continue
		}
		fmt.Fprintf(&b, "doc %d %s\n", s.Exit, strings.Join(args, " "))
		stream := "stdout"
		if s.Exit != 0 {
			stream = "stderr"
		}
		for _, o := range s.Output {
			if strings.TrimSpace(o) == "..." {
				continue
			}
			fmt.Fprintf(&b, "%s %s\n", stream, quoteAlways(LineRegexp(o)))
		}
	}
	return b.String()
}

// LineRegexp matches a whole output line as the doc shows it: runs of
// blanks match any run of blanks, a trailing "..." any rest of the line.
func LineRegexp(line string) string {
	line = strings.TrimSpace(line)
	prefix := strings.HasSuffix(line, "...")
	line = strings.TrimSuffix(line, "...")
	parts := strings.Fields(line)
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	re := `(?m)^\s*` + strings.Join(parts, `\s+`)
	if prefix {
		return re
	}
	return re + `\s*$`
}

// quote quotes a word for testscript, which knows only single quotes (a
// doubled single quote inside is a literal one); $VAR stays expanded.
func quote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t'\"#\\\n") {
		return s
	}
	return quoteAlways(s)
}

// quoteAlways single-quotes s: no blank splits it, no $ expands in it.
func quoteAlways(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
