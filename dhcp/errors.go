package dhcp

import "errors"

// Sentinel errors of the dhcp package, matched with errors.Is. The
// messages of the wrapping errors name the offending value.
var (
	// ErrInvalid: a value of the pool state or the options cannot be put
	// into a configuration (a bad name, MAC, address, file name, ...).
	// Nothing was rendered.
	ErrInvalid = errors.New("dhcp: invalid value")
	// ErrNotServer: the member does not exist or does not run the dhcp
	// service.
	ErrNotServer = errors.New("dhcp: not a DHCP server of the pool")
	// ErrFormat: an unknown configuration format, or a file that is not a
	// configuration written by mnpool.
	ErrFormat = errors.New("dhcp: bad format")
	// ErrCheck: the daemon's configuration check rejected the file, or
	// the daemon is not installed when a check was required.
	ErrCheck = errors.New("dhcp: configuration check failed")
	// ErrReload: the daemon could not be told to load the new file. The
	// file itself was written.
	ErrReload = errors.New("dhcp: reload failed")
)
