-- Consoles (package console): where a node's console is and who may serve
-- it. The console lease that makes one member at a time hold the connection
-- is a lock of package locking named console:<node>. Databases made before
-- the console schema moved here may still hold an unused console_leases
-- table: it is left alone (an older broker still running during an upgrade
-- reads it), and nothing creates it any more.
-- consoles.argv is a JSON array of strings (kind command), never a shell line.
CREATE TABLE IF NOT EXISTS consoles (
  node    VARCHAR(63)  NOT NULL PRIMARY KEY,
  kind    VARCHAR(16)  NOT NULL,
  address VARCHAR(300) NOT NULL DEFAULT '',
  argv    TEXT         NOT NULL,
  servers VARCHAR(512) NOT NULL DEFAULT ''
);
