package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Kind is what a certificate was issued to.
type Kind string

// Certificate kinds (the subject's OU).
const (
	KindMember Kind = "member"
	KindUser   Kind = "user"
)

// Defaults of certificate lifetimes.
const (
	// DefaultCAValidity is the lifetime of a new CA.
	DefaultCAValidity = 10 * 365 * 24 * time.Hour
	// DefaultValidity is the lifetime of a member or user certificate.
	DefaultValidity = 2 * 365 * 24 * time.Hour
	// groupPrefix marks a group in a user certificate's OUs.
	groupPrefix = "group:"
)

// nameRE is what a member, user or group name may be: it goes into
// certificate subjects, file names and log lines.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidateName checks a member, user or group name.
func ValidateName(what, name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: %s name %q: want 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", ErrInvalid, what, name)
	}
	return nil
}

// CA is a certificate authority: its certificate and private key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA makes a CA named "mnpool CA <pool>" valid for validity
// (DefaultCAValidity when 0).
func NewCA(pool string, validity time.Duration) (*CA, error) {
	if err := ValidateName("pool", pool); err != nil {
		return nil, err
	}
	if validity <= 0 {
		validity = DefaultCAValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "mnpool CA " + pool + " " + now.UTC().Format("20060102T150405Z"), Organization: []string{"mnpool " + pool}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// Request says what certificate to issue.
type Request struct {
	Kind Kind
	// Name is the member or user name (the CN; for a member also the
	// DNS SAN).
	Name string
	// Groups are a user's groups (user certificates only).
	Groups []string
	// DNSNames and IPs are extra SANs of a member certificate (its host
	// names and addresses), so tools that check host names accept it.
	DNSNames []string
	IPs      []netip.Addr
	// Validity is the lifetime (DefaultValidity when 0), capped at the
	// CA's own expiry.
	Validity time.Duration
}

func (r Request) validate() error {
	switch r.Kind {
	case KindMember:
		if len(r.Groups) > 0 {
			return fmt.Errorf("%w: groups are for user certificates, not member %s", ErrInvalid, r.Name)
		}
	case KindUser:
		if len(r.DNSNames) > 0 || len(r.IPs) > 0 {
			return fmt.Errorf("%w: host names and addresses are for member certificates, not user %s", ErrInvalid, r.Name)
		}
	default:
		return fmt.Errorf("%w: certificate kind %q: want member or user", ErrInvalid, r.Kind)
	}
	if err := ValidateName(string(r.Kind), r.Name); err != nil {
		return err
	}
	for _, g := range r.Groups {
		if err := ValidateName("group", g); err != nil {
			return err
		}
	}
	for _, d := range r.DNSNames {
		for _, label := range strings.Split(d, ".") {
			if err := ValidateName("host", label); err != nil {
				return err
			}
		}
	}
	return nil
}

// Issued is a certificate and its private key, PEM-encoded.
type Issued struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

// Issue makes a key pair and a certificate for r signed by ca.
func (ca *CA) Issue(r Request) (*Issued, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	if r.Validity <= 0 {
		r.Validity = DefaultValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	notAfter := now.Add(r.Validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	ou := []string{string(r.Kind)}
	groups := slices.Clone(r.Groups)
	slices.Sort(groups)
	for _, g := range slices.Compact(groups) {
		ou = append(ou, groupPrefix+g)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: r.Name, OrganizationalUnit: ou, Organization: ca.Cert.Subject.Organization},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if r.Kind == KindMember {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		tmpl.DNSNames = append([]string{r.Name}, r.DNSNames...)
		for _, ip := range r.IPs {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip.AsSlice())
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Issued{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// CertPEM returns the CA certificate, PEM-encoded.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// KeyPEM returns the CA private key, PEM-encoded (PKCS #8).
func (ca *CA) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// Identity is who a certificate names.
type Identity struct {
	Kind   Kind
	Name   string
	Groups []string
}

// IdentityOf reads the identity of a certificate issued by this package.
// It does not verify the chain: call it on a verified peer certificate.
func IdentityOf(c *x509.Certificate) (Identity, error) {
	// The OUs are one DER SET: their order is the encoding's, not ours.
	var kinds, groups []string
	for _, v := range c.Subject.OrganizationalUnit {
		if g, ok := strings.CutPrefix(v, groupPrefix); ok {
			if ValidateName("group", g) != nil {
				return Identity{}, fmt.Errorf("%w: certificate of %q has a bad group %q", ErrNotIssued, c.Subject.CommonName, v)
			}
			groups = append(groups, g)
			continue
		}
		kinds = append(kinds, v)
	}
	if len(kinds) != 1 {
		return Identity{}, fmt.Errorf("%w: %q has kinds %q: want one OU, member or user", ErrNotIssued, c.Subject.CommonName, kinds)
	}
	id := Identity{Kind: Kind(kinds[0]), Name: c.Subject.CommonName}
	if err := ValidateName(string(id.Kind), id.Name); err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrNotIssued, err)
	}
	switch id.Kind {
	case KindMember:
		if len(groups) != 0 || !slices.Contains(c.DNSNames, id.Name) || !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
			return Identity{}, fmt.Errorf("%w: member certificate of %q malformed", ErrNotIssued, id.Name)
		}
	case KindUser:
		slices.Sort(groups)
		id.Groups = groups
	default:
		return Identity{}, fmt.Errorf("%w: %q has kind %q: want member or user", ErrNotIssued, id.Name, id.Kind)
	}
	return id, nil
}
