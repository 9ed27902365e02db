package pki

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"
)

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// Credentials are what one party of a TLS connection holds: its
// certificate and key, and the trust bundle peers are checked against.
type Credentials struct {
	Cert  tls.Certificate
	Roots *x509.CertPool
	// Identity is who Cert names.
	Identity Identity
}

// LoadCredentials reads a certificate, its key and the trust bundle.
func LoadCredentials(certFile, keyFile, caFile string) (*Credentials, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	cas, err := ReadCerts(caFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoCA, err)
	}
	c, err := NewCredentials(certPEM, keyPEM, cas)
	if err != nil {
		return nil, fmt.Errorf("%s (CA %s): %w", certFile, caFile, err)
	}
	return c, nil
}

// NewCredentials builds credentials from a PEM certificate and key and
// the trusted CAs; the certificate must be valid under them.
func NewCredentials(certPEM, keyPEM []byte, cas []*x509.Certificate) (*Credentials, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate and key: %w", err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, err
	}
	cert.Leaf = leaf
	id, err := IdentityOf(leaf)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("%w: not valid under the trusted CAs: %v", ErrNotIssued, err)
	}
	return &Credentials{Cert: cert, Roots: roots, Identity: id}, nil
}

// LoadMember reads this member's credentials from d.
func LoadMember(d Dir) (*Credentials, error) {
	c, err := LoadCredentials(d.MemberCert(), d.MemberKey(), d.CACert())
	if err == nil && c.Identity.Kind != KindMember {
		return nil, fmt.Errorf("%w: %s is a %s certificate, not a member's", ErrInvalid, d.MemberCert(), c.Identity.Kind)
	}
	return c, err
}

// ServerConfig is the broker's TLS configuration: TLS 1.3 only, a
// client certificate from the trust bundle is required, no session
// resumption. It is nil for a certificate that is not a member's.
func (c *Credentials) ServerConfig() *tls.Config {
	if c.Identity.Kind != KindMember {
		return nil
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.Cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    c.Roots,
		// Every connection proves its certificate again: a resumed
		// session would skip the check against the current trust
		// bundle (after a CA rotation).
		SessionTicketsDisabled: true,
	}
}

// ClientConfig is the TLS configuration to dial a broker: TLS 1.3 only,
// c's certificate as the client certificate, and the server must present
// a member certificate of the trust bundle; when member is not empty it
// must name that member.
func (c *Credentials) ClientConfig(member string) *tls.Config {
	roots := c.Roots
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.Cert},
		// The chain and the member name are checked in VerifyConnection
		// (a broker is dialled by address, and names a member, not a
		// host).
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return VerifyMember(cs.PeerCertificates, roots, member)
		},
	}
}

// ErrWrongPeer: the peer's certificate is valid but names another member
// or is not a member certificate.
var ErrWrongPeer = errors.New("pki: peer is not the expected member")

// VerifyMember checks that chain[0] is a member certificate valid under
// roots for serving, naming member when member is not empty.
func VerifyMember(chain []*x509.Certificate, roots *x509.CertPool, member string) error {
	if len(chain) == 0 {
		return fmt.Errorf("%w: no certificate", ErrNotIssued)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: time.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("%w: %v", ErrNotIssued, err)
	}
	id, err := IdentityOf(chain[0])
	if err != nil {
		return err
	}
	if id.Kind != KindMember {
		return fmt.Errorf("%w: the broker presented a %s certificate of %s", ErrWrongPeer, id.Kind, id.Name)
	}
	if member != "" && id.Name != member {
		return fmt.Errorf("%w: dialled %s, the certificate names %s", ErrWrongPeer, member, id.Name)
	}
	return nil
}
