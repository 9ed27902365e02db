// Package schemas lists the schemas of every package of mnpool that keeps
// tables in the pool database, for the programs and test helpers that
// create or upgrade the whole database at once (`mnpool init`, mnpoold,
// pooltest). Each of those packages also migrates its own schema before
// its first use of a store, so an embedder that uses only some of them
// needs nothing from here.
package schemas

import (
	"github.com/mnpool/mnpool/agent"
	"github.com/mnpool/mnpool/console"
	"github.com/mnpool/mnpool/dhcp"
	"github.com/mnpool/mnpool/locking"
	"github.com/mnpool/mnpool/pool"
)

// All returns the schemas of locking, dhcp, console and agent (pool's own
// is always migrated by pool.Store.Migrate).
func All() []pool.Schema {
	return []pool.Schema{locking.Schema(), dhcp.Schema(), console.Schema(), agent.Schema()}
}
