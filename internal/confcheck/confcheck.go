// Package confcheck runs a daemon's own configuration checker on rendered
// data: it writes the data to a private temporary file and runs the
// checker on it, so a file is validated by the program that will read it
// before it is installed.
package confcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// ErrNotFound: the checker program is not installed.
var ErrNotFound = errors.New("confcheck: checker not found")

// ErrRejected: the checker ran and refused the data.
var ErrRejected = errors.New("confcheck: rejected")

// Checker describes one daemon's check.
type Checker struct {
	// Program is the checker's path, or its name to look up in PATH.
	Program string
	// Package is the Debian package that ships it, for the error message.
	Package string
	// FileName is the temporary file's base name (some checkers care).
	FileName string
	// Args builds the arguments from the temporary file's path.
	Args func(file string) []string
}

// Run checks data. It returns an error wrapping ErrNotFound when the
// program is missing, or ErrRejected with the checker's output when it
// refuses the data.
func (c Checker) Run(ctx context.Context, data []byte) error {
	prog := c.Program
	if filepath.Base(prog) == prog {
		p, err := exec.LookPath(prog)
		if err != nil {
			return fmt.Errorf("%w: %s (Debian package %s): %v", ErrNotFound, prog, c.Package, err)
		}
		prog = p
	}
	dir, err := os.MkdirTemp("", "mnpool-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	f := filepath.Join(dir, c.FileName)
	if err := os.WriteFile(f, data, 0o600); err != nil {
		return err
	}
	args := c.Args(f)
	out, err := exec.CommandContext(ctx, prog, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s %s: %v: %s", ErrRejected, filepath.Base(prog), args[0], err, bytes.TrimSpace(out))
	}
	return nil
}
