-- Consoles (package console): where a node's console is, who may serve it,
-- and the console lease that makes one member at a time hold the connection.
-- consoles.argv is a JSON array of strings (kind command), never a shell line.
CREATE TABLE IF NOT EXISTS consoles (
  node    VARCHAR(63)  NOT NULL PRIMARY KEY,
  kind    VARCHAR(16)  NOT NULL,
  address VARCHAR(300) NOT NULL DEFAULT '',
  argv    TEXT         NOT NULL,
  servers VARCHAR(512) NOT NULL DEFAULT ''
);

-- One row per node, never deleted, so token only grows. holder/session are
-- empty when free; the holder increments counter to renew; a contender takes
-- the lease over only after it saw counter unchanged for the TTL on its own
-- monotonic clock (UPDATE ... WHERE node = ? AND counter = ?).
CREATE TABLE IF NOT EXISTS console_leases (
  node    VARCHAR(63) NOT NULL PRIMARY KEY,
  holder  VARCHAR(63) NOT NULL DEFAULT '',
  session CHAR(32)    NOT NULL DEFAULT '',
  token   BIGINT      NOT NULL DEFAULT 0,
  counter BIGINT      NOT NULL DEFAULT 0
);

CREATE INDEX IF NOT EXISTS console_leases_session ON console_leases (session);
