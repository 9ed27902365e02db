package pool

import (
	"errors"

	"github.com/mnpool/mnpool/pool/internal/valid"
)

// Sentinel errors of the pool package. Every error returned by a Store
// operation that is caused by one of these conditions wraps the sentinel, so
// callers match with errors.Is; the message names the offending value.
var (
	// ErrInvalid: a value failed validation (a name, a MAC, an IP outside
	// its network, an unknown member in a servicenode list, ...). Nothing
	// was written.
	ErrInvalid = valid.ErrInvalid
	// ErrNotFound: the named object (node, member, network, site key) does
	// not exist.
	ErrNotFound = errors.New("pool: not found")
	// ErrExists: an object with that name (or that MAC or IP) exists already.
	ErrExists = errors.New("pool: already exists")
	// ErrConflict: the operation lost a race or contradicts the current
	// state (a concurrent promotion won, a member is still in use, ...).
	ErrConflict = errors.New("pool: conflict")
	// ErrUnavailable: no database node is healthy enough to serve the
	// request (for Galera: Primary, ready and Synced).
	ErrUnavailable = errors.New("pool: database unavailable")
	// ErrNotInitialized: the pool has no MN yet; run `mnpool init`.
	ErrNotInitialized = errors.New("pool: not initialized")
	// ErrSchemaTooNew: the database was migrated by a newer mnpool.
	ErrSchemaTooNew = errors.New("pool: database schema is newer than this program")
)
