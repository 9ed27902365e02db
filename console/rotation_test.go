package console_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/console"
	"github.com/mnpool/mnpool/pki"
)

// issueTo issues a user certificate from ca, trusting the bundle of d.
func issueTo(t *testing.T, ca *pki.CA, d pki.Dir, user string) console.DialFunc {
	t.Helper()
	is, err := ca.Issue(pki.Request{Kind: pki.KindUser, Name: user})
	require.NoError(t, err)
	bundle, err := pki.ReadCerts(d.CACert())
	require.NoError(t, err)
	c, err := pki.NewCredentials(is.CertPEM, is.KeyPEM, bundle)
	require.NoError(t, err)
	return console.ClientDialer(c.ClientConfig(""))
}

// A CA rotation on a running broker: the broker takes the new bundle and
// its new certificate from its files without a restart; old and new
// certificates work during the rotation; after --finish the old CA's
// certificates are refused.
func TestCARotationWithoutRestart(t *testing.T) {
	ep1, ep2 := newFakeEndpoint(t, "cn001"), newFakeEndpoint(t, "cn002")
	dsns := backends()[0].dsns(t, 1)
	seedPool(t, openStore(t, dsns[0], "mn1"), ep1.Addr(), ep2.Addr())

	d := pki.Dir(filepath.Join(t.TempDir(), "pki"))
	ca1, err := pki.InitCA(d, "test", 0, false)
	require.NoError(t, err)
	is, err := ca1.Issue(pki.Request{Kind: pki.KindMember, Name: "sn1"})
	require.NoError(t, err)
	require.NoError(t, pki.WritePair(d.MemberCert(), d.MemberKey(), is, false))
	load := func() (*pki.Credentials, error) { return pki.LoadMember(d) }
	src, err := pki.NewSource(load, -1, nil, d.MemberCert(), d.MemberKey(), d.CACert())
	require.NoError(t, err)

	b, err := console.NewBroker(openStore(t, dsns[0], "sn1"), "sn1", console.WithCredentialSource(src))
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx, ln) }()
	defer func() {
		cancel()
		<-done
	}()
	addr := ln.Addr().String()
	attach := func(dial console.DialFunc) error {
		dctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		conn, _, err := console.Dial(dctx, dial, addr, console.Hello{Node: "cn001", Mode: console.ModeWatch}, nil)
		if err == nil {
			conn.Close()
		}
		return err
	}
	oldUser := issueTo(t, ca1, d, "olduser")
	require.NoError(t, attach(oldUser))

	// Rotate: new CA first in the bundle, sn1 gets a certificate of it.
	ca2, err := pki.RotateCA(d, "test", 0)
	require.NoError(t, err)
	is, err = ca2.Issue(pki.Request{Kind: pki.KindMember, Name: "sn1"})
	require.NoError(t, err)
	require.NoError(t, pki.WritePair(d.MemberCert(), d.MemberKey(), is, true))
	newUser := issueTo(t, ca2, d, "newuser")
	require.NoError(t, attach(newUser), "a certificate of the new CA, with no broker restart")
	oldUser = issueTo(t, ca1, d, "olduser") // trusting the new bundle
	require.NoError(t, attach(oldUser), "the old CA is still trusted during the rotation")
	require.True(t, src.Credentials().Cert.Leaf.Equal(is.Cert))

	_, err = pki.FinishRotation(d)
	require.NoError(t, err)
	// Refused in the handshake: the client has no certificate the
	// broker asks for ("certificate required"), or sends it anyway and
	// it is not trusted ("unknown certificate authority").
	err = attach(oldUser)
	require.Error(t, err)
	require.Regexp(t, "certificate required|unknown certificate authority", err.Error())
	require.NoError(t, attach(newUser))

	// A broken file (a certificate without its key) keeps the last good
	// credentials.
	is3, err := ca2.Issue(pki.Request{Kind: pki.KindMember, Name: "sn1"})
	require.NoError(t, err)
	require.NoError(t, pki.WriteCert(d.MemberCert(), is3.CertPEM))
	require.NoError(t, attach(newUser))
	require.Error(t, src.Err())
}
