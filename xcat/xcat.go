// Package xcat reads and writes xCAT's tables as `tabdump` writes them
// (CSV with a "#col,..." header, defined values in double quotes), so a
// pool can be created from an xCAT management node's database, exported
// for backup or review, and restored.
//
//   - ReadTabdump / WriteTabdump: one table.
//   - Eval: xCAT's regular-expression attribute values
//     (|pattern|replacement| with arithmetic, /pattern/replacement/).
//   - Plan / Apply: build a pool from a directory of tables (import-xcat).
//   - Export: write a pool as tables (site, networks, nodelist, noderes,
//     servicenode, mac, hosts and mnpool's own tables), which Plan reads
//     back to the same pool.
//   - Diff / Merge: bring an export into an existing pool.
package xcat

import (
	"errors"
	"regexp"
)

// ErrInvalid: a table or a value in it is malformed. Nothing was written.
var ErrInvalid = errors.New("xcat: invalid value")

// ifNameRE is the pool's interface name rule (pool.Network.MgtIfName).
var ifNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,31}$`)
