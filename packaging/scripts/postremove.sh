#!/bin/sh
# mnpool package: after removal. Configuration in /etc/mnpool and the pool
# keys stay (dpkg --purge removes the configuration files it installed).
set -e
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
