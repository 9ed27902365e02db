-- mnpool schema 1: site, networks, members, master record, nodes, audit.
-- Every statement is idempotent: two members may apply it at the same time.
CREATE TABLE IF NOT EXISTS site (
  name  VARCHAR(64)  NOT NULL PRIMARY KEY,
  value TEXT         NOT NULL
);

CREATE TABLE IF NOT EXISTS networks (
  name          VARCHAR(64)  NOT NULL PRIMARY KEY,
  cidr          VARCHAR(64)  NOT NULL,
  gateways      VARCHAR(512) NOT NULL DEFAULT '',
  dynamic_start VARCHAR(45)  NOT NULL DEFAULT '',
  dynamic_end   VARCHAR(45)  NOT NULL DEFAULT '',
  domain        VARCHAR(253) NOT NULL DEFAULT '',
  mgtifname     VARCHAR(32)  NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS members (
  name      VARCHAR(63)  NOT NULL PRIMARY KEY,
  services  VARCHAR(255) NOT NULL DEFAULT '',
  disabled  TINYINT      NOT NULL DEFAULT 0,
  heartbeat BIGINT       NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS member_addresses (
  member  VARCHAR(63) NOT NULL,
  network VARCHAR(64) NOT NULL,
  ip      VARCHAR(45) NOT NULL,
  PRIMARY KEY (member, network)
);

CREATE TABLE IF NOT EXISTS master (
  id     TINYINT     NOT NULL PRIMARY KEY,
  member VARCHAR(63) NOT NULL DEFAULT '',
  epoch  BIGINT      NOT NULL DEFAULT 0
);

INSERT INTO master (id, member, epoch) VALUES (1, '', 0) ON CONFLICT(id) DO NOTHING;

CREATE TABLE IF NOT EXISTS nodes (
  name         VARCHAR(63)   NOT NULL PRIMARY KEY,
  network      VARCHAR(64)   NOT NULL DEFAULT '',
  ip           VARCHAR(45)   NULL,
  grouplist    VARCHAR(1024) NOT NULL DEFAULT '',
  servicenodes VARCHAR(512)  NOT NULL DEFAULT '',
  manual       TINYINT       NOT NULL DEFAULT 0,
  revision     BIGINT        NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS node_macs (
  mac  CHAR(17)    NOT NULL PRIMARY KEY,
  node VARCHAR(63) NOT NULL,
  pos  INT         NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS audit (
  id     CHAR(32)     NOT NULL PRIMARY KEY,
  at_us  BIGINT       NOT NULL,
  member VARCHAR(63)  NOT NULL DEFAULT '',
  actor  VARCHAR(64)  NOT NULL DEFAULT '',
  action VARCHAR(64)  NOT NULL,
  target TEXT         NOT NULL,
  detail TEXT         NOT NULL
);

CREATE UNIQUE INDEX IF NOT EXISTS nodes_ip ON nodes (ip);
CREATE INDEX IF NOT EXISTS nodes_servicenodes ON nodes (servicenodes);
CREATE INDEX IF NOT EXISTS node_macs_node ON node_macs (node);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at_us);
