-- DHCP host entries removed with `makedhcp -d` (package dhcp). A node listed
-- here gets no host entry on any member until `makedhcp NODE` or
-- `makedhcp -a` brings it back; makedhcp, makemn's sync and the agent all
-- leave it out. Rows of nodes no longer in the pool are purged by makedhcp.
CREATE TABLE IF NOT EXISTS dhcp_excluded (
  node  VARCHAR(63) NOT NULL PRIMARY KEY,
  at_us BIGINT      NOT NULL DEFAULT 0,
  member VARCHAR(63) NOT NULL DEFAULT ''
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
