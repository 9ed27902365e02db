package cli_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/cli"
	"github.com/mnpool/mnpool/internal/testgalera"
)

func randomName(t *testing.T, prefix string) string {
	var b [6]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return prefix + hex.EncodeToString(b[:])
}

// withDatabase rewrites every node DSN of env to the database name (and
// user:password when given).
func withDatabase(env *testgalera.Env, name, userPass string) string {
	dsns := env.NodeDSNs()
	for i, d := range dsns {
		at := strings.Index(d, "@")
		slash := strings.LastIndex(d, "/")
		q := strings.Index(d[slash:], "?")
		rest := ""
		if q >= 0 {
			rest = d[slash+q:]
		}
		creds := d[len("mysql:"):at]
		if userPass != "" {
			creds = userPass
		}
		dsns[i] = "mysql:" + creds + d[at:slash+1] + name + rest
	}
	return strings.Join(dsns, ",")
}

// mnpool init on Galera where the database does not exist creates it when
// the account may, and otherwise names the database and the SQL to run.
func TestInitCreatesOrExplainsTheDatabase(t *testing.T) {
	env := testgalera.Open(t)
	admin := env.DB(t, 1)

	name := randomName(t, "mnpool_t_init_")
	t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS `" + name + "`") })
	dsn := withDatabase(env, name, "")
	code, errs := runProgram(cli.Mnpool, "--db", dsn, "--self", "mn1", "init", "--mn", "mn1")
	require.Equal(t, 0, code, errs)
	mustRun(t, dsn, "status")

	// A user with some privileges on the missing database but not CREATE:
	// the server says it does not exist (1049), creating it is refused.
	missing := randomName(t, "mnpool_t_missing_")
	user := randomName(t, "mnpool_nc_")
	_, err := admin.Exec(fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY 'pw'", user))
	require.NoError(t, err)
	t.Cleanup(func() { admin.Exec(fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", user)) })
	_, err = admin.Exec(fmt.Sprintf("GRANT SELECT, INSERT, UPDATE, DELETE ON `%s`.* TO '%s'@'%%'", missing, user))
	require.NoError(t, err)
	code, errs = runProgram(cli.Mnpool, "--db", withDatabase(env, missing, user+":pw"), "--self", "mn1", "init", "--mn", "mn1")
	require.Equal(t, cli.ExitFailed, code, errs)
	require.Contains(t, errs, fmt.Sprintf("database %q does not exist", missing))
	require.Contains(t, errs, fmt.Sprintf("user %q may not create it", user))
	require.Contains(t, errs, "CREATE DATABASE IF NOT EXISTS `"+missing+"`")
	require.Contains(t, errs, "GRANT ALL PRIVILEGES ON `"+missing+"`.* TO '"+user+"'@'%'")
	var n int
	require.NoError(t, admin.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", missing).Scan(&n))
	require.Zero(t, n, "nothing created")

	// A user with no privilege on the name: the server only says "access
	// denied" (1044); the message still names the database and the SQL.
	other := randomName(t, "mnpool_t_other_")
	code, errs = runProgram(cli.Mnpool, "--db", withDatabase(env, other, user+":pw"), "--self", "mn1", "init", "--mn", "mn1")
	require.Equal(t, cli.ExitFailed, code, errs)
	require.Contains(t, errs, fmt.Sprintf("user %q may not use database %q", user, other))
	require.Contains(t, errs, "CREATE DATABASE IF NOT EXISTS `"+other+"`")
}
