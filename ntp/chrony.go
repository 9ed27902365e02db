package ntp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/mnpool/mnpool/internal/confcheck"
	"github.com/mnpool/mnpool/internal/syntax"
	"github.com/mnpool/mnpool/memberaddr"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// Defaults of the rendered chrony.conf.
const (
	// DefaultDriftFile is Debian's and RHEL's drift file.
	DefaultDriftFile = "/var/lib/chrony/chrony.drift"
	// DefaultLocalStratum is the stratum members serve at when cut off
	// from every external server: low enough that compute nodes keep
	// following them, high enough that any real source wins.
	DefaultLocalStratum = 10
	// DefaultPoolSources is how many other members a member takes time
	// from: the MN and two others (or, on the MN, three others).
	DefaultPoolSources = 3
)

// Source is one "server" line.
type Source struct {
	// Host is an IP address or a host name.
	Host string `json:"host"`
	// Port is the server's NTP port; 0 means 123.
	Port int `json:"port,omitempty"`
	// IBurst speeds up the first synchronization.
	IBurst bool `json:"iburst"`
	// Member names the pool member this source is ("" for an external
	// server); it is written as a comment.
	Member string `json:"member,omitempty"`
}

// Conf is a chrony.conf. Render validates every field.
type Conf struct {
	// Comment is written first, each line prefixed with "# ".
	Comment []string `json:"-"`
	// Servers are the time sources, in order.
	Servers []Source `json:"servers"`
	// LocalStratum, when not 0, serves the local clock at that stratum
	// when no source is reachable ("local stratum N"); Orphan adds
	// chrony's orphan mode, in which the members that lost every source
	// agree on one of them instead of each following its own clock.
	LocalStratum int  `json:"local_stratum,omitempty"`
	Orphan       bool `json:"orphan,omitempty"`
	// Allow lists the networks whose clients may ask this host for time.
	Allow []netip.Prefix `json:"allow,omitempty"`
	// DriftFile defaults to DefaultDriftFile.
	DriftFile string `json:"driftfile,omitempty"`
	// Port, BindAddress, DisableCmdPort and PidFile are for a chronyd
	// that is not the system's (tests, containers): the NTP server port
	// (0: chrony's default), the address it binds, "cmdport 0", and the
	// pid file.
	Port           int        `json:"port,omitempty"`
	BindAddress    netip.Addr `json:"bindaddress,omitzero"`
	DisableCmdPort bool       `json:"disable_cmdport,omitempty"`
	PidFile        string     `json:"pidfile,omitempty"`
}

// ValidateHost checks an NTP server given as an IP address or a host
// name.
func ValidateHost(h string) error {
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() {
			return fmt.Errorf("%w: NTP server %q: want a unicast address without zone", ErrInvalid, h)
		}
		return nil
	}
	labels := strings.Split(strings.TrimSuffix(h, "."), ".")
	if h == "" || len(h) > 253 {
		return fmt.Errorf("%w: NTP server %q: want an IP address or a host name", ErrInvalid, h)
	}
	for _, l := range labels {
		if !syntax.HostLabel(l) {
			return fmt.Errorf("%w: NTP server %q: want an IP address or a host name (letters, digits, '-', '.')", ErrInvalid, h)
		}
	}
	return nil
}

func checkPath(what, p string) error {
	if !syntax.ConfPath(p) {
		return fmt.Errorf("%w: %s %q: want an absolute path of letters, digits and _ . / + -", ErrInvalid, what, p)
	}
	return nil
}

// Render returns the file content.
func (c Conf) Render() ([]byte, error) {
	var b bytes.Buffer
	for _, l := range c.Comment {
		if strings.ContainsAny(l, "\r\n") {
			return nil, fmt.Errorf("%w: comment %q has a line break", ErrInvalid, l)
		}
		fmt.Fprintf(&b, "# %s\n", l)
	}
	for _, s := range c.Servers {
		if err := ValidateHost(s.Host); err != nil {
			return nil, err
		}
		if s.Port < 0 || s.Port > 65535 {
			return nil, fmt.Errorf("%w: NTP server %s: port %d (want 1-65535, or 0 for 123)", ErrInvalid, s.Host, s.Port)
		}
		if s.Member != "" {
			if err := pool.ValidateName("member", s.Member); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
			}
			fmt.Fprintf(&b, "# pool member %s\n", s.Member)
		}
		line := "server " + s.Host
		if s.Port != 0 {
			line += fmt.Sprintf(" port %d", s.Port)
		}
		if s.IBurst {
			line += " iburst"
		}
		fmt.Fprintln(&b, line)
	}
	if c.LocalStratum != 0 {
		if c.LocalStratum < 1 || c.LocalStratum > 15 {
			return nil, fmt.Errorf("%w: local stratum %d: want 1-15", ErrInvalid, c.LocalStratum)
		}
		line := fmt.Sprintf("local stratum %d", c.LocalStratum)
		if c.Orphan {
			line += " orphan"
		}
		fmt.Fprintln(&b, line)
	} else if c.Orphan {
		return nil, fmt.Errorf("%w: orphan mode needs a local stratum", ErrInvalid)
	}
	for _, p := range c.Allow {
		if !p.IsValid() {
			return nil, fmt.Errorf("%w: allow: invalid prefix", ErrInvalid)
		}
		fmt.Fprintf(&b, "allow %s\n", p.Masked())
	}
	if c.Port != 0 {
		if c.Port < 0 || c.Port > 65535 {
			return nil, fmt.Errorf("%w: port %d: want 1-65535", ErrInvalid, c.Port)
		}
		fmt.Fprintf(&b, "port %d\n", c.Port)
	}
	if c.BindAddress.IsValid() {
		fmt.Fprintf(&b, "bindaddress %s\n", c.BindAddress.WithZone(""))
	}
	if c.DisableCmdPort {
		fmt.Fprintln(&b, "cmdport 0")
	}
	if c.PidFile != "" {
		if err := checkPath("pidfile", c.PidFile); err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "pidfile %s\n", c.PidFile)
	}
	drift := c.DriftFile
	if drift == "" {
		drift = DefaultDriftFile
	}
	if err := checkPath("driftfile", drift); err != nil {
		return nil, err
	}
	fmt.Fprintf(&b, "driftfile %s\n", drift)
	// Step the clock at start (a node booting with a wrong clock), slew
	// afterwards; keep the RTC in step.
	fmt.Fprintln(&b, "makestep 1.0 3")
	fmt.Fprintln(&b, "rtcsync")
	return b.Bytes(), nil
}

// NodeConf returns the chrony.conf of a compute node: a server line, with
// iburst, for each of its servicenodes that runs ntp, in list order, by
// their address on the node's network.
func NodeConf(st *pool.State, node pool.Node) (Conf, error) {
	servers, err := memberaddr.ForNode(st, node, service.NTP)
	if err != nil {
		return Conf{}, fmt.Errorf("%w: %v", ErrNoServers, err)
	}
	c := Conf{Comment: []string{fmt.Sprintf("Generated by mnpool for node %s (servicenodes %s); do not edit.", node.Name, strings.Join(node.ServiceNodes, ","))}}
	for _, s := range servers {
		c.Servers = append(c.Servers, Source{Host: s.Addr.String(), IBurst: true, Member: s.Member})
	}
	return c, nil
}

// ParseExtServers parses site.extntpservers: host names or IP addresses
// separated by commas or spaces.
func ParseExtServers(s string) ([]string, error) {
	var out []string
	for _, h := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if err := ValidateHost(h); err != nil {
			return nil, fmt.Errorf("site.extntpservers: %w", err)
		}
		out = append(out, h)
	}
	return out, nil
}

// MemberOptions tune MemberConf; zero values take the defaults.
type MemberOptions struct {
	// PoolSources is how many other members to take time from
	// (DefaultPoolSources); the MN is always one of them.
	PoolSources int
	// LocalStratum of the orphan mode (DefaultLocalStratum).
	LocalStratum int
}

// MemberConf returns the chrony.conf of a pool member: the site's external
// servers (site.extntpservers) when set, then the MN (on members other
// than the MN) and further members in ring order after this one (see
// memberaddr.Peers), DefaultPoolSources in all; "local stratum 10 orphan" so the
// pool keeps one time when cut off from the external servers; and "allow"
// for the networks the member has an address on. A member that does not
// run ntp takes time the same way but serves nobody (no local, no allow).
func MemberConf(st *pool.State, member string, o MemberOptions) (Conf, error) {
	if o.PoolSources <= 0 {
		o.PoolSources = DefaultPoolSources
	}
	if o.LocalStratum == 0 {
		o.LocalStratum = DefaultLocalStratum
	}
	self, ok := st.Member(member)
	if !ok {
		return Conf{}, fmt.Errorf("%w: member %q", ErrNotFound, member)
	}
	ext, err := ParseExtServers(st.Site[siteschema.ExtNTPServers])
	if err != nil {
		return Conf{}, err
	}
	c := Conf{Comment: []string{fmt.Sprintf("Generated by mnpool for member %s; do not edit.", member)}}
	if len(ext) > 0 {
		c.Comment = append(c.Comment, "External time servers (site.extntpservers), then pool members.")
	}
	for _, h := range ext {
		c.Servers = append(c.Servers, Source{Host: h, IBurst: true})
	}
	peers := memberaddr.Peers(st, member, service.NTP)
	if len(peers) > o.PoolSources {
		peers = peers[:o.PoolSources]
	}
	for _, p := range peers {
		a, _, _ := memberaddr.Peer(st, self, p)
		c.Servers = append(c.Servers, Source{Host: a.String(), IBurst: true, Member: p.Name})
	}
	if self.Runs(service.NTP) {
		c.LocalStratum, c.Orphan = o.LocalStratum, true
		for _, n := range memberaddr.Networks(st, self) {
			if nw, ok := st.Network(n); ok {
				c.Allow = append(c.Allow, nw.Prefix)
			}
		}
	} else if len(c.Servers) == 0 {
		return Conf{}, fmt.Errorf("%w: member %s runs no ntp and no other member or external server gives time", ErrNoServers, member)
	}
	return c, nil
}

// CheckConfig parses data with chronyd itself ("chronyd -p -f FILE",
// which prints the configuration and exits without starting); chronyd is
// its path, "" to look it up in PATH. A complaint comes back as an error
// wrapping ErrInvalid.
func CheckConfig(ctx context.Context, chronyd string, data []byte) error {
	if chronyd == "" {
		chronyd = "chronyd"
	}
	c := confcheck.Checker{Program: chronyd, Package: "chrony", FileName: "chrony.conf",
		Args: func(f string) []string { return []string{"-p", "-f", f} }}
	err := c.Run(ctx, data)
	if errors.Is(err, confcheck.ErrRejected) {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err != nil {
		return fmt.Errorf("ntp: %w", err)
	}
	return nil
}
