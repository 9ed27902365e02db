package pool

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/mnpool/mnpool/pool/siteschema"
)

// ErrStaleEpoch: a write guarded by an MN epoch (TxAsMN, CheckMN) was
// refused because the master record has moved on, or names another
// member: whoever held that token is no longer the MN.
var ErrStaleEpoch = errors.New("pool: stale MN epoch")

// PromoteOptions are the arguments of Promote.
type PromoteOptions struct {
	// Epoch, when not zero, is the epoch the caller saw (in its preflight):
	// the promotion succeeds only from that epoch. Zero takes the epoch
	// Promote reads first. Either way the epoch is fixed for the whole
	// call: a transaction re-run after a conflict never promotes over
	// another member's win.
	Epoch int64
	// AllowDisabled promotes a member that is disabled (makemn --force).
	AllowDisabled bool
	// Reason is recorded in the audit log (for example "makemn").
	Reason string
	// Fence, when set, runs first inside the promotion's transaction; an
	// error aborts the promotion (nothing written). makemn passes its
	// cluster lock's Guard, so a run whose lock was taken over cannot
	// promote (the lock's token is a fencing token).
	Fence func(ctx context.Context, tx *sqlx.Tx) error
}

// Promotion is the outcome of Promote.
type Promotion struct {
	// Previous is the master record the promotion started from.
	Previous Master `json:"previous"`
	// Master is the master record now.
	Master Master `json:"master"`
	// Unchanged is true when the member was already the MN of Previous;
	// nothing was written.
	Unchanged bool `json:"unchanged,omitempty"`
}

// PromoteConflictError is the error of a promotion that lost: another
// member (the Winner) holds the epoch it wanted, or the master record moved
// on from the epoch the caller saw. It wraps ErrConflict.
type PromoteConflictError struct {
	// Member is who was to be promoted; From is the epoch it started from.
	Member string
	From   int64
	// Winner is the master record found instead.
	Winner Master
}

func (e *PromoteConflictError) Error() string {
	return fmt.Sprintf("%v: promotion of %s from epoch %d lost: %s is the MN of epoch %d",
		ErrConflict, e.Member, e.From, e.Winner.Member, e.Winner.Epoch)
}

// Unwrap makes errors.Is(err, ErrConflict) true.
func (e *PromoteConflictError) Unwrap() error { return ErrConflict }

// Promote makes member the MN: one transaction that increments the epoch
// of the master record with a conditional update (docs/DESIGN.md, *conditional-update*: WHERE
// epoch = the epoch read), sets site.master, closes the fencing row of the
// old epoch, opens the row of the new one and writes an audit record.
//
// Of several promotions from the same epoch exactly one commits; the others
// fail with a *PromoteConflictError (errors.Is ErrConflict) that names the
// winner and its epoch. Promoting the member that is already the MN of the
// epoch changes nothing and returns Unchanged.
//
// When a commit's outcome is unknown (Galera 1180, a lost connection) the
// store runs the transaction again on another node; Promote then finds the
// epoch row carrying this call's token and reports its own success instead
// of a conflict with itself.
func (s *Store) Promote(ctx context.Context, member string, o PromoteOptions) (Promotion, error) {
	if err := ValidateName("member", member); err != nil {
		return Promotion{}, err
	}
	if o.Epoch < 0 {
		return Promotion{}, fmt.Errorf("%w: epoch %d (want 0 for the current epoch, or the epoch read before)", ErrInvalid, o.Epoch)
	}
	token, err := newPromotionToken()
	if err != nil {
		return Promotion{}, err
	}
	pr := &promotion{s: s, member: member, o: o, token: token, base: o.Epoch}
	err = s.Tx(ctx, func(tx *sqlx.Tx) error { return pr.run(ctx, tx) })
	if errors.Is(err, errLostPromotion) {
		now, rerr := s.Master(ctx)
		if rerr != nil {
			return Promotion{}, fmt.Errorf("%w: promotion of %s from epoch %d lost; reading the winner: %w", ErrConflict, member, pr.base, rerr)
		}
		return Promotion{}, &PromoteConflictError{Member: member, From: pr.base, Winner: now}
	}
	if err != nil {
		return Promotion{}, err
	}
	return pr.out, nil
}

// newPromotionToken returns a random token that marks the epoch row a
// promotion opens as its own.
func newPromotionToken() (string, error) {
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(raw[:]), nil
}

// promotion is one call of Promote. Its fields outlive the runs of the
// transaction: the epoch promoted from is fixed by the first run, and
// the token tells a later run that an earlier one committed.
type promotion struct {
	s      *Store
	member string
	o      PromoteOptions
	token  string
	base   int64 // the epoch promoted from; 0 until the first run reads it
	ran    bool  // the transaction ran before (its outcome may be unknown)
	out    Promotion
}

// run is the promotion's transaction: the fence, the checks, then the
// writes.
func (pr *promotion) run(ctx context.Context, tx *sqlx.Tx) error {
	if pr.o.Fence != nil {
		if err := pr.o.Fence(ctx, tx); err != nil {
			return err
		}
	}
	cur, err := readMaster(ctx, tx)
	if err != nil {
		return err
	}
	if pr.ran {
		done, err := pr.committedBefore(ctx, tx)
		if err != nil {
			return err
		}
		if done {
			pr.out = Promotion{Previous: pr.out.Previous, Master: Master{Member: pr.member, Epoch: pr.base + 1}}
			return nil
		}
	}
	pr.ran = true
	if err := pr.checkFrom(cur); err != nil {
		return err
	}
	pr.out = Promotion{Previous: cur, Master: cur}
	if cur.Member == pr.member {
		pr.out.Unchanged = true
		return nil
	}
	if err := pr.checkCandidate(ctx, tx); err != nil {
		return err
	}
	return pr.write(ctx, tx, cur)
}

// committedBefore reports whether an earlier run of the transaction
// committed (its outcome unknown to this call): the epoch it opened
// carries this call's token.
func (pr *promotion) committedBefore(ctx context.Context, tx *sqlx.Tx) (bool, error) {
	var tok string
	err := tx.GetContext(ctx, &tok, "SELECT token FROM mn_epochs WHERE epoch = ?", pr.base+1)
	switch {
	case err == nil && tok == pr.token:
		return true, nil
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return false, err
	}
	return false, nil
}

// checkFrom fixes the epoch promoted from (on the first run, when the
// caller gave none) and checks that the master record cur is still at it.
func (pr *promotion) checkFrom(cur Master) error {
	if cur.Member == "" {
		return fmt.Errorf("%w: there is no MN to replace; run `mnpool init --mn NAME`", ErrNotInitialized)
	}
	if pr.base == 0 {
		pr.base = cur.Epoch
	}
	if cur.Epoch != pr.base {
		return &PromoteConflictError{Member: pr.member, From: pr.base, Winner: cur}
	}
	return nil
}

// checkCandidate checks that the member to promote is in the pool and,
// unless the options allow it, enabled.
func (pr *promotion) checkCandidate(ctx context.Context, tx *sqlx.Tx) error {
	var disabled bool
	err := tx.GetContext(ctx, &disabled, "SELECT disabled FROM members WHERE name = ?", pr.member)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: member %s (only a member of the pool can become the MN; add it with `mnpool member add`)", ErrNotFound, pr.member)
	}
	if err != nil {
		return err
	}
	if disabled && !pr.o.AllowDisabled {
		return fmt.Errorf("%w: member %s is disabled; enable it first (or force)", ErrConflict, pr.member)
	}
	return nil
}

// write moves the master record from cur to the next epoch with a
// conditional update, closes cur's fencing row, opens the new epoch's,
// sets site.master and audits the promotion, in that order.
func (pr *promotion) write(ctx context.Context, tx *sqlx.Tx, cur Master) error {
	s := pr.s
	if err := pr.advanceMaster(ctx, tx); err != nil {
		return err
	}
	if err := s.closeEpoch(ctx, tx, cur); err != nil {
		return err
	}
	next := Master{Member: pr.member, Epoch: pr.base + 1}
	if err := pr.openEpoch(ctx, tx, next, cur); err != nil {
		return err
	}
	up := s.Dialect().Upsert("site", []string{"name"}, []string{"name", "value"})
	if _, err := tx.ExecContext(ctx, up, siteschema.Master, pr.member); err != nil {
		return err
	}
	pr.out.Master = next
	return s.Audit(ctx, tx, "pool.promote", pr.member, map[string]any{
		"from": cur.Member, "from_epoch": cur.Epoch, "epoch": next.Epoch, "reason": pr.o.Reason,
	})
}

// advanceMaster is the conditional update of the master record
// (docs/DESIGN.md, *conditional-update*): the member and epoch + 1, only
// while the epoch is still the one promoted from.
func (pr *promotion) advanceMaster(ctx context.Context, tx *sqlx.Tx) error {
	res, err := tx.ExecContext(ctx, "UPDATE master SET member = ?, epoch = epoch + 1 WHERE id = 1 AND epoch = ?", pr.member, pr.base)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		// A concurrent promotion committed after this transaction's
		// snapshot: the UPDATE (a current read) missed, while a SELECT
		// here would still show the snapshot. The winner is read after
		// the transaction.
		return errLostPromotion
	}
	return nil
}

// openEpoch records the fencing row of epoch next, with this call's
// token.
func (pr *promotion) openEpoch(ctx context.Context, tx *sqlx.Tx, next, cur Master) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO mn_epochs (epoch, member, prev_member, token, closed, fenced_writes) VALUES (?,?,?,?,0,0)",
		next.Epoch, next.Member, cur.Member, pr.token)
	if err != nil {
		if pr.s.IsDuplicate(err) {
			// The master row said the epoch was free, the epoch table
			// says it is taken: a second line of defence against a
			// lost update (docs/DESIGN.md, *fencing-tokens*).
			return fmt.Errorf("%w: epoch %d is already recorded in mn_epochs; promotion refused", ErrConflict, next.Epoch)
		}
		return err
	}
	return nil
}

// errLostPromotion: the conditional update of the master record matched no
// row; Promote turns it into a PromoteConflictError.
var errLostPromotion = errors.New("pool: promotion lost")

// closeEpoch closes the fencing row of epoch m (creating it when it
// predates the mn_epochs table), so that writes guarded by it conflict with
// the promotion and then fail.
func (s *Store) closeEpoch(ctx context.Context, tx *sqlx.Tx, m Master) error {
	if err := ensureEpochRow(ctx, tx, s.Dialect(), m); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, "UPDATE mn_epochs SET closed = 1 WHERE epoch = ?", m.Epoch)
	return err
}

func ensureEpochRow(ctx context.Context, tx *sqlx.Tx, d Dialect, m Master) error {
	q := d.InsertIgnore("mn_epochs", []string{"epoch", "member", "prev_member", "token", "closed", "fenced_writes"})
	_, err := tx.ExecContext(ctx, q, m.Epoch, m.Member, "", "", 0, 0)
	return err
}

// CheckMN is the fencing check of the MN role inside a transaction: it
// fails with ErrStaleEpoch unless token is the current master record, and
// it writes the fencing row of token's epoch, which Promote also writes.
// On Galera the two transactions therefore certify against each other:
// when a promotion commits first, a transaction that called CheckMN fails
// (and, re-run by Store.Tx, then finds the epoch closed); when the guarded
// transaction commits first, its writes belong to the old epoch and the
// promotion is re-run after them. Reading the master record alone would
// not give that: a read adds nothing to a Galera write set.
func (s *Store) CheckMN(ctx context.Context, tx *sqlx.Tx, token Master) error {
	if token.Member == "" || token.Epoch <= 0 {
		return fmt.Errorf("%w: token %s@%d is not an MN token", ErrStaleEpoch, token.Member, token.Epoch)
	}
	if err := ensureEpochRow(ctx, tx, s.Dialect(), token); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, "UPDATE mn_epochs SET fenced_writes = fenced_writes + 1 WHERE epoch = ? AND member = ? AND closed = 0", token.Epoch, token.Member)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	cur, err := readMaster(ctx, tx)
	if err != nil {
		return err
	}
	if n != 1 || cur != token {
		return fmt.Errorf("%w: token %s@%d, but the MN is %s of epoch %d", ErrStaleEpoch, token.Member, token.Epoch, cur.Member, cur.Epoch)
	}
	return nil
}

// TxAsMN runs fn in a transaction (see Tx) that commits only while token
// is the MN's current epoch: the epoch as a fencing token for pool changes
// made on the MN's behalf. It fails with ErrStaleEpoch (and nothing of fn
// is committed) once a promotion has moved the epoch on. Things outside the
// database (a DHCP dynamic range) are fenced by the MN guard (package mnguard) instead.
func (s *Store) TxAsMN(ctx context.Context, token Master, fn func(tx *sqlx.Tx) error) error {
	return s.Tx(ctx, func(tx *sqlx.Tx) error {
		if err := s.CheckMN(ctx, tx, token); err != nil {
			return err
		}
		return fn(tx)
	})
}

// EpochRecord is one row of the MN epoch history.
type EpochRecord struct {
	Epoch  int64  `json:"epoch" db:"epoch"`
	Member string `json:"member" db:"member"`
	// Previous is the MN before this epoch ("" for an epoch recorded
	// after the fact, such as the one of `mnpool init`).
	Previous string `json:"previous,omitempty" db:"prev_member"`
	// Closed is true once a later promotion ended the epoch.
	Closed bool `json:"closed" db:"closed"`
	// FencedWrites counts the transactions committed with TxAsMN.
	FencedWrites int64 `json:"fenced_writes" db:"fenced_writes"`
}

// Epochs returns the MN epoch history, newest first, at most limit rows
// (all when limit <= 0).
func (s *Store) Epochs(ctx context.Context, limit int) ([]EpochRecord, error) {
	var out []EpochRecord
	err := s.Read(ctx, func(tx *sqlx.Tx) error {
		out = out[:0]
		q := "SELECT epoch, member, prev_member, closed, fenced_writes FROM mn_epochs ORDER BY epoch DESC"
		if limit > 0 {
			return tx.SelectContext(ctx, &out, q+" LIMIT ?", limit)
		}
		return tx.SelectContext(ctx, &out, q)
	})
	return out, err
}
