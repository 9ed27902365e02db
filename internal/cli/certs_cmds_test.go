package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/pki"
)

func perm(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	require.NoError(t, err)
	return fi.Mode().Perm()
}

func TestCertsCLI(t *testing.T) {
	db := newPool(t)
	dir := filepath.Join(t.TempDir(), "pki")
	d := pki.Dir(dir)

	// sn2 runs dhcp and dns only: no CA key there unless asked.
	code, _, errs := mnpool(t, db, "--self", "sn2", "certs", "init", "--dir", dir)
	require.Equal(t, 1, code)
	require.Contains(t, errs, "sn2 does not hold the db service")
	_, err := os.Stat(d.CAKey())
	require.True(t, os.IsNotExist(err), "nothing written")

	out := mustRun(t, db, "--self", "mn1", "certs", "init", "--dir", dir)
	require.Contains(t, out, "member certificate of mn1 written")
	require.Equal(t, os.FileMode(0o600), perm(t, d.CAKey()))
	require.Equal(t, os.FileMode(0o600), perm(t, d.MemberKey()))
	code, _, errs = mnpool(t, db, "--self", "mn1", "certs", "init", "--dir", dir)
	require.Equal(t, 1, code)
	require.Contains(t, errs, "--force")

	out = mustRun(t, db, "--self", "mn1", "certs", "issue", "--dir", dir, "--member", "sn2")
	require.Contains(t, out, "copy "+filepath.Join(dir, "members", "sn2"))
	creds, err := pki.LoadMember(pki.Dir(filepath.Join(dir, "members", "sn2")))
	require.NoError(t, err)
	require.Equal(t, "sn2", creds.Identity.Name)
	require.Equal(t, "10.0.0.3", creds.Cert.Leaf.IPAddresses[0].String())

	mustRun(t, db, "--self", "mn1", "certs", "issue", "--dir", dir, "--user", "alice", "--group", "ops,admins")
	require.Equal(t, os.FileMode(0o600), perm(t, d.UserKey("alice")))
	code, _, errs = mnpool(t, db, "--self", "mn1", "certs", "issue", "--dir", dir, "--user", "alice")
	require.Equal(t, 1, code)
	require.Contains(t, errs, "--force")

	for _, c := range []struct {
		args    []string
		code    int
		mention string
	}{
		{[]string{"certs", "issue", "--dir", dir}, 2, "--member NAME or --user NAME"},
		{[]string{"certs", "issue", "--dir", dir, "--member", "sn1", "--user", "a"}, 2, "--member NAME or --user NAME"},
		{[]string{"certs", "issue", "--dir", dir, "--member", "sn1", "--group", "ops"}, 2, "--group is for --user"},
		{[]string{"certs", "issue", "--dir", dir, "--user", "../etc/x"}, 2, `"../etc/x"`},
		{[]string{"certs", "issue", "--dir", dir, "--member", "sn9"}, 2, "sn9"},
		{[]string{"certs", "issue", "--dir", t.TempDir(), "--user", "bob"}, 1, "no CA"},
	} {
		t.Run(strings.Join(c.args[3:], " "), func(t *testing.T) {
			code, _, errs := mnpool(t, db, append([]string{"--self", "mn1"}, c.args...)...)
			require.Equal(t, c.code, code, errs)
			require.Contains(t, errs, c.mention)
		})
	}

	var infos []pki.CertInfo
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, db, "certs", "show", "--dir", dir, "--json")), &infos))
	require.Len(t, infos, 3, "ca, member, alice")
	require.True(t, infos[0].IsCA)
	require.Equal(t, "alice", infos[2].Name)
	require.Equal(t, []string{"admins", "ops"}, infos[2].Groups)
	require.Contains(t, mustRun(t, db, "certs", "show", "--dir", dir), "member  mn1")

	require.Contains(t, mustRun(t, db, "certs", "rotate", "--dir", dir), "old one stays trusted")
	certs, err := pki.ReadCerts(d.CACert())
	require.NoError(t, err)
	require.Len(t, certs, 2)
	require.Contains(t, mustRun(t, db, "certs", "rotate", "--dir", dir, "--finish"), "1 old CA(s) dropped")
	_, err = pki.LoadMember(d)
	require.ErrorIs(t, err, pki.ErrNotIssued, "mn1's certificate of the old CA is no longer trusted")
	mustRun(t, db, "--self", "mn1", "certs", "issue", "--dir", dir, "--member", "mn1", "--force")
	_, err = pki.LoadMember(d)
	require.NoError(t, err)
}
