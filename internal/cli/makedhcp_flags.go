package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/mnpool/mnpool/dhcp"
)

// dhcpFlags are the flags of dhcp.ApplierConfig, one set of names shared
// by makedhcp, makemn, mnpool sync and mnpoold.
type dhcpFlags struct {
	format    string
	path      string
	checkCmd  string
	noCheck   bool
	reload    string
	keaSocket string
	keaLeases string
	allowNone bool
	fs        *pflag.FlagSet
	aliases   []string
}

// Old names of the DHCP flags, kept as hidden deprecated aliases.
var dhcpFlagAliases = map[string]string{
	"format":      "dhcp-format",     // makedhcp
	"out":         "dhcp-config",     // makedhcp
	"dhcp-out":    "dhcp-config",     // makemn, mnpool sync
	"reload-cmd":  "dhcp-reload-cmd", // makedhcp
	"dhcp-reload": "dhcp-reload-cmd", // mnpoold
	"no-check":    "no-dhcp-check",   // makedhcp
}

// addDHCPFlags registers the DHCP flags on fl, with the old names given
// in aliases (keys of dhcpFlagAliases) as hidden deprecated aliases.
// pathHelp describes --dhcp-config's default; allowNone says whether
// --dhcp-format none (no DHCP step) is accepted.
func addDHCPFlags(fl *pflag.FlagSet, f *dhcpFlags, pathHelp string, allowNone bool, aliases ...string) {
	f.allowNone, f.fs, f.aliases = allowNone, fl, aliases
	formats := "isc (dhcpd) or kea (kea-dhcp4)"
	if allowNone {
		formats += ", or none"
	}
	fl.StringVar(&f.format, "dhcp-format", "isc", "DHCP server configuration format: "+formats)
	fl.StringVar(&f.path, "dhcp-config", "", "DHCP configuration file ("+pathHelp+")")
	fl.StringVar(&f.checkCmd, "dhcp-check-cmd", "", "daemon that checks the file before it is written (dhcpd or kea-dhcp4, name or path; default: looked up, check skipped when not installed; given: required)")
	fl.BoolVar(&f.noCheck, "no-dhcp-check", false, "do not run the daemon's check (dhcpd -t / kea-dhcp4 -t) before writing")
	fl.StringVar(&f.reload, "dhcp-reload-cmd", "", `command run after the DHCP file changed, e.g. "systemctl restart isc-dhcp-server" (split at blanks, no shell); Kea without it: config-reload on --kea-socket`)
	fl.StringVar(&f.keaSocket, "kea-socket", dhcp.DefaultKeaControlSocket, "Kea control socket: written into the Kea configuration and used to reload Kea")
	fl.StringVar(&f.keaLeases, "kea-lease-file", dhcp.DefaultKeaLeaseFile, "Kea memfile lease database written into the Kea configuration")
	for _, old := range aliases {
		canon := dhcpFlagAliases[old]
		switch canon {
		case "dhcp-format":
			fl.StringVar(&f.format, old, "isc", "")
		case "dhcp-config":
			fl.StringVar(&f.path, old, "", "")
		case "dhcp-reload-cmd":
			fl.StringVar(&f.reload, old, "", "")
		case "no-dhcp-check":
			fl.BoolVar(&f.noCheck, old, false, "")
		default:
			continue
		}
		// Hidden, not MarkDeprecated: cobra prints pflag's deprecation
		// notice on stdout, which would corrupt --json output.
		_ = fl.MarkHidden(old)
	}
}

// warnDeprecated tells on w which old flag names were used.
func (f *dhcpFlags) warnDeprecated(w io.Writer, prog string) {
	for _, old := range f.aliases {
		if f.fs != nil && f.fs.Changed(old) {
			fmt.Fprintf(w, "%s: --%s is deprecated; use --%s\n", prog, old, dhcpFlagAliases[old])
		}
	}
}

// config turns the flags into an ApplierConfig. enabled is false for
// --dhcp-format none. Errors are usage errors naming the flag.
func (f *dhcpFlags) config() (c dhcp.ApplierConfig, enabled bool, err error) {
	if f.allowNone && strings.EqualFold(strings.TrimSpace(f.format), "none") {
		return c, false, nil
	}
	format, err := dhcp.ParseFormat(f.format)
	if err != nil {
		return c, false, usagef("--dhcp-format: %v", err)
	}
	if f.reload != "" && len(strings.Fields(f.reload)) == 0 {
		return c, false, usagef("--dhcp-reload-cmd %q is empty", f.reload)
	}
	if f.noCheck && f.checkCmd != "" {
		return c, false, usagef("--no-dhcp-check and --dhcp-check-cmd contradict each other")
	}
	c = dhcp.ApplierConfig{Format: format, Path: f.path, CheckCommand: f.checkCmd, ReloadCommand: strings.Fields(f.reload),
		KeaControlSocket: f.keaSocket, KeaLeaseFile: f.keaLeases}
	switch {
	case f.noCheck:
		c.Check = dhcp.CheckNever
	case f.checkCmd != "":
		c.Check = dhcp.CheckRequired
	}
	if err := c.Validate(); err != nil {
		return c, false, usageError{err}
	}
	return c, true, nil
}
