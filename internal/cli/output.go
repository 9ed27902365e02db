package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mnpool/mnpool/atomicfile"
)

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints aligned columns; the header is upper-cased.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	for i := range header {
		header[i] = strings.ToUpper(header[i])
	}
	t.row(header...)
	return t
}

func (t *table) row(cols ...string) {
	for i, c := range cols {
		if c == "" {
			cols[i] = "-"
		}
	}
	fmt.Fprintln(t.tw, strings.Join(cols, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// checkOutputFlag refuses, as a bad command line (exit status 2), an
// output-file flag (--out, --output, --file) that was given but is empty,
// names a directory, a symbolic link or a device: the file is written with
// package atomicfile, which never writes through a link. Commands call it
// before they read or write anything. A flag that was not given passes.
func checkOutputFlag(cmd *cobra.Command, flag string) error {
	f := cmd.Flags().Lookup(flag)
	if f == nil || !f.Changed {
		return nil
	}
	path := f.Value.String()
	err := atomicfile.CheckPath(path)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, atomicfile.ErrEmptyPath):
		return usagef("--%s is empty: give the file to write", flag)
	case errors.Is(err, atomicfile.ErrDirectory):
		return usagef("--%s %s is a directory: give the file to write", flag, path)
	case errors.Is(err, atomicfile.ErrSymlink):
		return usagef("--%s %s is a symbolic link, which mnpool does not write through: give the file it points to", flag, path)
	case errors.Is(err, atomicfile.ErrNotRegular):
		return usagef("--%s %s is not a regular file", flag, path)
	}
	return err
}
