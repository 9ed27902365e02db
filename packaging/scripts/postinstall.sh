#!/bin/sh
# mnpool package: after install or upgrade. Makes systemd see the units;
# never enables or starts a service (the administrator does, once
# /etc/mnpool/db is written and the host is a member of the pool).
set -e
chmod 0600 /etc/mnpool/db 2>/dev/null || true
chmod 0700 /etc/mnpool/sshkeys 2>/dev/null || true
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
