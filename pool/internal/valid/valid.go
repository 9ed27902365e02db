// Package valid holds the pool package's ErrInvalid and the checks of
// names and domains that pool's leaf packages (pool/dsn, pool/siteschema)
// need too, so that their errors match errors.Is(err, pool.ErrInvalid).
// pool re-exports them (pool.ErrInvalid, pool.ValidateName,
// pool.ValidateDomain); use those names.
package valid

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/mnpool/mnpool/internal/syntax"
)

// ErrInvalid is pool.ErrInvalid.
var ErrInvalid = errors.New("pool: invalid value")

// Name is pool.ValidateName.
func Name(kind, name string) error {
	if !syntax.HostLabelRE.MatchString(name) {
		return fmt.Errorf("%w: %s name %q: want an RFC 1123 host label (letters, digits, '-', 1-63 characters, no leading or trailing '-')", ErrInvalid, kind, name)
	}
	return nil
}

// Domain is pool.ValidateDomain.
func Domain(d string) error {
	if d == "" {
		return nil
	}
	if len(d) > 253 {
		return fmt.Errorf("%w: domain %q is longer than 253 characters", ErrInvalid, d)
	}
	for _, p := range strings.Split(d, ".") {
		if !syntax.HostLabelRE.MatchString(p) {
			return fmt.Errorf("%w: domain %q: label %q must be letters, digits and '-' (1-63 characters)", ErrInvalid, d, p)
		}
	}
	return nil
}

// Patterns of a network name and of a network interface name.
var (
	NetNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	IfNameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,31}$`)
)
