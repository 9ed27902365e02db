// Package syntax holds the patterns that values must match before they go
// into a configuration file, written once for every package that checks
// them (pool, ntp, dns). Each package still words its own error, naming
// the value and what is allowed.
package syntax

import "regexp"

// The compiled patterns, for code that wants the *regexp.Regexp itself
// (a regexp is safe for concurrent use). Never reassign them.
var (
	// HostLabelRE matches one RFC 1123 host label: letters, digits and
	// '-', 1 to 63 characters, not starting or ending with '-'.
	HostLabelRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	// ConfPathRE matches an absolute path made only of letters, digits
	// and _ . / + -, so that it needs no quoting in any configuration
	// file we write.
	ConfPathRE = regexp.MustCompile(`^/[A-Za-z0-9_./+-]*$`)
)

// HostLabel reports whether s is one RFC 1123 host label (HostLabelRE).
func HostLabel(s string) bool { return HostLabelRE.MatchString(s) }

// ConfPath reports whether s is an absolute path safe to write unquoted
// into a configuration file (ConfPathRE).
func ConfPath(s string) bool { return ConfPathRE.MatchString(s) }
