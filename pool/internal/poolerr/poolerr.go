// Package poolerr holds the pool package's sentinel errors that its leaf
// packages (pool/dsn) return too, so that errors.Is(err, pool.ErrInvalid)
// holds for their errors. pool re-exports them; use those names.
package poolerr

import "errors"

// ErrInvalid is pool.ErrInvalid.
var ErrInvalid = errors.New("pool: invalid value")
