package xcat

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Tabdump is one xCAT table as `tabdump TABLE` writes it: a header line
// "#col1,col2,..." and then one CSV line per row, every defined value in
// double quotes (a quote inside doubled), undefined values empty.
type Tabdump struct {
	Columns []string
	Rows    []TabdumpRow
	index   map[string]int
}

// TabdumpRow is one row: its fields in header order and the line it
// starts on.
type TabdumpRow struct {
	Line   int
	Fields []string
}

// Has reports whether the table has column col.
func (t *Tabdump) Has(col string) bool {
	_, ok := t.index[col]
	return ok
}

// Get returns row's value of column col ("" when the table has no such
// column).
func (t *Tabdump) Get(row TabdumpRow, col string) string {
	if i, ok := t.index[col]; ok && i < len(row.Fields) {
		return row.Fields[i]
	}
	return ""
}

// Disabled reports whether the row is commented out by its disable
// column ("1" or "yes", as xCAT reads it).
func (t *Tabdump) Disabled(row TabdumpRow) bool {
	d := strings.ToLower(strings.TrimSpace(t.Get(row, "disable")))
	return d == "1" || d == "yes"
}

// maxTabdumpLine bounds the header line.
const maxTabdumpLine = 64 << 10

// ReadTabdump parses one table. Lines after the header that start with '#'
// are comments (as tabrestore reads them). Errors wrap ErrInvalid and name
// the line.
func ReadTabdump(r io.Reader) (*Tabdump, error) {
	br := bufio.NewReader(r)
	head, err := br.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: tabdump: reading the header: %v", ErrInvalid, err)
	}
	if len(head) > maxTabdumpLine {
		return nil, fmt.Errorf("%w: tabdump line 1: header longer than %d bytes", ErrInvalid, maxTabdumpLine)
	}
	head = strings.TrimPrefix(head, "\ufeff")
	head = strings.TrimRight(head, "\r\n")
	if strings.TrimSpace(head) == "" {
		return nil, fmt.Errorf("%w: tabdump: the file is empty; want a header line such as #node,groups,...", ErrInvalid)
	}
	if !strings.HasPrefix(head, "#") {
		return nil, fmt.Errorf("%w: tabdump line 1: %q is not a header; want '#' and the column names, as tabdump writes them", ErrInvalid, clip(head))
	}
	t := &Tabdump{index: map[string]int{}}
	for i, c := range strings.Split(head[1:], ",") {
		c = strings.ToLower(strings.TrimSpace(c))
		if !validColumn(c) {
			return nil, fmt.Errorf("%w: tabdump line 1: column %d name %q: want lower-case letters, digits and '_'", ErrInvalid, i+1, clip(c))
		}
		if _, dup := t.index[c]; dup {
			return nil, fmt.Errorf("%w: tabdump line 1: column %q appears twice", ErrInvalid, c)
		}
		t.index[c] = i
		t.Columns = append(t.Columns, c)
	}
	cr := csv.NewReader(br)
	cr.Comment = '#'
	cr.FieldsPerRecord = len(t.Columns)
	cr.ReuseRecord = false
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				if errors.Is(pe.Err, csv.ErrFieldCount) {
					return nil, fmt.Errorf("%w: tabdump line %d: %d fields, but the header names %d columns (%s)", ErrInvalid, pe.StartLine+1, len(rec), len(t.Columns), strings.Join(t.Columns, ","))
				}
				return nil, fmt.Errorf("%w: tabdump line %d: %v", ErrInvalid, pe.StartLine+1, pe.Err)
			}
			return nil, fmt.Errorf("%w: tabdump: %v", ErrInvalid, err)
		}
		line, _ := cr.FieldPos(0)
		for i, f := range rec {
			if !utf8.ValidString(f) || strings.ContainsRune(f, 0) {
				return nil, fmt.Errorf("%w: tabdump line %d: column %s holds bytes that are not text", ErrInvalid, line+1, t.Columns[i])
			}
		}
		t.Rows = append(t.Rows, TabdumpRow{Line: line + 1, Fields: rec})
	}
	return t, nil
}

func validColumn(c string) bool {
	if c == "" || len(c) > 64 {
		return false
	}
	for _, r := range c {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// WriteTabdump writes a table as tabdump does: the header "#col,...", then
// one line per row, every non-empty value in double quotes (a quote inside
// doubled), empty values as nothing. rows are written in the order given.
func WriteTabdump(w io.Writer, columns []string, rows [][]string) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("#" + strings.Join(columns, ",") + "\n")
	for _, r := range rows {
		if len(r) != len(columns) {
			return fmt.Errorf("%w: tabdump row %q has %d fields for %d columns", ErrInvalid, r, len(r), len(columns))
		}
		for i, v := range r {
			if i > 0 {
				bw.WriteByte(',')
			}
			if v != "" {
				bw.WriteString(`"` + strings.ReplaceAll(v, `"`, `""`) + `"`)
			}
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}
