package console

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/mnpool/mnpool/pki"
	"github.com/mnpool/mnpool/pool/service"
)

// errHandshake: the TLS handshake failed (no certificate, one of another
// CA, not TLS 1.3); nothing can be said to the peer.
var errHandshake = errors.New("console: TLS handshake")

// authenticate finds who is at the other end of conn: a Unix socket peer
// by its credentials, a TLS peer by its verified certificate (a member
// certificate must name an enabled member running the console service).
// It says nothing to the peer; on error p.addr still names the peer.
func (b *Broker) authenticate(ctx context.Context, conn net.Conn) (peer, error) {
	switch c := conn.(type) {
	case *net.UnixConn:
		return b.unixPeer(c)
	case *tls.Conn:
		p := peer{addr: c.RemoteAddr().String()}
		hctx, cancel := context.WithTimeout(ctx, b.o.helloTimeout)
		defer cancel()
		if err := c.HandshakeContext(hctx); err != nil {
			return p, fmt.Errorf("%w: %w", errHandshake, err)
		}
		certs := c.ConnectionState().PeerCertificates
		if len(certs) == 0 {
			return p, fmt.Errorf("%w: no client certificate", ErrForbidden)
		}
		pid, err := pki.IdentityOf(certs[0])
		if err != nil {
			return p, fmt.Errorf("%w: %v", ErrForbidden, err)
		}
		switch pid.Kind {
		case pki.KindUser:
			p.id = Identity{User: pid.Name, Groups: pid.Groups, Auth: AuthCertificate}
		case pki.KindMember:
			p.id = Identity{User: pid.Name, Auth: AuthMember}
			if reason := b.notConsoleMember(pid.Name); reason != "" {
				return p, fmt.Errorf("%w: member certificate of %s: %s", ErrForbidden, pid.Name, reason)
			}
			p.member = pid.Name
		}
		return p, nil
	}
	return peer{addr: conn.RemoteAddr().String()}, fmt.Errorf("%w: a %T connection: want TLS or a Unix socket", ErrForbidden, conn)
}

// notConsoleMember says why member may not talk to brokers as a member
// ("" when it may): it must be in the pool, enabled and run the console
// service.
func (b *Broker) notConsoleMember(member string) string {
	v := b.view()
	if v == nil {
		return "the pool is not loaded yet"
	}
	m, ok := v.st.Member(member)
	switch {
	case !ok:
		return "not a member of the pool"
	case m.Disabled:
		return "the member is disabled"
	case !m.Runs(service.Console):
		return "the member does not run the console service"
	}
	return ""
}

// authorize decides what an authenticated peer may ask. It sets h.User
// to the authenticated name others will see. It returns the identity
// and whether this broker is where the user connected (entry: the
// attach is logged and audited here), or a refusal code and error.
//
// A member peer proxies for a user it authenticated and authorized
// itself: its hello names that user (members are trusted to do so, as
// they hold the pool's consoles anyway). A member without a user acts
// for itself.
func (b *Broker) authorize(p peer, h *Hello) (Identity, bool, string, error) {
	if p.member != "" {
		if h.User == "" {
			h.User = p.id.String()
			return p.id, h.Hops == 0, "", nil
		}
		return Identity{User: h.User, Auth: AuthMember, On: p.member}, false, "", nil
	}
	id := p.id
	if h.Hops != 0 {
		return id, false, CodeBadRequest, fmt.Errorf("%w: hops is set by brokers only", ErrInvalid)
	}
	if h.User != "" && h.User != id.User && h.User != id.String() {
		return id, false, CodeForbidden, fmt.Errorf("%w: the hello names user %q but the connection is authenticated as %s", ErrForbidden, h.User, id)
	}
	perm := b.permOf(id)
	need := PermWatch
	switch {
	case h.Mode == ModeWrite && h.Force:
		need = PermForce
	case h.Mode == ModeWrite:
		need = PermWrite
	}
	if perm < need {
		what := map[Perm]string{PermWatch: "watch", PermWrite: "write to", PermForce: "force write access to"}[need]
		return id, false, CodeForbidden, fmt.Errorf("%w: %s may not %s consoles (site %s gives %s)", ErrForbidden, id, what, SiteACL, perm)
	}
	h.User = id.String()
	return id, true, "", nil
}

// permOf is what id may do: root on this member's socket may do
// anything (root can read the member's key anyway); everyone else what
// site.consoleacl says.
func (b *Broker) permOf(id Identity) Perm {
	if id.Auth == AuthUnixSocket && id.UID == 0 {
		return PermForce
	}
	v := b.view()
	if v == nil {
		return PermNone
	}
	return v.acl.Perm(id)
}

// ActionAttach is the audit action of a console attach.
const ActionAttach = "console.attach"

// attached logs (and audits, unless WithoutAudit) a user's attach at the
// broker the user connected to; id is nil for a member's proxied request.
func (b *Broker) attached(id *Identity, h Hello, r Reply) {
	if id == nil {
		b.log.Debug("console: proxied client attached", "node", h.Node, "client", h.User, "mode", r.Mode, "hops", h.Hops)
		return
	}
	b.log.Info("console: attached", "node", h.Node, "user", id.String(), "auth", id.Auth, "asked", h.Mode, "force", h.Force, "mode", r.Mode, "server", r.Server, "token", r.Token)
	if b.o.noAudit {
		return
	}
	detail := map[string]any{"auth": id.Auth, "asked": h.Mode, "force": h.Force, "mode": r.Mode, "server": r.Server, "token": r.Token}
	if len(id.Groups) > 0 {
		detail["groups"] = id.Groups
	}
	actor := id.String()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.store.AuditEvent(ctx, actor, ActionAttach, h.Node, detail); err != nil && !errors.Is(err, context.Canceled) {
			b.log.Warn("console: writing the audit record", "node", h.Node, "user", actor, "err", err)
		}
	}()
}
