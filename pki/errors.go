package pki

import "errors"

// Sentinel errors of the pki package, matched with errors.Is.
var (
	// ErrInvalid: a name, group or option failed validation; nothing
	// was written.
	ErrInvalid = errors.New("pki: invalid value")
	// ErrExists: the file would be overwritten and Force was not given.
	ErrExists = errors.New("pki: file exists")
	// ErrNoCA: the CA certificate or key is missing or unreadable.
	ErrNoCA = errors.New("pki: no CA")
	// ErrNotIssued: a peer's certificate is not one this package issues
	// (no kind, a bad name, or not valid for the purpose).
	ErrNotIssued = errors.New("pki: certificate not issued by the pool")
)
