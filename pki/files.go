package pki

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/mnpool/mnpool/internal/atomicfile"
)

// DefaultDir is where the pool's certificates live.
const DefaultDir = "/etc/mnpool/pki"

// Dir is a certificate directory (see the package documentation for its
// files). The zero value is DefaultDir.
type Dir string

func (d Dir) path(name string) string {
	if d == "" {
		d = DefaultDir
	}
	return filepath.Join(string(d), name)
}

// CACert is the trust bundle; CAKey the CA's private key.
func (d Dir) CACert() string { return d.path("ca.crt") }

// CAKey is the CA's private key.
func (d Dir) CAKey() string { return d.path("ca.key") }

// MemberCert and MemberKey are this member's certificate and key.
func (d Dir) MemberCert() string { return d.path("member.crt") }

// MemberKey is this member's private key.
func (d Dir) MemberKey() string { return d.path("member.key") }

// UserCert and UserKey are where a user certificate issued here is kept.
func (d Dir) UserCert(user string) string { return d.path(filepath.Join("users", user+".crt")) }

// UserKey is the private key of UserCert.
func (d Dir) UserKey(user string) string { return d.path(filepath.Join("users", user+".key")) }

// WriteKey writes a private key: 0600, atomically, in a directory made
// 0700 when missing, with no backup copy.
func WriteKey(path string, pemBytes []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if _, err := atomicfile.Write(path, pemBytes, atomicfile.Options{Mode: 0o600}); err != nil {
		return err
	}
	// The key must be 0600 whatever the file it replaced was.
	return os.Chmod(path, 0o600)
}

// WriteCert writes a certificate (public): 0644, atomically.
func WriteCert(path string, pemBytes []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	_, err := atomicfile.Write(path, pemBytes, atomicfile.Options{Mode: 0o644})
	return err
}

// WritePair writes a certificate and its key; with force false an
// existing certificate is an ErrExists error and nothing is written.
func WritePair(certPath, keyPath string, is *Issued, force bool) error {
	if !force {
		for _, p := range []string{certPath, keyPath} {
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("%w: %s (give --force to replace it)", ErrExists, p)
			}
		}
	}
	if err := WriteKey(keyPath, is.KeyPEM); err != nil {
		return err
	}
	return WriteCert(certPath, is.CertPEM)
}

// InitCA makes a new CA for pool and writes ca.crt and ca.key in d. An
// existing ca.crt or ca.key is an ErrExists error unless force.
func InitCA(d Dir, pool string, validity time.Duration, force bool) (*CA, error) {
	ca, err := NewCA(pool, validity)
	if err != nil {
		return nil, err
	}
	key, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	if err := WritePair(d.CACert(), d.CAKey(), &Issued{CertPEM: ca.CertPEM(), KeyPEM: key}, force); err != nil {
		return nil, err
	}
	return ca, nil
}

// LoadCA reads the CA of d: the first certificate of ca.crt, which must
// match ca.key.
func LoadCA(d Dir) (*CA, error) {
	certs, err := ReadCerts(d.CACert())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoCA, err)
	}
	keyPEM, err := os.ReadFile(d.CAKey())
	if err != nil {
		return nil, fmt.Errorf("%w: %v (the CA key is kept on members holding the db service)", ErrNoCA, err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNoCA, d.CAKey(), err)
	}
	if !publicEqual(certs[0].PublicKey, key.Public()) {
		return nil, fmt.Errorf("%w: %s does not match the first certificate of %s", ErrNoCA, d.CAKey(), d.CACert())
	}
	return &CA{Cert: certs[0], Key: key}, nil
}

// RotateCA makes a new CA and puts it first in the trust bundle, keeping
// the old CAs trusted until FinishRotation, so certificates of either CA
// work while members get new ones.
func RotateCA(d Dir, pool string, validity time.Duration) (*CA, error) {
	old, err := ReadCerts(d.CACert())
	if err != nil {
		return nil, fmt.Errorf("%w: %v (run mnpool certs init first)", ErrNoCA, err)
	}
	if _, err := LoadCA(d); err != nil {
		return nil, err
	}
	ca, err := NewCA(pool, validity)
	if err != nil {
		return nil, err
	}
	key, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	bundle := ca.CertPEM()
	for _, c := range old {
		if time.Now().Before(c.NotAfter) {
			bundle = append(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
	}
	// Keep the previous key beside, 0600, in case the rotation must be
	// undone; FinishRotation removes it.
	prevKey, err := os.ReadFile(d.CAKey())
	if err != nil {
		return nil, err
	}
	if err := WriteKey(d.CAKey()+".prev", prevKey); err != nil {
		return nil, err
	}
	if err := WriteKey(d.CAKey(), key); err != nil {
		return nil, err
	}
	if err := WriteCert(d.CACert(), bundle); err != nil {
		return nil, err
	}
	return ca, nil
}

// FinishRotation drops every CA but the first from the trust bundle (and
// the previous CA key). Run it when every member and user has a
// certificate of the new CA. It returns how many CAs were dropped.
func FinishRotation(d Dir) (int, error) {
	certs, err := ReadCerts(d.CACert())
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNoCA, err)
	}
	if err := WriteCert(d.CACert(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certs[0].Raw})); err != nil {
		return 0, err
	}
	if err := os.Remove(d.CAKey() + ".prev"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	return len(certs) - 1, nil
}

// ReadCerts reads every certificate of a PEM file (at least one).
func ReadCerts(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no certificate in it", path)
	}
	return out, nil
}

func parseKey(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		if ek, err2 := x509.ParseECPrivateKey(blk.Bytes); err2 == nil {
			return ek, nil
		}
		return nil, errors.New("not a PKCS #8 or EC private key")
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("not a signing key")
	}
	return s, nil
}

func publicEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

// CertInfo describes a certificate for `certs show`.
type CertInfo struct {
	File      string    `json:"file"`
	Subject   string    `json:"subject"`
	Kind      string    `json:"kind,omitempty"`
	Name      string    `json:"name,omitempty"`
	Groups    []string  `json:"groups,omitempty"`
	Issuer    string    `json:"issuer"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	IsCA      bool      `json:"ca"`
	SHA256    string    `json:"sha256"`
}

// Describe describes every certificate of a PEM file.
func Describe(path string) ([]CertInfo, error) {
	certs, err := ReadCerts(path)
	if err != nil {
		return nil, err
	}
	out := make([]CertInfo, 0, len(certs))
	for _, c := range certs {
		ci := CertInfo{File: path, Subject: c.Subject.String(), Issuer: c.Issuer.String(), NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), IsCA: c.IsCA, SHA256: Fingerprint(c)}
		if id, err := IdentityOf(c); err == nil && !c.IsCA {
			ci.Kind, ci.Name, ci.Groups = string(id.Kind), id.Name, id.Groups
		}
		out = append(out, ci)
	}
	return out, nil
}

// Fingerprint is the SHA-256 of a certificate, hex with colons.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256Sum(c.Raw)
	var b bytes.Buffer
	for i, x := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", x)
	}
	return b.String()
}

// Placed says where IssueFiles wrote a certificate.
type Placed struct {
	Issued *Issued
	Cert   string
	Key    string
	// Elsewhere is true when the files are not for this host: they are
	// to be copied to the member or handed to the user (with ca.crt,
	// copied beside them).
	Elsewhere bool
}

// IssueFiles issues req from the CA of d and writes the certificate and
// key (see WritePair for force):
//
//   - this member's certificate (req.Kind member, self true) to d's
//     member.crt and member.key;
//   - another member's to out (default d/members/NAME/) as member.crt and
//     member.key, with a copy of d's ca.crt;
//   - a user's to out as NAME.crt and NAME.key with a copy of ca.crt, or,
//     when out is empty, to d/users/.
func IssueFiles(d Dir, req Request, out string, self, force bool) (*Placed, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	ca, err := LoadCA(d)
	if err != nil {
		return nil, err
	}
	p := &Placed{}
	switch {
	case req.Kind == KindMember && self && out == "":
		p.Cert, p.Key = d.MemberCert(), d.MemberKey()
	case req.Kind == KindMember:
		if out == "" {
			out = d.path(filepath.Join("members", req.Name))
		}
		p.Cert, p.Key, p.Elsewhere = Dir(out).MemberCert(), Dir(out).MemberKey(), true
	case out == "":
		p.Cert, p.Key, p.Elsewhere = d.UserCert(req.Name), d.UserKey(req.Name), true
	default:
		p.Cert, p.Key, p.Elsewhere = filepath.Join(out, req.Name+".crt"), filepath.Join(out, req.Name+".key"), true
	}
	if !force {
		for _, f := range []string{p.Cert, p.Key} {
			if _, err := os.Lstat(f); err == nil {
				return nil, fmt.Errorf("%w: %s (give --force to replace it)", ErrExists, f)
			}
		}
	}
	if p.Issued, err = ca.Issue(req); err != nil {
		return nil, err
	}
	if out != "" {
		bundle, err := os.ReadFile(d.CACert())
		if err != nil {
			return nil, err
		}
		if err := WriteCert(Dir(out).CACert(), bundle); err != nil {
			return nil, err
		}
	}
	return p, WritePair(p.Cert, p.Key, p.Issued, true)
}
