-- makemn: one row per MN epoch. The row of the current epoch is the fencing
-- point of the MN role: Promote closes it (closed = 1) and a write guarded by
-- the epoch (Store.TxAsMN) increments fenced_writes only while it is open,
-- so on Galera the two always touch the same row and certification lets only
-- one of them commit. token identifies the Promote call that opened the
-- epoch, so a transaction re-run after a commit of unknown outcome can tell
-- its own promotion from another one. Rows of epochs older than this table
-- (the epoch of `mnpool init`) are created on first use.
CREATE TABLE IF NOT EXISTS mn_epochs (
  epoch         BIGINT      NOT NULL PRIMARY KEY,
  member        VARCHAR(63) NOT NULL,
  prev_member   VARCHAR(63) NOT NULL DEFAULT '',
  token         CHAR(32)    NOT NULL DEFAULT '',
  closed        TINYINT     NOT NULL DEFAULT 0,
  fenced_writes BIGINT      NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
