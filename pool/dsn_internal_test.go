package pool

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// leakyConnector fails the way the driver did before DSNs were checked:
// its dial error repeats the network string, password included.
type leakyConnector struct{ pw string }

var errDial = errors.New("unknown network")

func (c leakyConnector) Connect(context.Context) (driver.Conn, error) {
	return nil, &net.OpError{Op: "dial", Net: "root:" + c.pw + "#tcp", Err: fmt.Errorf("%w", errDial)}
}
func (c leakyConnector) Driver() driver.Driver { return nil }

// TestRedactingConnector: whatever the driver's error says, the password
// leaves the store as ***, and the error chain is kept for errors.Is/As.
func TestRedactingConnector(t *testing.T) {
	for _, pw := range []string{"Top:Secret", "Top,Secret", "Top@Secret", "Top#Secret", "Top%Secret"} {
		c := redactingConnector{leakyConnector{pw}, pw}
		_, err := c.Connect(context.Background())
		require.Error(t, err)
		require.NotContains(t, err.Error(), "Secret", pw)
		require.Contains(t, err.Error(), "root:***#tcp")
		require.ErrorIs(t, err, errDial)
		var oe *net.OpError
		require.ErrorAs(t, err, &oe)
	}
}
