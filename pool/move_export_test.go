package pool

import (
	"context"
	"strings"

	"github.com/jmoiron/sqlx"
)

// MoveWrite selects how a test or benchmark writes a move's batches. Only
// MoveWriteAuto (Store.updateNodes, the joined UPDATE) is used by Move;
// the others are kept here to measure the alternatives
// (docs/perf/snmove.md).
type MoveWrite int

// Write modes for MoveWith.
const (
	// MoveWriteAuto: what Move uses (the joined UPDATE).
	MoveWriteAuto MoveWrite = iota
	// MoveWriteCase: one UPDATE ... SET = CASE name ... statement per
	// batch: one round trip, but the CASE is evaluated per row
	// (quadratic).
	MoveWriteCase
	// MoveWriteRows: one prepared conditional UPDATE per node: one round
	// trip per node, nothing quadratic.
	MoveWriteRows
	// MoveWriteJoin: the joined UPDATE (the same as MoveWriteAuto).
	MoveWriteJoin
	// MoveWriteValues: on MariaDB, the joined UPDATE with the derived
	// table as one table value constructor (VALUES (...),(...)) after a
	// typed header row; on SQLite the same as MoveWriteJoin.
	MoveWriteValues
)

func (m MoveWrite) exec() batchExec {
	switch m {
	case MoveWriteCase:
		return execCase
	case MoveWriteRows:
		return execRows
	case MoveWriteValues:
		return execValues
	}
	return nil
}

// MoveWith is Move with a chosen write mode and a hook that runs in each
// batch's transaction between the read of the rows and the update.
func (s *Store) MoveWith(ctx context.Context, req MoveRequest, mode MoveWrite, afterRead func(ctx context.Context, tx *sqlx.Tx, names []string) error) (*MoveResult, error) {
	return s.move(ctx, req, mode.exec(), afterRead)
}

func execRows(ctx context.Context, tx *sqlx.Tx, b nodeBatch) (int64, error) {
	st, err := tx.PreparexContext(ctx, "UPDATE nodes SET servicenodes = ?, revision = revision + 1 WHERE name = ? AND revision = ? AND servicenodes = ?")
	if err != nil {
		return 0, err
	}
	defer st.Close()
	var n int64
	for _, w := range b.writes {
		r, err := st.ExecContext(ctx, w.new, w.node, w.rev, w.old)
		if err != nil {
			return 0, err
		}
		k, err := r.RowsAffected()
		if err != nil {
			return 0, err
		}
		n += k
	}
	return n, nil
}

func execCase(ctx context.Context, tx *sqlx.Tx, b nodeBatch) (int64, error) {
	var set, inList, revCase, snCase strings.Builder
	var args, inArgs, revArgs, snArgs []any
	set.WriteString("UPDATE nodes SET servicenodes = CASE name")
	revCase.WriteString(" AND revision = CASE name")
	snCase.WriteString(" AND servicenodes = CASE name")
	for j, w := range b.writes {
		set.WriteString(" WHEN ? THEN ?")
		revCase.WriteString(" WHEN ? THEN ?")
		snCase.WriteString(" WHEN ? THEN ?")
		if j > 0 {
			inList.WriteByte(',')
		}
		inList.WriteByte('?')
		args = append(args, w.node, w.new)
		inArgs = append(inArgs, w.node)
		revArgs = append(revArgs, w.node, w.rev)
		snArgs = append(snArgs, w.node, w.old)
	}
	q := set.String() + " END, revision = revision + 1 WHERE name IN (" + inList.String() + ")" + revCase.String() + " END" + snCase.String() + " END"
	args = append(append(append(args, inArgs...), revArgs...), snArgs...)
	return execCount(ctx, tx, q, args)
}

func execValues(ctx context.Context, tx *sqlx.Tx, b nodeBatch) (int64, error) {
	args := b.args()
	if tx.DriverName() != "mysql" {
		return execCount(ctx, tx, sqliteDialect{}.nodeBatchSQL(len(b.writes), b.batchForm), args)
	}
	var q strings.Builder
	// The header row names and types the columns and matches no node (no
	// node has an empty name).
	q.WriteString("UPDATE nodes JOIN (SELECT CAST('' AS CHAR(64)) AS name, CAST(0 AS SIGNED) AS rev, CAST('' AS CHAR(1024)) AS old, CAST('' AS CHAR(1024)) AS sns UNION ALL VALUES ")
	q.WriteString(strings.TrimSuffix(strings.Repeat("(?,?,?,?),", len(b.writes)), ","))
	q.WriteString(") v ON nodes.name = v.name COLLATE utf8mb4_bin AND nodes.revision = v.rev AND nodes.servicenodes = v.old COLLATE utf8mb4_bin" +
		" SET nodes.servicenodes = v.sns, nodes.revision = nodes.revision + 1")
	return execCount(ctx, tx, q.String(), args)
}

func execCount(ctx context.Context, tx *sqlx.Tx, q string, args []any) (int64, error) {
	r, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}
