-- The change feed: one counter that every audited change increments.
CREATE TABLE IF NOT EXISTS pool_version (
  id      TINYINT NOT NULL PRIMARY KEY,
  version BIGINT  NOT NULL DEFAULT 0
);

INSERT INTO pool_version (id, version) VALUES (1, 0) ON CONFLICT(id) DO NOTHING;
