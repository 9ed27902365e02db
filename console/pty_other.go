//go:build !linux

package console

import (
	"fmt"
	"io"
	"time"
)

func startPTY(prog string, argv, env []string, grace time.Duration) (io.ReadWriteCloser, error) {
	return nil, fmt.Errorf("%w: command consoles need Linux pseudo-terminals", ErrInvalid)
}
