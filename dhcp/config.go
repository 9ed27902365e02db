package dhcp

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// ApplierConfig is the one description of how a member's DHCP
// configuration is installed: which daemon's format, where the file is,
// how it is checked and how the daemon is told to load it. makedhcp,
// makemn's sync step and the agent (mnpoold) all take it, and the CLI
// fills it from one set of flags (--dhcp-format, --dhcp-config,
// --dhcp-check-cmd, --no-dhcp-check, --dhcp-reload-cmd, --kea-socket,
// --kea-lease-file).
//
// The zero value is an ISC dhcpd.conf at /etc/dhcp/dhcpd.conf, checked
// with dhcpd when it is installed, not reloaded.
type ApplierConfig struct {
	// Format of the configuration (default FormatISC).
	Format Format `json:"format"`
	// Path of the file (default Format.DefaultPath()). For
	// MakeOptions.AllMembers it is a directory.
	Path string `json:"path"`
	// Check says when the daemon's own check runs before a write
	// (default CheckAuto: when the daemon is installed).
	Check CheckMode `json:"check"`
	// CheckCommand is the daemon that checks the file: the dhcpd or
	// kea-dhcp4 program (name or path). Default: looked up in $PATH, then
	// /usr/sbin.
	CheckCommand string `json:"check_command,omitempty"`
	// ReloadCommand is run after a write (argv, no shell), for example
	// {"systemctl", "restart", "isc-dhcp-server"}. Kea without a reload
	// command is reloaded with config-reload on KeaControlSocket.
	ReloadCommand []string `json:"reload_command,omitempty"`
	// KeaControlSocket is written into the Kea configuration and used to
	// reload Kea (default DefaultKeaControlSocket).
	KeaControlSocket string `json:"kea_control_socket,omitempty"`
	// KeaLeaseFile is Kea's memfile lease database, written into the Kea
	// configuration (default DefaultKeaLeaseFile).
	KeaLeaseFile string `json:"kea_lease_file,omitempty"`
	// Backup is the suffix of the copy of the previous file (default
	// ".bak"; "-" keeps none).
	Backup string `json:"backup,omitempty"`
	// Logger (default: discard).
	Logger *slog.Logger `json:"-"`
}

// WithDefaults returns c with the defaults filled in.
func (c ApplierConfig) WithDefaults() ApplierConfig {
	if c.Format == "" {
		c.Format = FormatISC
	}
	if c.Path == "" {
		c.Path = c.Format.DefaultPath()
	}
	if c.KeaControlSocket == "" {
		c.KeaControlSocket = DefaultKeaControlSocket
	}
	if c.KeaLeaseFile == "" {
		c.KeaLeaseFile = DefaultKeaLeaseFile
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// Validate checks the configuration. The errors wrap ErrFormat (an
// unknown format) or ErrInvalid and name the value.
func (c ApplierConfig) Validate() error {
	if c.Format != "" {
		if _, err := ParseFormat(string(c.Format)); err != nil {
			return err
		}
	}
	if c.Check < CheckAuto || c.Check > CheckNever {
		return fmt.Errorf("%w: check mode %d (want CheckAuto, CheckRequired or CheckNever)", ErrInvalid, c.Check)
	}
	for name, v := range map[string]string{"path": c.Path, "check command": c.CheckCommand, "Kea control socket": c.KeaControlSocket, "Kea lease file": c.KeaLeaseFile} {
		if strings.ContainsAny(v, "\x00\n\"") {
			return fmt.Errorf("%w: %s %q: no NUL, newline or double quote allowed", ErrInvalid, name, v)
		}
	}
	if len(c.ReloadCommand) > 0 && strings.TrimSpace(c.ReloadCommand[0]) == "" {
		return fmt.Errorf("%w: reload command %q: the program is empty", ErrInvalid, strings.Join(c.ReloadCommand, " "))
	}
	for _, a := range c.ReloadCommand {
		if strings.ContainsAny(a, "\x00\n") {
			return fmt.Errorf("%w: reload command argument %q: no NUL or newline allowed", ErrInvalid, a)
		}
	}
	return nil
}

// Applier returns the Applier that installs files as c says. Kea
// without a reload command is reloaded through its control socket.
func (c ApplierConfig) Applier() *Applier {
	c = c.WithDefaults()
	a := &Applier{Path: c.Path, Format: c.Format, Backup: c.Backup, Check: c.Check, Logger: c.Logger,
		ReloadCommand: append([]string(nil), c.ReloadCommand...)}
	if c.Format == FormatKea {
		a.Checker.Kea = c.CheckCommand
		if len(c.ReloadCommand) == 0 {
			a.KeaControlSocket = c.KeaControlSocket
		}
	} else {
		a.Checker.DHCPD = c.CheckCommand
	}
	return a
}

// RenderOptions returns the Render options c implies (format, Kea socket
// and lease file). ServeDynamic and Select are left to the caller.
func (c ApplierConfig) RenderOptions() Options {
	c = c.WithDefaults()
	return Options{Format: c.Format, KeaControlSocket: c.KeaControlSocket, KeaLeaseFile: c.KeaLeaseFile}
}
