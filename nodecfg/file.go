package nodecfg

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Kind is a file on the node that names its servicenodes. The path on the
// node is fixed per kind; nothing else can be written.
type Kind string

// File kinds, in the order they are pushed.
const (
	// KindResolv is /etc/resolv.conf.
	KindResolv Kind = "resolv"
	// KindChrony is /etc/chrony.conf, or /etc/chrony/chrony.conf where
	// the node has that (Debian, Ubuntu). Applied by restarting chronyd.
	KindChrony Kind = "chrony"
	// KindSyslog is /etc/rsyslog.d/mnpool.conf, the forwarding target.
	// Applied by restarting rsyslog.
	KindSyslog Kind = "syslog"
	// KindRoute is /etc/mnpool/default-route: one gateway address.
	// Applied with `ip route replace default via GATEWAY`.
	KindRoute Kind = "route"
)

// Kinds lists every kind in push order.
func Kinds() []Kind { return []Kind{KindResolv, KindChrony, KindSyslog, KindRoute} }

// ParseKind parses a kind name.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds() {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("%w: file kind %q (allowed: %s)", ErrInvalid, s, kindList())
}

func kindList() string {
	var s []string
	for _, k := range Kinds() {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

// Path is the file's path on the node (for chrony, the RHEL path; the
// remote script picks /etc/chrony/chrony.conf where that exists).
func (k Kind) Path() string {
	switch k {
	case KindResolv:
		return "/etc/resolv.conf"
	case KindChrony:
		return "/etc/chrony.conf"
	case KindSyslog:
		return "/etc/rsyslog.d/mnpool.conf"
	case KindRoute:
		return "/etc/mnpool/default-route"
	}
	return ""
}

// MaxFileSize bounds a pushed file.
const MaxFileSize = 64 << 10

// File is the content of one kind of file for one node.
type File struct {
	Kind Kind   `json:"kind"`
	Data []byte `json:"data"`
}

// Validate checks the file before it is sent: a known kind, text of at
// most MaxFileSize bytes, and for a route exactly one IP address line.
func (f File) Validate() error {
	if f.Kind.Path() == "" {
		return fmt.Errorf("%w: file kind %q (allowed: %s)", ErrInvalid, f.Kind, kindList())
	}
	if len(f.Data) > MaxFileSize {
		return fmt.Errorf("%w: %s file is %d bytes (at most %d)", ErrInvalid, f.Kind, len(f.Data), MaxFileSize)
	}
	if bytes.IndexByte(f.Data, 0) >= 0 || !utf8.Valid(f.Data) {
		return fmt.Errorf("%w: %s file is not UTF-8 text", ErrInvalid, f.Kind)
	}
	if f.Kind == KindRoute {
		line, ok := strings.CutSuffix(string(f.Data), "\n")
		a, err := netip.ParseAddr(line)
		if !ok || err != nil || a.Zone() != "" {
			return fmt.Errorf("%w: route file %q: want one gateway IP address and a newline", ErrInvalid, f.Data)
		}
	}
	return nil
}

func validateFiles(files []File) error {
	seen := map[Kind]bool{}
	for _, f := range files {
		if err := f.Validate(); err != nil {
			return err
		}
		if seen[f.Kind] {
			return fmt.Errorf("%w: %s file given twice", ErrInvalid, f.Kind)
		}
		seen[f.Kind] = true
	}
	return nil
}
