package dsn_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/testgalera"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/dsn"
)

// escapeAll writes every byte that is not a letter or digit as %XX.
func escapeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// specialPasswords hold each character that used to break a DSN.
var specialPasswords = map[string]string{
	"colon": "Top:Secret:PW",
	"comma": "Top,Secret,PW",
	"at":    "Top@Secret@PW",
	"hash":  "Top#Secret#PW",
	"all":   "T:o,p@S#e%c/r?e t",
}

func TestDSNSpecialPasswords(t *testing.T) {
	for name, pw := range specialPasswords {
		t.Run(name, func(t *testing.T) {
			forms := []string{"mysql:u:" + escapeAll(pw) + "@tcp(127.0.0.1:3306)/pool"}
			if !strings.ContainsAny(pw, ",%?/ ") { // these must be escaped
				forms = append(forms, "mysql:u:"+pw+"@tcp(127.0.0.1:3306)/pool")
			}
			for _, source := range forms {
				d, err := dsn.Parse(source + ",tcp(127.0.0.2:3306)")
				require.NoError(t, err, "escaped form %v", source == forms[0])
				require.Len(t, d.MySQL, 2)
				for _, c := range d.MySQL {
					require.Equal(t, pw, c.Passwd)
					require.Equal(t, "u", c.User)
					require.Equal(t, "pool", c.DBName)
				}
				require.NotContains(t, d.String(), "Secret")
				require.NotContains(t, d.String(), "PW")
			}
		})
	}
}

// TestDSNErrorsRedacted: no error shows any part of the password, with
// each special character, whatever is wrong with the DSN.
func TestDSNErrorsRedacted(t *testing.T) {
	for name, pw := range specialPasswords {
		t.Run(name, func(t *testing.T) {
			for _, source := range []string{
				"mysql:root:" + pw + "tcp(127.0.0.1:1)/mnpool", // the @ forgotten
				"mysql:root:" + pw + "#tcp(127.0.0.1:1)/mnpool",
				"mysql:root:" + pw + "@bogus(127.0.0.1:1)/mnpool",
				"mysql:root:" + pw + "@tcp(127.0.0.1:1)/",
				"mysql:root:" + pw + "@tcp(127.0.0.1:1",
				"mysql:root:" + escapeAll(pw) + "%zz@tcp(127.0.0.1:1)/mnpool",
				"mariadb:root:" + pw + "@tcp(127.0.0.1:1)/mnpool",
				"mysql:root:" + pw + "@tcp(127.0.0.1:1)/mnpool?passfile=/nonexistent",
			} {
				_, err := dsn.Parse(source)
				require.ErrorIs(t, err, pool.ErrInvalid, source)
				requireNoSecret(t, err.Error(), pw)
				requireNoSecret(t, dsn.Mask(source), pw)
			}
		})
	}
	// The message still helps: the element, the user, what is wrong.
	_, err := dsn.Parse("mysql:root:TopSecretPW#tcp(127.0.0.1:1)/mnpool")
	require.ErrorContains(t, err, `"mysql:root:***"`)
	require.ErrorContains(t, err, "no '@tcp('")
}

// requireNoSecret fails when msg holds the password or any piece of it
// between its special characters.
func requireNoSecret(t *testing.T, msg, pw string) {
	t.Helper()
	for _, piece := range strings.FieldsFunc(pw, func(r rune) bool { return strings.ContainsRune(":,@#%/? ", r) }) {
		if len(piece) >= 3 {
			require.NotContains(t, msg, piece, "password piece %q in %q", piece, msg)
		}
	}
	require.NotContains(t, msg, escapeAll(pw))
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestDSNDriverErrorRedacted: the driver's own dial error (a closed port
// on loopback) leaves the store without the password.
func TestDSNDriverErrorRedacted(t *testing.T) {
	addr := closedPort(t)
	for name, pw := range specialPasswords {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := pool.Open(ctx, "mysql:root:"+escapeAll(pw)+"@tcp("+addr+")/mnpool",
				pool.WithRetry(1, 10*time.Millisecond, 10*time.Millisecond))
			require.NoError(t, err, "Open does not dial")
			defer s.Close()
			_, err = s.SchemaVersion(ctx)
			require.Error(t, err)
			require.Contains(t, err.Error(), addr, "the error still names the address")
			requireNoSecret(t, err.Error(), pw)
			h, err := s.Health(ctx)
			if err != nil {
				requireNoSecret(t, err.Error(), pw)
			}
			requireNoSecret(t, h.Problem, pw)
		})
	}
}

func TestDSNPasswordFile(t *testing.T) {
	dir := t.TempDir()
	pf := filepath.Join(dir, "db.pass")
	require.NoError(t, os.WriteFile(pf, []byte("T:o,p@S#e%c\n"), 0o600))
	d, err := dsn.Parse("mysql:u@tcp(127.0.0.1:3306)/pool?passfile=" + pf)
	require.NoError(t, err)
	require.Equal(t, "T:o,p@S#e%c", d.MySQL[0].Passwd)
	require.NotContains(t, d.MySQL[0].Params, "passfile", "not sent to the server")
	require.Empty(t, d.SecretFileWarnings(""))

	t.Setenv(dsn.EnvPasswordFile, pf)
	d, err = dsn.Parse("mysql:u@tcp(127.0.0.1:3306)/pool")
	require.NoError(t, err)
	require.Equal(t, "T:o,p@S#e%c", d.MySQL[0].Passwd)

	_, err = dsn.Parse("mysql:u:pw@tcp(127.0.0.1:3306)/pool?passfile=" + pf)
	require.ErrorContains(t, err, "both a password and passfile")

	require.NoError(t, os.Chmod(pf, 0o644))
	d, err = dsn.Parse("mysql:u@tcp(127.0.0.1:3306)/pool")
	require.NoError(t, err)
	w := d.SecretFileWarnings("")
	require.Len(t, w, 1)
	require.Contains(t, w[0], pf)
	require.Contains(t, w[0], "chmod 600")
}

func TestDSNFileWarning(t *testing.T) {
	t.Setenv(dsn.EnvPasswordFile, "")
	dir := t.TempDir()
	f := filepath.Join(dir, "db")
	require.NoError(t, os.WriteFile(f, []byte("mysql:u:secret@tcp(127.0.0.1:3306)/pool\n"), 0o644))
	require.NoError(t, os.Chmod(f, 0o644))
	d, err := dsn.Parse("mysql:u:secret@tcp(127.0.0.1:3306)/pool")
	require.NoError(t, err)
	w := d.SecretFileWarnings(f)
	require.Len(t, w, 1)
	require.Contains(t, w[0], "mode 0644")
	require.NotContains(t, w[0], "secret@")
	require.NoError(t, os.Chmod(f, 0o600))
	require.Empty(t, d.SecretFileWarnings(f))
	sq, err := dsn.Parse("sqlite:/x.db")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(f, 0o644))
	require.Empty(t, sq.SecretFileWarnings(f), "no password, nothing to warn about")
}

// TestSQLiteCreated0600: a new pool.db and its -wal and -shm are 0600.
func TestSQLiteCreated0600(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pool.db")
	s, err := pool.Open(context.Background(), "sqlite:"+p, pool.WithMigrate())
	require.NoError(t, err)
	defer s.Close()
	for _, f := range []string{p, p + "-wal", p + "-shm"} {
		st, err := os.Stat(f)
		require.NoError(t, err, f)
		require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), f)
	}
}

// TestSpecialPasswordOnGalera: a MariaDB user whose password holds
// : , @ # and % logs in with the escaped DSN and with a password file.
func TestSpecialPasswordOnGalera(t *testing.T) {
	env := testgalera.Open(t)
	admin := env.DB(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var rnd [6]byte
	rand.Read(rnd[:])
	user := "mnpool_pw_" + hex.EncodeToString(rnd[:])
	const pw = "T:o,p@S#e%cr/et"
	_, err := admin.ExecContext(ctx, "CREATE USER '"+user+"'@'127.0.0.1' IDENTIFIED BY '"+pw+"'") // pw has no quote or backslash
	require.NoError(t, err)
	t.Cleanup(func() { admin.ExecContext(context.Background(), "DROP USER '"+user+"'@'127.0.0.1'") })
	_, err = admin.ExecContext(ctx, "GRANT ALL ON `"+env.Database()+"`.* TO '"+user+"'@'127.0.0.1'")
	require.NoError(t, err)

	pf := filepath.Join(t.TempDir(), "db.pass")
	require.NoError(t, os.WriteFile(pf, []byte(pw+"\n"), 0o600))
	for _, source := range []string{
		"mysql:" + user + ":" + escapeAll(pw) + "@tcp(" + env.Addr(1) + ")/" + env.Database(),
		"mysql:" + user + "@tcp(" + env.Addr(1) + ")/" + env.Database() + "?passfile=" + pf,
	} {
		s, err := pool.Open(ctx, source, pool.WithMigrate())
		require.NoError(t, err)
		_, err = s.SchemaVersion(ctx)
		require.NoError(t, err)
		s.Close()
	}
	// A wrong password: the server says no, and the message has no password.
	s, err := pool.Open(ctx, "mysql:"+user+":"+escapeAll(pw+"x")+"@tcp("+env.Addr(1)+")/"+env.Database(), pool.WithRetry(1, 10*time.Millisecond, 10*time.Millisecond))
	require.NoError(t, err)
	defer s.Close()
	_, err = s.SchemaVersion(ctx)
	require.Error(t, err)
	requireNoSecret(t, err.Error(), pw)
}
