package cli

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/dsn"
)

// MySQL server error numbers (recognised by number, never by text).
const (
	errBadDB             = 1049 // ER_BAD_DB_ERROR: unknown database
	errDBAccessDenied    = 1044 // ER_DBACCESS_DENIED_ERROR
	errAccessDenied      = 1045 // ER_ACCESS_DENIED_ERROR
	errTableAccessDeny   = 1142 // ER_TABLEACCESS_DENIED_ERROR
	errSpecificAccess    = 1227 // ER_SPECIFIC_ACCESS_DENIED_ERROR
	createDBProbeTimeout = 10 * time.Second
)

// dbNameRe is what ensureDatabase will put into CREATE DATABASE: an
// identifier cannot be a query parameter, so only plain names.
var dbNameRe = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// ensureDatabase is for `mnpool init` on MariaDB: when the first Galera
// node that answers says the database does not exist (error 1049), it
// creates it (the DDL replicates to every node), or, when the account may
// not, says which database is missing and the SQL an administrator runs.
// Any other answer is left to pool.Open, which reports node health.
func ensureDatabase(ctx context.Context, d dsn.DSN) error {
	if d.Kind != dsn.MySQL {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, createDBProbeTimeout)
	defer cancel()
	for _, cfg := range d.MySQL {
		code, err := connectError(ctx, cfg)
		switch {
		case err != nil:
			continue // this node does not answer; try the next
		case code == errBadDB:
			return createDatabase(ctx, cfg)
		case code == errDBAccessDenied:
			// MariaDB says "access denied", not "unknown database", to
			// an account with no privilege on the name at all.
			return fmt.Errorf("%w: user %q may not use database %q on %s (MariaDB error %d): the database does not exist or the user has no privileges on it; as a MariaDB administrator run once, on any Galera node:\n%s\nthen run mnpool init again",
				pool.ErrNotInitialized, cfg.User, cfg.DBName, cfg.Addr, code, createSQL(cfg))
		}
		return nil
	}
	return nil
}

// connectError connects to one node with the DSN's database selected and
// returns the server's error number (0: connected); err when the node did
// not answer with a server error.
func connectError(ctx context.Context, cfg *mysql.Config) (int, error) {
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return 0, err
	}
	db := sql.OpenDB(c)
	defer db.Close()
	err = db.PingContext(ctx)
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return int(me.Number), nil
	}
	return 0, err
}

func createDatabase(ctx context.Context, cfg *mysql.Config) error {
	name := cfg.DBName
	if !dbNameRe.MatchString(name) {
		return fmt.Errorf("%w: database %q does not exist on %s, and mnpool creates only names of letters, digits and '_'; create it yourself:\n%s",
			pool.ErrNotInitialized, name, cfg.Addr, createSQL(cfg))
	}
	server := cfg.Clone()
	server.DBName = ""
	c, err := mysql.NewConnector(server)
	if err != nil {
		return err
	}
	db := sql.OpenDB(c)
	defer db.Close()
	_, err = db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case errDBAccessDenied, errAccessDenied, errTableAccessDeny, errSpecificAccess:
			return fmt.Errorf("%w: database %q does not exist on %s, and user %q may not create it (MariaDB error %d); as a MariaDB administrator run once, on any Galera node:\n%s\nthen run mnpool init again",
				pool.ErrNotInitialized, name, cfg.Addr, cfg.User, me.Number, createSQL(cfg))
		}
	}
	if err != nil {
		return fmt.Errorf("%w: database %q does not exist on %s and creating it failed: %v; create it yourself:\n%s",
			pool.ErrNotInitialized, name, cfg.Addr, err, createSQL(cfg))
	}
	return nil
}

// createSQL is what an administrator runs to make the database for user.
func createSQL(cfg *mysql.Config) string {
	return fmt.Sprintf("  CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;\n  GRANT ALL PRIVILEGES ON `%s`.* TO '%s'@'%%';",
		cfg.DBName, cfg.DBName, cfg.User)
}
