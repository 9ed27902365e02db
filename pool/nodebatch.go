package pool

import (
	"context"
	"errors"
	"strings"

	"github.com/jmoiron/sqlx"
)

// nodeWrite is one conditional update of a node's servicenode list (and,
// when the batch sets whole rows, of the rest of its row): it is written
// only while the row still has the revision (and, when the batch checks
// it, the list) it was planned from.
type nodeWrite struct {
	node string
	rev  int64      // the revision planned from
	old  string     // the list planned from (joined)
	new  string     // the list to write (joined)
	row  rowColumns // the other columns to write, when the batch sets rows
}

// rowColumns are the columns of a node's row that node set writes
// besides its servicenode list.
type rowColumns struct {
	network string
	ip      string // "" writes NULL
	groups  string // joined
	manual  bool
}

// nodeBatch is what move, assign and node set write: a batch of
// conditional updates of nodes by revision, sent as one statement.
type nodeBatch struct {
	writes []nodeWrite
	batchForm
}

// batchForm is what a batch's statement checks and sets besides the
// revision and the servicenode list. setRow sets manual itself, so it
// does not go with clearManual.
type batchForm struct {
	checkOld    bool // also require servicenodes = old (move)
	clearManual bool // also set manual = 0 (assign)
	setRow      bool // also set network, ip, grouplist and manual from row (node set)
}

// args returns the batch's bind arguments: per write name, revision, old
// list, new list and, when it sets rows, network, ip, groups, manual.
func (b nodeBatch) args() []any {
	per := 4
	if b.setRow {
		per = 8
	}
	args := make([]any, 0, len(b.writes)*per)
	for _, w := range b.writes {
		args = append(args, w.node, w.rev, w.old, w.new)
		if b.setRow {
			var ip any
			if w.row.ip != "" {
				ip = w.row.ip
			}
			args = append(args, w.row.network, ip, w.row.groups, w.row.manual)
		}
	}
	return args
}

// batchExec sends a batch's conditional updates and returns the number
// of rows changed. Store.updateNodes is the one used; the benchmarks
// compare it with other forms of the same statement.
type batchExec func(ctx context.Context, tx *sqlx.Tx, b nodeBatch) (int64, error)

// nodeBatchDialect is the part of a dialect that writes a node batch.
type nodeBatchDialect interface {
	// nodeBatchSQL returns the UPDATE of n writes of form f, each bound
	// as nodeBatch.args binds it.
	nodeBatchSQL(n int, f batchForm) string
}

// updateNodes writes the batch in one UPDATE of nodes joined with the
// batch as a derived table on the primary key: one round trip, linear in
// the batch (docs/perf/snmove.md compares it with the alternatives).
func (s *Store) updateNodes(ctx context.Context, tx *sqlx.Tx, b nodeBatch) (int64, error) {
	d, ok := s.Dialect().(nodeBatchDialect)
	if !ok {
		panic("pool: dialect " + s.Dialect().Name() + " cannot write node batches")
	}
	r, err := tx.ExecContext(ctx, d.nodeBatchSQL(len(b.writes), b.batchForm), b.args()...)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

// nodeBatchSQL on SQLite: UPDATE ... FROM (VALUES ...).
func (sqliteDialect) nodeBatchSQL(n int, f batchForm) string {
	var q strings.Builder
	q.WriteString("UPDATE nodes SET servicenodes = v.column4, revision = nodes.revision + 1")
	if f.clearManual {
		q.WriteString(", manual = 0")
	}
	row := "(?,?,?,?),"
	if f.setRow {
		q.WriteString(", network = v.column5, ip = v.column6, grouplist = v.column7, manual = v.column8")
		row = "(?,?,?,?,?,?,?,?),"
	}
	q.WriteString(" FROM (VALUES ")
	q.WriteString(strings.TrimSuffix(strings.Repeat(row, n), ","))
	q.WriteString(") AS v WHERE nodes.name = v.column1 AND nodes.revision = v.column2")
	if f.checkOld {
		q.WriteString(" AND nodes.servicenodes = v.column3")
	}
	return q.String()
}

// nodeBatchSQL on MariaDB: UPDATE nodes JOIN (a UNION ALL of one SELECT
// per write). The derived table's strings have the connection's
// collation; COLLATE utf8mb4_bin compares them as the table does (names
// are case-sensitive).
func (mysqlDialect) nodeBatchSQL(n int, f batchForm) string {
	var q strings.Builder
	q.WriteString("UPDATE nodes JOIN (SELECT ? AS name, ? AS rev, ? AS old, ? AS sns")
	row := " UNION ALL SELECT ?, ?, ?, ?"
	if f.setRow {
		q.WriteString(", ? AS network, ? AS ip, ? AS grouplist, ? AS manual")
		row = " UNION ALL SELECT ?, ?, ?, ?, ?, ?, ?, ?"
	}
	q.WriteString(strings.Repeat(row, max(n-1, 0)))
	q.WriteString(") v ON nodes.name = v.name COLLATE utf8mb4_bin AND nodes.revision = v.rev")
	if f.checkOld {
		q.WriteString(" AND nodes.servicenodes = v.old COLLATE utf8mb4_bin")
	}
	q.WriteString(" SET nodes.servicenodes = v.sns, nodes.revision = nodes.revision + 1")
	if f.clearManual {
		q.WriteString(", nodes.manual = 0")
	}
	if f.setRow {
		q.WriteString(", nodes.network = v.network, nodes.ip = v.ip, nodes.grouplist = v.grouplist, nodes.manual = v.manual")
	}
	return q.String()
}

// writeNodes writes the batch with exec (Store.updateNodes when nil) and
// reports which writes matched and how many rows this statement changed.
// When fewer rows changed than were
// written, it reads the rows back: a write matched when its row now holds
// the new list (and, for a batch that sets rows, the new row) at the next
// revision (written by this statement, or by an earlier run of this
// transaction whose commit outcome was unknown). That
// needs the rows to have been read earlier in the same transaction
// (exact); without, the batch cannot tell a concurrent identical write
// from its own and writeNodes returns errReread.
func (s *Store) writeNodes(ctx context.Context, tx *sqlx.Tx, b nodeBatch, exec batchExec, exact bool) ([]bool, int64, error) {
	won := make([]bool, len(b.writes))
	if len(b.writes) == 0 {
		return won, 0, nil
	}
	if exec == nil {
		exec = s.updateNodes
	}
	n, err := exec(ctx, tx, b)
	if err != nil {
		return nil, 0, err
	}
	if int(n) == len(b.writes) {
		for j := range won {
			won[j] = true
		}
		return won, n, nil
	}
	if !exact {
		return nil, 0, errReread
	}
	names := make([]any, len(b.writes))
	for j, w := range b.writes {
		names[j] = w.node
	}
	var rows []nodeRow
	if err := tx.SelectContext(ctx, &rows, "SELECT name, network, ip, grouplist, servicenodes, manual, revision FROM nodes WHERE name IN ("+placeholders(len(names))+")", names...); err != nil {
		return nil, 0, err
	}
	byName := make(map[string]int, len(rows))
	for i, r := range rows {
		byName[r.Name] = i
	}
	for j, w := range b.writes {
		i, ok := byName[w.node]
		if !ok {
			continue
		}
		won[j] = b.holds(rows[i], w)
	}
	return won, n, nil
}

// holds reports whether r is what w writes, at the revision after the one
// w was planned from.
func (b nodeBatch) holds(r nodeRow, w nodeWrite) bool {
	if r.Revision != w.rev+1 || r.ServiceNodes != w.new || b.clearManual && r.Manual {
		return false
	}
	if !b.setRow {
		return true
	}
	ip := ""
	if r.IP != nil {
		ip = *r.IP
	}
	return r.Network == w.row.network && ip == w.row.ip && r.Groups == w.row.groups && r.Manual == w.row.manual
}

// errReread: a batch written without reading its rows first did not
// match every row; it is rolled back and done again reading them.
var errReread = errors.New("pool: node batch must read its rows first")
