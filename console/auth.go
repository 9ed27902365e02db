package console

import (
	"fmt"
	"slices"
	"strings"
)

// SiteACL is the site key that says who may watch, write and force
// consoles. Its value is a list of entries separated by spaces or commas:
//
//	user:NAME=PERM   a user (certificate CN, or local user name on the
//	                 broker's Unix socket)
//	group:NAME=PERM  a group (a user certificate's groups, or the local
//	                 user's Unix groups)
//	*=PERM           everyone else who authenticated
//
// PERM is none, watch, write or force (each includes the ones before
// it). A user's user: entry decides when there is one; otherwise the
// highest of their group: entries; otherwise the * entry; otherwise none.
// When the key is unset, every authenticated user may force (issuing a
// certificate, or adding someone to the socket group, is the grant).
const SiteACL = "consoleacl"

// Perm is what a user may do with consoles.
type Perm int

// Permissions, each including the ones before it.
const (
	PermNone Perm = iota
	PermWatch
	PermWrite
	PermForce
)

var permNames = []string{"none", "watch", "write", "force"}

func (p Perm) String() string {
	if p < 0 || int(p) >= len(permNames) {
		return fmt.Sprintf("perm(%d)", int(p))
	}
	return permNames[p]
}

// ParsePerm parses none, watch, write or force.
func ParsePerm(s string) (Perm, error) {
	i := slices.Index(permNames, s)
	if i < 0 {
		return PermNone, fmt.Errorf("%w: console permission %q: want none, watch, write or force", ErrInvalid, s)
	}
	return Perm(i), nil
}

// ACL is a parsed consoleacl.
type ACL struct {
	set    bool
	users  map[string]Perm
	groups map[string]Perm
	all    Perm
	hasAll bool
}

// ParseACL parses the value of site.consoleacl ("" means unset: every
// authenticated user may force).
func ParseACL(v string) (ACL, error) {
	a := ACL{users: map[string]Perm{}, groups: map[string]Perm{}}
	fields := strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' || r == '\n' })
	for _, f := range fields {
		a.set = true
		subj, ps, ok := strings.Cut(f, "=")
		if !ok {
			return ACL{}, fmt.Errorf("%w: %s entry %q: want user:NAME=PERM, group:NAME=PERM or *=PERM", ErrInvalid, SiteACL, f)
		}
		p, err := ParsePerm(ps)
		if err != nil {
			return ACL{}, fmt.Errorf("%s entry %q: %w", SiteACL, f, err)
		}
		kind, name, _ := strings.Cut(subj, ":")
		switch {
		case subj == "*":
			a.all, a.hasAll = p, true
		case kind == "user" && validIdentName(name):
			a.users[name] = p
		case kind == "group" && validIdentName(name):
			a.groups[name] = p
		default:
			return ACL{}, fmt.Errorf("%w: %s entry %q: want user:NAME=PERM, group:NAME=PERM or *=PERM with NAME of letters, digits, '.', '_', '-'", ErrInvalid, SiteACL, f)
		}
	}
	return a, nil
}

func validIdentName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// Perm returns what id may do.
func (a ACL) Perm(id Identity) Perm {
	if !a.set {
		return PermForce
	}
	if p, ok := a.users[id.User]; ok {
		return p
	}
	best, found := PermNone, false
	for _, g := range id.Groups {
		if p, ok := a.groups[g]; ok {
			best, found = max(best, p), true
		}
	}
	if found {
		return best
	}
	if a.hasAll {
		return a.all
	}
	return PermNone
}

// How a client authenticated.
const (
	AuthCertificate = "certificate"
	AuthUnixSocket  = "unix-socket"
	AuthMember      = "member"
)

// Identity is who a broker's client authenticated as: never what the
// client claims in its hello.
type Identity struct {
	// User is the certificate's CN, or the local user name of a Unix
	// socket peer (uid:N when the uid has no name).
	User   string   `json:"user"`
	Groups []string `json:"groups,omitempty"`
	// Auth is how: AuthCertificate, AuthUnixSocket or AuthMember (a
	// member acting for itself).
	Auth string `json:"auth"`
	// On is the member whose Unix socket the user connected to.
	On string `json:"on,omitempty"`
	// UID of a Unix socket peer.
	UID int `json:"uid,omitempty"`
}

// String is the name shown to other users and written to logs and the
// audit log: user, user@member for a Unix socket user, member:NAME for a
// member.
func (id Identity) String() string {
	switch id.Auth {
	case AuthUnixSocket:
		return id.User + "@" + id.On
	case AuthMember:
		return "member:" + id.User
	}
	return id.User
}

// peer is an authenticated connection's other end.
type peer struct {
	id Identity
	// member is set when the peer presented a member certificate: it may
	// proxy requests for users it authenticated itself.
	member string
	addr   string
}
