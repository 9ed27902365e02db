package pki_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/pki"
)

func TestIssueAndIdentity(t *testing.T) {
	ca, err := pki.NewCA("test", 0)
	require.NoError(t, err)
	is, err := ca.Issue(pki.Request{Kind: pki.KindUser, Name: "alice", Groups: []string{"ops", "admins", "ops"}})
	require.NoError(t, err)
	id, err := pki.IdentityOf(is.Cert)
	require.NoError(t, err)
	require.Equal(t, pki.Identity{Kind: pki.KindUser, Name: "alice", Groups: []string{"admins", "ops"}}, id)
	require.NotContains(t, is.Cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth, "a user cannot pose as a broker")

	m, err := ca.Issue(pki.Request{Kind: pki.KindMember, Name: "sn1"})
	require.NoError(t, err)
	id, err = pki.IdentityOf(m.Cert)
	require.NoError(t, err)
	require.Equal(t, pki.Identity{Kind: pki.KindMember, Name: "sn1"}, id)
	require.Equal(t, []string{"sn1"}, m.Cert.DNSNames)
	require.Equal(t, x509.ECDSA, m.Cert.PublicKeyAlgorithm)

	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	require.NoError(t, pki.VerifyMember([]*x509.Certificate{m.Cert}, roots, "sn1"))
	require.ErrorIs(t, pki.VerifyMember([]*x509.Certificate{m.Cert}, roots, "sn2"), pki.ErrWrongPeer)
	require.ErrorIs(t, pki.VerifyMember([]*x509.Certificate{is.Cert}, roots, ""), pki.ErrNotIssued, "a user certificate is no server")
	other, err := pki.NewCA("other", 0)
	require.NoError(t, err)
	om, err := other.Issue(pki.Request{Kind: pki.KindMember, Name: "sn1"})
	require.NoError(t, err)
	require.ErrorIs(t, pki.VerifyMember([]*x509.Certificate{om.Cert}, roots, "sn1"), pki.ErrNotIssued)
	_, err = pki.NewCredentials(om.CertPEM, om.KeyPEM, []*x509.Certificate{ca.Cert})
	require.ErrorIs(t, err, pki.ErrNotIssued)

	cfg, err := pki.NewCredentials(m.CertPEM, m.KeyPEM, []*x509.Certificate{ca.Cert})
	require.NoError(t, err)
	sc := cfg.ServerConfig()
	require.Equal(t, uint16(tls.VersionTLS13), sc.MinVersion)
	require.Equal(t, tls.RequireAndVerifyClientCert, sc.ClientAuth)
	require.True(t, sc.SessionTicketsDisabled)
}

func TestIssueRejects(t *testing.T) {
	ca, err := pki.NewCA("test", time.Hour)
	require.NoError(t, err)
	cases := map[string]struct {
		r       pki.Request
		mention string
	}{
		"no kind":          {pki.Request{Name: "x"}, `kind ""`},
		"bad name":         {pki.Request{Kind: pki.KindUser, Name: "al ice"}, `"al ice"`},
		"slash":            {pki.Request{Kind: pki.KindUser, Name: "../x"}, `"../x"`},
		"bad group":        {pki.Request{Kind: pki.KindUser, Name: "a", Groups: []string{"o,ps"}}, `"o,ps"`},
		"member groups":    {pki.Request{Kind: pki.KindMember, Name: "sn1", Groups: []string{"ops"}}, "groups are for user"},
		"user host names":  {pki.Request{Kind: pki.KindUser, Name: "a", DNSNames: []string{"h"}}, "host names"},
		"bad member label": {pki.Request{Kind: pki.KindMember, Name: "sn1", DNSNames: []string{"a..b"}}, `""`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ca.Issue(c.r)
			require.ErrorIs(t, err, pki.ErrInvalid)
			require.Contains(t, err.Error(), c.mention)
		})
	}
	// Capped at the CA's expiry.
	is, err := ca.Issue(pki.Request{Kind: pki.KindUser, Name: "a"})
	require.NoError(t, err)
	require.False(t, is.Cert.NotAfter.After(ca.Cert.NotAfter))
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	require.NoError(t, err)
	return fi.Mode().Perm()
}

// Keys are 0600 (even over a 0644 file), certificates 0644; init does
// not replace a CA without force; rotation trusts old and new until it
// is finished.
func TestFilesAndRotation(t *testing.T) {
	d := pki.Dir(filepath.Join(t.TempDir(), "pki"))
	ca, err := pki.InitCA(d, "test", 0, false)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), mode(t, d.CAKey()))
	require.Equal(t, os.FileMode(0o644), mode(t, d.CACert()))
	_, err = pki.InitCA(d, "test", 0, false)
	require.ErrorIs(t, err, pki.ErrExists)

	is, err := ca.Issue(pki.Request{Kind: pki.KindMember, Name: "mn1"})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(d.MemberKey(), []byte("old"), 0o644))
	require.ErrorIs(t, pki.WritePair(d.MemberCert(), d.MemberKey(), is, false), pki.ErrExists)
	require.NoError(t, pki.WritePair(d.MemberCert(), d.MemberKey(), is, true))
	require.Equal(t, os.FileMode(0o600), mode(t, d.MemberKey()))
	creds, err := pki.LoadMember(d)
	require.NoError(t, err)
	require.Equal(t, "mn1", creds.Identity.Name)

	loaded, err := pki.LoadCA(d)
	require.NoError(t, err)
	require.True(t, loaded.Cert.Equal(ca.Cert))

	// Rotate: the new CA first, the old still trusted; mn1's old
	// certificate still loads; a certificate of the new CA loads too.
	next, err := pki.RotateCA(d, "test", 0)
	require.NoError(t, err)
	certs, err := pki.ReadCerts(d.CACert())
	require.NoError(t, err)
	require.Len(t, certs, 2)
	require.True(t, certs[0].Equal(next.Cert))
	require.Equal(t, os.FileMode(0o600), mode(t, d.CAKey()))
	_, err = pki.LoadMember(d)
	require.NoError(t, err, "old member certificate trusted during the rotation")
	is2, err := next.Issue(pki.Request{Kind: pki.KindMember, Name: "mn1"})
	require.NoError(t, err)
	require.NoError(t, pki.WritePair(d.MemberCert(), d.MemberKey(), is2, true))
	_, err = pki.LoadMember(d)
	require.NoError(t, err)

	n, err := pki.FinishRotation(d)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, err = os.Stat(d.CAKey() + ".prev")
	require.True(t, os.IsNotExist(err))
	_, err = pki.NewCredentials(is.CertPEM, is.KeyPEM, mustCerts(t, d.CACert()))
	require.ErrorIs(t, err, pki.ErrNotIssued, "the old CA's certificates are no longer trusted")
	infos, err := pki.Describe(d.MemberCert())
	require.NoError(t, err)
	require.Equal(t, "member", infos[0].Kind)
	require.Equal(t, "mn1", infos[0].Name)
}

func mustCerts(t *testing.T, p string) []*x509.Certificate {
	c, err := pki.ReadCerts(p)
	require.NoError(t, err)
	return c
}

func TestWatchMemberRefusesAnotherMembersCertificate(t *testing.T) {
	d := pki.Dir(t.TempDir())
	ca, err := pki.InitCA(d, "test", 0, false)
	require.NoError(t, err)
	is, err := ca.Issue(pki.Request{Kind: pki.KindMember, Name: "sn2"})
	require.NoError(t, err)
	require.NoError(t, pki.WritePair(d.MemberCert(), d.MemberKey(), is, false))
	_, err = pki.WatchMember(d, "sn1", nil)
	require.ErrorIs(t, err, pki.ErrInvalid)
	require.Contains(t, err.Error(), "names member sn2, but this is sn1")
	src, err := pki.WatchMember(d, "sn2", nil)
	require.NoError(t, err)
	require.Equal(t, "sn2", src.Credentials().Identity.Name)
}
