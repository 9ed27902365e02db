-- The change feed: one counter that every audited change increments.
CREATE TABLE IF NOT EXISTS pool_version (
  id      TINYINT NOT NULL PRIMARY KEY,
  version BIGINT  NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT INTO pool_version (id, version) VALUES (1, 0) ON DUPLICATE KEY UPDATE id = id;
