package pool

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/mnpool/mnpool/pool/dsn"
)

// GaleraDetection returns the failure detection time of the Galera
// cluster under the store, read from the node in use:
// evs.suspect_timeout + evs.inactive_timeout of wsrep_provider_options
// (Galera's defaults, 5 s and 15 s, for a key not set). Lease and liveness
// timeouts must be well above it (docs/DESIGN.md, *minority-primary*). It
// is 0 on SQLite and on MariaDB without wsrep.
func (s *Store) GaleraDetection(ctx context.Context) (time.Duration, error) {
	if s.Kind() != dsn.MySQL {
		return 0, nil
	}
	var opts sql.NullString
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		opts = sql.NullString{}
		err := tx.GetContext(ctx, &opts, "SELECT @@GLOBAL.wsrep_provider_options")
		if mysqlErrNo(err) == erUnknownSysVar {
			return nil // a server built without wsrep
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("pool: reading wsrep_provider_options: %w", err)
	}
	return parseGaleraDetection(opts.String)
}

// parseGaleraDetection returns evs.suspect_timeout + evs.inactive_timeout
// from a wsrep_provider_options string ("k = v; k = v; ..."), Galera's
// defaults (PT5S, PT15S) for keys not given, and 0 for an empty string.
func parseGaleraDetection(providerOptions string) (time.Duration, error) {
	if strings.TrimSpace(providerOptions) == "" {
		return 0, nil
	}
	vals := map[string]time.Duration{"evs.suspect_timeout": 5 * time.Second, "evs.inactive_timeout": 15 * time.Second}
	for _, kv := range strings.Split(providerOptions, ";") {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if _, want := vals[k]; !ok || !want {
			continue
		}
		d, err := parseISODuration(strings.TrimSpace(v))
		if err != nil {
			return 0, fmt.Errorf("%w: wsrep_provider_options %s: %v", ErrInvalid, k, err)
		}
		vals[k] = d
	}
	return vals["evs.suspect_timeout"] + vals["evs.inactive_timeout"], nil
}

var isoDurRE = regexp.MustCompile(`^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// parseISODuration parses the ISO 8601 durations Galera prints (PT5S,
// PT0.5S, PT1M30S, P1D).
func parseISODuration(s string) (time.Duration, error) {
	m := isoDurRE.FindStringSubmatch(strings.ToUpper(s))
	if m == nil || s == "P" || strings.HasSuffix(strings.ToUpper(s), "T") {
		return 0, fmt.Errorf("duration %q: want ISO 8601 such as PT5S or PT0.5S", s)
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second} {
		if m[i+1] == "" {
			continue
		}
		f, err := strconv.ParseFloat(m[i+1], 64)
		if err != nil {
			return 0, fmt.Errorf("duration %q: %v", s, err)
		}
		d += time.Duration(f * float64(unit))
	}
	return d, nil
}
