package pool

import (
	"context"

	"github.com/jmoiron/sqlx"
)

// MoveWrite selects how a test or benchmark writes a move's batches.
type MoveWrite = writeMode

// Write modes for MoveWith.
const (
	MoveWriteAuto   = writeAuto
	MoveWriteCase   = writeCase
	MoveWriteRows   = writeRows
	MoveWriteJoin   = writeJoin
	MoveWriteValues = writeValues
)

// MoveWith is Move with a chosen write mode and a hook that runs in each
// batch's transaction between the read of the rows and the update.
func (s *Store) MoveWith(ctx context.Context, req MoveRequest, mode MoveWrite, afterRead func(ctx context.Context, tx *sqlx.Tx, names []string) error) (*MoveResult, error) {
	return s.move(ctx, req, mode, afterRead)
}
