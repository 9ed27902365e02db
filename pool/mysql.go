package pool

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/mnpool/mnpool/pool/dsn"
	"golang.org/x/sync/singleflight"
)

// MySQL server error numbers the store reacts to.
const (
	erDupEntry          = 1062 // duplicate key
	erLockDeadlock      = 1213 // Galera certification failure or InnoDB deadlock
	erLockWaitTimeout   = 1205
	erUnknownCommand    = 1047 // WSREP has not yet prepared node for application use
	erErrorDuringCommit = 1180 // commit outcome unknown
	erServerShutdown    = 1053
	erConnKilled        = 1927
	erQueryInterrupted  = 1317
	erUnknownSysVar     = 1193
	erWsrepQueryTimeout = 4192 // wsrep_sync_wait timed out (10.11 reports lock wait timeout too)
)

// galeraNode is one configured Galera node.
type galeraNode struct {
	label    string // host:port
	cfg      *mysql.Config
	db       *sqlx.DB // opened lazily
	hdb      *sqlx.DB // health checks: wsrep_sync_wait=0, so a non-Primary node answers
	badUntil time.Time
	lastErr  string
}

// mysqlBackend talks to one or more MariaDB/Galera nodes. It prefers the
// first node and uses another one while the first is unhealthy.
type mysqlBackend struct {
	log         *slog.Logger
	healthEvery time.Duration
	checkTO     time.Duration
	badFor      time.Duration
	maxConns    int

	mu        sync.Mutex
	nodes     []*galeraNode // fixed after open; fields guarded by mu
	closed    bool
	sf        singleflight.Group
	cur       int       // index of the node in use, -1 when none
	checkedAt time.Time // monotonic time of the last health check of cur
}

func openMySQL(cfgs []*mysql.Config, o *options) (*mysqlBackend, error) {
	b := &mysqlBackend{
		log:         o.log,
		healthEvery: o.healthEvery,
		checkTO:     o.checkTimeout,
		badFor:      o.badFor,
		maxConns:    o.maxConns,
		cur:         -1,
	}
	for _, c := range cfgs {
		c = c.Clone()
		if c.Params == nil {
			c.Params = map[string]string{}
		}
		// Decisions read what the cluster committed, not a stale local copy
		// (docs/DESIGN.md, *sync-wait*).
		if _, ok := c.Params["wsrep_sync_wait"]; !ok {
			c.Params["wsrep_sync_wait"] = strconv.Itoa(o.syncWait)
		}
		if c.Timeout == 0 {
			c.Timeout = 3 * time.Second
		}
		if c.ReadTimeout == 0 {
			c.ReadTimeout = o.ioTimeout
		}
		if c.WriteTimeout == 0 {
			c.WriteTimeout = o.ioTimeout
		}
		c.ParseTime = true
		c.InterpolateParams = false
		b.nodes = append(b.nodes, &galeraNode{label: c.Addr, cfg: c})
	}
	return b, nil
}

func (b *mysqlBackend) kind() dsn.Kind             { return dsn.MySQL }
func (b *mysqlBackend) dialect() Dialect           { return mysqlDialect{} }
func (b *mysqlBackend) isDuplicate(err error) bool { return mysqlErrNo(err) == erDupEntry }

// handle opens the node's pools lazily and returns the health-check pool.
func (n *galeraNode) handle(maxConns int) (*sqlx.DB, error) {
	if n.db != nil {
		return n.hdb, nil
	}
	open := func(cfg *mysql.Config, conns int) (*sqlx.DB, error) {
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			return nil, err
		}
		db := sqlx.NewDb(sqlOpenDB(redactingConnector{conn, cfg.Passwd}), "mysql")
		db.SetMaxOpenConns(conns)
		db.SetMaxIdleConns(conns)
		db.SetConnMaxLifetime(10 * time.Minute)
		return db, nil
	}
	db, err := open(n.cfg, maxConns)
	if err != nil {
		return nil, err
	}
	hcfg := n.cfg.Clone()
	hcfg.Params["wsrep_sync_wait"] = "0"
	hdb, err := open(hcfg, 2)
	if err != nil {
		db.Close()
		return nil, err
	}
	n.db, n.hdb = db, hdb
	return hdb, nil
}

// db returns the node in use, checking its health when the last check is
// older than healthEvery, and otherwise walks the nodes in preference
// order and takes the first healthy one. The checks run without holding
// the backend's mutex and once for all concurrent callers (singleflight),
// and each caller waits only as long as its own context allows: a paused
// node must not stall every transaction of the process.
func (b *mysqlBackend) db(ctx context.Context, _ bool) (*sqlx.DB, string, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, "", fmt.Errorf("%w: the store is closed", ErrUnavailable)
	}
	if b.cur >= 0 && time.Since(b.checkedAt) < b.healthEvery {
		n := b.nodes[b.cur]
		b.mu.Unlock()
		return n.db, n.label, nil
	}
	b.mu.Unlock()
	ch := b.sf.DoChan("pick", func() (any, error) {
		// Not the caller's context: other callers share this pick. Each
		// check is bounded by the check timeout.
		return b.pick(context.WithoutCancel(ctx))
	})
	select {
	case <-ctx.Done():
		return nil, "", ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return nil, "", r.Err
		}
		n := r.Val.(*galeraNode)
		return n.db, n.label, nil
	}
}

// pick checks the nodes in preference order and makes the first healthy
// one current.
func (b *mysqlBackend) pick(ctx context.Context) (*galeraNode, error) {
	var problems []string
	b.mu.Lock()
	cur := b.cur
	b.mu.Unlock()
	for i, n := range b.nodes {
		// A better-preferred node is tried again once its bad period ends;
		// the current node is checked again every healthEvery.
		b.mu.Lock()
		skip, lastErr := i != cur && time.Now().Before(n.badUntil), n.lastErr
		b.mu.Unlock()
		if skip {
			problems = append(problems, n.label+": "+lastErr)
			continue
		}
		nh := b.checkNode(ctx, n)
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return nil, fmt.Errorf("%w: the store is closed", ErrUnavailable)
		}
		if nh.Healthy {
			if b.cur != i && b.cur >= 0 {
				b.log.Warn("pool: switching database node", "from", b.nodes[b.cur].label, "to", n.label)
			}
			b.cur, b.checkedAt = i, time.Now()
			b.mu.Unlock()
			return n, nil
		}
		n.badUntil, n.lastErr = time.Now().Add(b.badFor), nh.Problem
		b.mu.Unlock()
		problems = append(problems, n.label+": "+nh.Problem)
	}
	b.mu.Lock()
	b.cur = -1
	b.mu.Unlock()
	return nil, fmt.Errorf("%w: no healthy Galera node (%s)", ErrUnavailable, strings.Join(problems, "; "))
}

func (b *mysqlBackend) markBad(node string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, n := range b.nodes {
		if n.label == node {
			if b.cur == i {
				b.cur = -1
			}
			if mysqlErrNo(err) == 0 {
				// A broken connection (stale after a network outage, killed
				// by the server) says nothing yet about the node: the next
				// call checks its health on a fresh connection and only
				// then decides.
				b.log.Warn("pool: database connection failed; checking the node again", "node", node, "err", err)
				continue
			}
			n.badUntil, n.lastErr = time.Now().Add(b.badFor), err.Error()
			b.log.Warn("pool: database node marked unhealthy", "node", node, "err", err)
		}
	}
}

// checkNode asks one node for its wsrep state. Healthy means Primary,
// ready and Synced (docs/DESIGN.md, *real-health*), or a plain MySQL/MariaDB server
// without wsrep that answers.
func (b *mysqlBackend) checkNode(ctx context.Context, n *galeraNode) NodeHealth {
	nh := NodeHealth{Node: n.label}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		nh.Problem = "the store is closed"
		return nh
	}
	db, err := n.handle(b.maxConns)
	b.mu.Unlock()
	if err != nil {
		nh.Problem = err.Error()
		return nh
	}
	cctx, cancel := context.WithTimeout(ctx, b.checkTO)
	defer cancel()
	var on sqlNullString
	err = db.QueryRowxContext(cctx, "SELECT @@global.wsrep_on").Scan(&on)
	if err != nil && mysqlErrNo(err) == 0 && cctx.Err() == nil {
		// Pooled connections may be stale after an outage; database/sql
		// drops the broken one, so one more try runs on a fresh one.
		err = db.QueryRowxContext(cctx, "SELECT @@global.wsrep_on").Scan(&on)
	}
	if err != nil && mysqlErrNo(err) != erUnknownSysVar {
		nh.Problem = shortErr(err)
		return nh
	}
	if !on.Valid || (on.String != "1" && !strings.EqualFold(on.String, "ON")) {
		nh.Galera, nh.Healthy, nh.State = false, true, "mysql (no wsrep)"
		return nh
	}
	nh.Galera = true
	rows, err := db.QueryxContext(cctx, `SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
		WHERE VARIABLE_NAME IN ('WSREP_CLUSTER_STATUS','WSREP_READY','WSREP_LOCAL_STATE_COMMENT','WSREP_CLUSTER_SIZE','WSREP_INCOMING_ADDRESSES','WSREP_CLUSTER_STATE_UUID')`)
	if err != nil {
		nh.Problem = shortErr(err)
		return nh
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			nh.Problem = shortErr(err)
			return nh
		}
		switch strings.ToUpper(k) {
		case "WSREP_CLUSTER_STATUS":
			nh.ClusterStatus = v
		case "WSREP_READY":
			nh.Ready = strings.EqualFold(v, "ON")
		case "WSREP_LOCAL_STATE_COMMENT":
			nh.State = v
		case "WSREP_CLUSTER_SIZE":
			nh.ClusterSize, _ = strconv.Atoi(v)
		case "WSREP_INCOMING_ADDRESSES":
			for _, a := range strings.Split(v, ",") {
				if a = strings.TrimSpace(a); a != "" && a != "AUTO" {
					nh.Replicas = append(nh.Replicas, a)
				}
			}
		case "WSREP_CLUSTER_STATE_UUID":
			nh.ClusterUUID = v
		}
	}
	if err := rows.Err(); err != nil {
		nh.Problem = shortErr(err)
		return nh
	}
	switch {
	case nh.ClusterStatus != "Primary":
		nh.Problem = fmt.Sprintf("wsrep_cluster_status=%s (want Primary)", nh.ClusterStatus)
	case !nh.Ready:
		nh.Problem = "wsrep_ready=OFF"
	case nh.State != "Synced":
		nh.Problem = fmt.Sprintf("wsrep_local_state_comment=%s (want Synced)", nh.State)
	default:
		nh.Healthy = true
	}
	return nh
}

func (b *mysqlBackend) health(ctx context.Context) (Health, error) {
	h := Health{Backend: "mysql"}
	_, label, err := b.db(ctx, false)
	if err != nil && ctx.Err() != nil {
		return h, ctx.Err()
	}
	h.Node = label
	for _, n := range b.nodes {
		nh := b.checkNode(ctx, n)
		if nh.Galera {
			h.Backend = "galera"
		}
		h.Nodes = append(h.Nodes, nh)
		if n.label == label {
			h.Healthy = nh.Healthy
			h.ClusterSize, h.ClusterStatus, h.Replicas = nh.ClusterSize, nh.ClusterStatus, nh.Replicas
			h.Problem = nh.Problem
		}
	}
	if label == "" {
		h.Problem = err.Error()
		for _, nh := range h.Nodes {
			if len(nh.Replicas) > len(h.Replicas) {
				h.Replicas = nh.Replicas
			}
		}
	}
	return h, nil
}

func (b *mysqlBackend) classify(err error) errClass {
	switch mysqlErrNo(err) {
	case erLockDeadlock, erLockWaitTimeout, erWsrepQueryTimeout:
		return errRetry
	case erUnknownCommand, erErrorDuringCommit, erServerShutdown, erConnKilled:
		return errNode
	case 0:
	default:
		return errFatal
	}
	// No server error number: the connection or the node failed.
	var ne net.Error
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, mysql.ErrInvalidConn),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &ne),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return errNode
	}
	return errFatal
}

func (b *mysqlBackend) close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed, b.cur = true, -1
	var errs []error
	for _, n := range b.nodes {
		if n.db != nil {
			errs = append(errs, n.db.Close(), n.hdb.Close())
			n.db, n.hdb = nil, nil
		}
	}
	return errors.Join(errs...)
}

func mysqlErrNo(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// redactingConnector hides the password in the driver's own errors (a
// dial error names the network and address it was given) before they
// leave the store.
type redactingConnector struct {
	driver.Connector
	passwd string
}

func (c redactingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, dsn.DSN{MySQL: []*mysql.Config{{Passwd: c.passwd}}}.Redact(err)
	}
	return conn, nil
}
