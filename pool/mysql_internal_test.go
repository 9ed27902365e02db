package pool

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// TestMySQLClassify: errors are told apart by server error number and
// by error value, never by message text.
func TestMySQLClassify(t *testing.T) {
	b := &mysqlBackend{}
	for name, c := range map[string]struct {
		err  error
		want errClass
	}{
		"certification failure":     {&mysql.MySQLError{Number: 1213}, errRetry},
		"not ready":                 {fmt.Errorf("query: %w", &mysql.MySQLError{Number: 1047}), errNode},
		"commit outcome unknown":    {&mysql.MySQLError{Number: 1180}, errNode},
		"duplicate key":             {&mysql.MySQLError{Number: 1062}, errFatal},
		"bad connection":            {driver.ErrBadConn, errNode},
		"invalid connection":        {mysql.ErrInvalidConn, errNode},
		"refused":                   {&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, errNode},
		"broken pipe":               {fmt.Errorf("write: %w", os.NewSyscallError("write", syscall.EPIPE)), errNode},
		"reset":                     {syscall.ECONNRESET, errNode},
		"refused in words only":     {errors.New("connection refused"), errFatal},
		"broken pipe in words only": {errors.New("write: broken pipe"), errFatal},
	} {
		if got := b.classify(c.err); got != c.want {
			t.Errorf("%s: classify(%v) = %v, want %v", name, c.err, got, c.want)
		}
	}
}
