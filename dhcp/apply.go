package dhcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/mnpool/mnpool/atomicfile"
)

// Checker runs a daemon's own configuration check: `dhcpd -t -cf FILE`
// or `kea-dhcp4 -t FILE`. The zero value looks the daemons up in $PATH,
// then in /usr/sbin.
type Checker struct {
	// DHCPD and Kea are the daemon programs (names or paths); defaults
	// "dhcpd" and "kea-dhcp4".
	DHCPD string
	Kea   string
}

// Program returns the path of the daemon that checks format f, and
// whether it is installed.
func (c Checker) Program(f Format) (string, bool) {
	name := c.DHCPD
	def := "dhcpd"
	if f == FormatKea {
		name, def = c.Kea, "kea-dhcp4"
	}
	if name == "" {
		name = def
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	if !strings.Contains(name, "/") {
		p := filepath.Join("/usr/sbin", name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return name, false
}

// CheckFile runs the daemon's check on the file at path. It fails with
// ErrCheck, carrying the daemon's messages, when the daemon rejects the
// file or is not installed.
func (c Checker) CheckFile(ctx context.Context, f Format, path string) error {
	prog, ok := c.Program(f)
	if !ok {
		return fmt.Errorf("%w: %s is not installed (looked in $PATH and /usr/sbin)", ErrCheck, prog)
	}
	args := []string{"-t", "-cf", path}
	if f == FormatKea {
		args = []string{"-t", path}
	}
	cmd := exec.CommandContext(ctx, prog, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %s %s: %v\n%s", ErrCheck, prog, strings.Join(args, " "), err, checkMessages(out.String()))
	}
	return nil
}

// Check writes data to a temporary file in dir (os.TempDir() when empty)
// and runs CheckFile on it.
func (c Checker) Check(ctx context.Context, f Format, data []byte, dir string) error {
	if dir == "" {
		dir = os.TempDir()
	}
	tmp, err := os.CreateTemp(dir, ".mnpool-dhcp-check-*")
	if err != nil {
		return fmt.Errorf("dhcp: check: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("dhcp: check: writing %s: %w", tmp.Name(), err)
	}
	return c.CheckFile(ctx, f, tmp.Name())
}

// checkMessages keeps the lines of a daemon's check output that say what
// is wrong (dhcpd prints a banner and advice around them), at most 20.
func checkMessages(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		t := strings.TrimSpace(l)
		switch {
		case t == "",
			strings.HasPrefix(t, "Internet Systems Consortium"),
			strings.HasPrefix(t, "Copyright"),
			strings.HasPrefix(t, "All rights reserved"),
			strings.HasPrefix(t, "For info, please visit"),
			strings.HasPrefix(t, "If you think you have received"),
			strings.HasPrefix(t, "than a configuration issue"),
			strings.HasPrefix(t, "bugs on either our web page"),
			strings.HasPrefix(t, "before submitting a bug"),
			strings.HasPrefix(t, "process and the information"),
			t == "exiting.":
			continue
		}
		keep = append(keep, l)
	}
	if len(keep) > 20 {
		keep = append(keep[:20], "...")
	}
	return strings.Join(keep, "\n")
}

// CheckMode says when Apply runs the daemon's check.
type CheckMode int

// Check modes.
const (
	// CheckAuto checks when the daemon is installed (the default).
	CheckAuto CheckMode = iota
	// CheckRequired fails with ErrCheck when the daemon is not installed.
	CheckRequired
	// CheckNever does not check.
	CheckNever
)

// Applier installs a rendered configuration: it checks it with the real
// daemon, writes it atomically (temporary file, fsync, rename) keeping
// the previous file as a backup, and makes the daemon load it. Nothing is
// written, checked or reloaded when the file holds the same bytes.
type Applier struct {
	// Path of the configuration file (default Format.DefaultPath()).
	Path string
	// Format of the data (default FormatISC).
	Format Format
	// Backup is the suffix of the copy of the previous file (default
	// ".bak"; "-" keeps none).
	Backup string
	// Mode of the file (default 0644).
	Mode fs.FileMode
	// Check says when the daemon's check runs; Checker runs it.
	Check   CheckMode
	Checker Checker
	// ReloadCommand, when set, is run after a write (argv; no shell), for
	// example {"systemctl", "restart", "isc-dhcp-server"}.
	ReloadCommand []string
	// KeaControlSocket, for Kea when ReloadCommand is empty, is the
	// control socket to send config-reload to.
	KeaControlSocket string
	// Logger (default: discard).
	Logger *slog.Logger
}

// Result says what Apply did.
type Result struct {
	Path    string `json:"path"`
	Changed bool   `json:"changed"`
	// Checked names the daemon that accepted the file ("" if unchecked).
	Checked string `json:"checked,omitempty"`
	// Backup is the path of the previous file's copy ("" if none).
	Backup string `json:"backup,omitempty"`
	// Reloaded says how the daemon was told ("" if it was not).
	Reloaded string `json:"reloaded,omitempty"`
	// NotReloaded says why a changed file was not loaded by the daemon
	// although a way to reload was configured (a Kea control socket that
	// is not there: Kea is not running and reads the file when it starts).
	NotReloaded string `json:"not_reloaded,omitempty"`
}

func (a *Applier) defaults() {
	if a.Format == "" {
		a.Format = FormatISC
	}
	if a.Path == "" {
		a.Path = a.Format.DefaultPath()
	}
	if a.Backup == "" {
		a.Backup = ".bak"
	}
	if a.Mode == 0 {
		a.Mode = 0o644
	}
	if a.Logger == nil {
		a.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Apply installs data. On ErrCheck nothing was written; on ErrReload the
// file was written (Result.Changed) but the daemon still runs the old one.
func (a *Applier) Apply(ctx context.Context, data []byte) (Result, error) {
	a.defaults()
	res := Result{Path: a.Path}
	old, err := atomicfile.ReadFile(a.Path) // never through a symlink
	switch {
	case err == nil && bytes.Equal(old, data):
		a.Logger.Debug("dhcp configuration unchanged", "path", a.Path)
		return res, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return res, fmt.Errorf("dhcp: reading %s: %w", a.Path, err)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if err := os.MkdirAll(filepath.Dir(a.Path), 0o755); err != nil {
		return res, fmt.Errorf("dhcp: %w", err)
	}
	if a.Check != CheckNever {
		prog, ok := a.Checker.Program(a.Format)
		switch {
		case ok:
			if err := a.Checker.Check(ctx, a.Format, data, filepath.Dir(a.Path)); err != nil {
				return res, err
			}
			res.Checked = prog
		case a.Check == CheckRequired:
			return res, fmt.Errorf("%w: %s is not installed (looked in $PATH and /usr/sbin)", ErrCheck, prog)
		default:
			a.Logger.Info("dhcp configuration not checked: daemon not installed", "daemon", prog)
		}
	}
	backup := a.Backup
	if backup == "-" {
		backup = ""
	}
	if _, err := atomicfile.Write(a.Path, data, atomicfile.Options{Mode: a.Mode, Backup: backup}); err != nil {
		return res, fmt.Errorf("dhcp: %w", err)
	}
	res.Changed = true
	if backup != "" && old != nil {
		res.Backup = a.Path + backup
	}
	a.Logger.Info("dhcp configuration written", "path", a.Path, "bytes", len(data), "checked", res.Checked)
	switch {
	case len(a.ReloadCommand) > 0:
		cmd := exec.CommandContext(ctx, a.ReloadCommand[0], a.ReloadCommand[1:]...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return res, fmt.Errorf("%w: %s: %v: %s", ErrReload, strings.Join(a.ReloadCommand, " "), err, strings.TrimSpace(string(out)))
		}
		res.Reloaded = strings.Join(a.ReloadCommand, " ")
	case a.Format == FormatKea && a.KeaControlSocket != "":
		if _, err := os.Stat(a.KeaControlSocket); errors.Is(err, fs.ErrNotExist) {
			res.NotReloaded = "Kea control socket " + a.KeaControlSocket + " is not there (Kea not running?): not reloaded; Kea reads the file when it starts"
			a.Logger.Warn("dhcp daemon not reloaded", "why", res.NotReloaded)
			break
		}
		if _, err := KeaCommand(ctx, a.KeaControlSocket, "config-reload", nil); err != nil {
			return res, fmt.Errorf("%w: %w", ErrReload, err)
		}
		res.Reloaded = "config-reload via " + a.KeaControlSocket
	}
	if res.Reloaded != "" {
		a.Logger.Info("dhcp daemon reloaded", "how", res.Reloaded)
	}
	return res, nil
}
