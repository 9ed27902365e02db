package pool

import (
	"context"
	"database/sql"
	"database/sql/driver"
)

// Health is the state of the store's database.
type Health struct {
	// Backend is "sqlite", "galera", or "mysql" (MariaDB without wsrep).
	Backend string `json:"backend"`
	// Node is the node (host:port, or the SQLite path) the store uses now.
	Node string `json:"node"`
	// Healthy is true when Node can serve reads and writes.
	Healthy bool   `json:"healthy"`
	Problem string `json:"problem,omitempty"`
	// Galera only: the view seen by Node.
	ClusterSize   int    `json:"cluster_size,omitempty"`
	ClusterStatus string `json:"cluster_status,omitempty"`
	// Replicas are wsrep_incoming_addresses: the SQL addresses of every
	// node holding a replica of the pool database.
	Replicas []string `json:"replicas,omitempty"`
	// Nodes has one entry per configured DSN, preferred first.
	Nodes []NodeHealth `json:"nodes"`
}

// NodeHealth is the state of one configured database node.
type NodeHealth struct {
	Node          string   `json:"node"`
	Healthy       bool     `json:"healthy"`
	Galera        bool     `json:"galera"`
	ClusterStatus string   `json:"cluster_status,omitempty"`
	State         string   `json:"state,omitempty"`
	Ready         bool     `json:"ready,omitempty"`
	ClusterSize   int      `json:"cluster_size,omitempty"`
	ClusterUUID   string   `json:"cluster_uuid,omitempty"`
	Replicas      []string `json:"replicas,omitempty"`
	Problem       string   `json:"problem,omitempty"`
}

// Health reports the backend, the node in use and, for Galera, the view of
// the cluster from every configured node. It returns an error only when ctx
// ends; an unreachable database is reported in the Health value.
func (s *Store) Health(ctx context.Context) (Health, error) {
	return s.b.health(ctx)
}

type sqlNullString = sql.NullString

func sqlOpenDB(c driver.Connector) *sql.DB { return sql.OpenDB(c) }
