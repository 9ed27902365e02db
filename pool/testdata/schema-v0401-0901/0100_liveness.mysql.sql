-- Liveness observations: what each member (observer) last judged about each
-- other member. Written by the observer in the same transaction as its own
-- heartbeat, so observer_beat equals the observer's heartbeat counter at
-- publication; readers judge freshness by comparing counters, never clocks.
CREATE TABLE IF NOT EXISTS member_liveness (
  observer      VARCHAR(63) NOT NULL,
  member        VARCHAR(63) NOT NULL,
  state         VARCHAR(16) NOT NULL,
  counter       BIGINT      NOT NULL DEFAULT 0,
  silent_ms     BIGINT      NOT NULL DEFAULT 0,
  observer_beat BIGINT      NOT NULL DEFAULT 0,
  PRIMARY KEY (observer, member)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
