package dsn

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRedactLeavesCleanErrors(t *testing.T) {
	require.NoError(t, redact(nil, []string{"x"}))
	plain := errors.New("nothing secret")
	require.Same(t, plain, redact(plain, []string{"pw"}), "an error without the password is left as is")
}
