#!/bin/sh
# mnpool package: before removal (not before an upgrade), stop the units
# that were running, so no daemon runs from deleted files.
set -e
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemctl stop mnpoold.service mnpool-console.service mnpool-dns.service >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
