-- Cluster-wide lease locks (package locking). Built from rows and
-- conditional updates only: GET_LOCK and SELECT ... FOR UPDATE lock one
-- Galera node, not the cluster (docs/DESIGN.md, *node-local-locks*).

-- The fencing token of each lock name. It only grows and its row is never
-- deleted, so deleting a row of `locks` cannot reset it.
CREATE TABLE IF NOT EXISTS lock_tokens (
  name  VARCHAR(255) NOT NULL PRIMARY KEY,
  token BIGINT       NOT NULL DEFAULT 0
);

-- One row per lock name. holder is the random session id of the holder,
-- '' when free. lease is bumped by every renewal: contenders decide expiry
-- by seeing (holder, token, lease) unchanged for ttl_ms on their own clock.
-- guards is bumped by Guard so guarded writes conflict with a takeover.
-- since_us is the holder's wall clock, for people only.
CREATE TABLE IF NOT EXISTS locks (
  name     VARCHAR(255) NOT NULL PRIMARY KEY,
  holder   VARCHAR(64)  NOT NULL DEFAULT '',
  member   VARCHAR(63)  NOT NULL DEFAULT '',
  info     VARCHAR(255) NOT NULL DEFAULT '',
  token    BIGINT       NOT NULL DEFAULT 0,
  lease    BIGINT       NOT NULL DEFAULT 0,
  guards   BIGINT       NOT NULL DEFAULT 0,
  ttl_ms   BIGINT       NOT NULL DEFAULT 0,
  since_us BIGINT       NOT NULL DEFAULT 0
);

-- The queue of sessions waiting for a lock, served in (ticket, session_id)
-- order. Each waiter bumps its lease while it waits; a waiter whose lease
-- stands still for ttl_ms is removed by the waiters behind it.
CREATE TABLE IF NOT EXISTS lock_waiters (
  name       VARCHAR(255) NOT NULL,
  session_id VARCHAR(64)  NOT NULL,
  ticket     BIGINT       NOT NULL,
  member     VARCHAR(63)  NOT NULL DEFAULT '',
  info       VARCHAR(255) NOT NULL DEFAULT '',
  lease      BIGINT       NOT NULL DEFAULT 0,
  ttl_ms     BIGINT       NOT NULL DEFAULT 0,
  since_us   BIGINT       NOT NULL DEFAULT 0,
  PRIMARY KEY (name, session_id)
);
