-- Automatic failover (agent): one row per member the failover leader has
-- failed over, so that a new leader knows whom to hold back (cool-down).
-- Rows hold counters and lease tokens only, never a time: a new leader
-- starts the cool-down of every listed member on its own clock, and the
-- leader deletes a row when that cool-down has passed.
CREATE TABLE IF NOT EXISTS agent_failovers (
  member    VARCHAR(63) NOT NULL PRIMARY KEY,
  failovers BIGINT      NOT NULL DEFAULT 0,
  token     BIGINT      NOT NULL DEFAULT 0,
  leader    VARCHAR(63) NOT NULL DEFAULT ''
);
