#!/usr/bin/env bash
# Installs the mnpool .deb with dpkg -i in a clean Debian 12 (bookworm)
# chroot made with debootstrap, and checks what an administrator gets: the
# five programs, `mnpool --version` with the commit, the man pages, the
# shell completion (static and from the pool database), the systemd units
# and /etc/mnpool; that no package script starts a service; and that
# dpkg -r / --purge clean up.
#
#   scripts/pkgtest.sh [dist/mnpool_*.deb]      (make pkgtest builds it first)
#
# Needs root and debootstrap. The bootstrapped tree is cached as a tarball
# in $MNPOOL_PKGTEST_CACHE (default /var/cache/mnpool-pkgtest), so only the
# first run downloads from the Debian mirror (the one in apt's sources, or
# $MNPOOL_DEBIAN_MIRROR). EXPECT_COMMIT (default: git rev-parse HEAD) is
# the commit `mnpool --version` must print.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }
fail() {
	printf 'pkgtest: FAIL: %s\n' "$*" >&2
	exit 1
}

deb=${1:-$(ls -t dist/mnpool_*.deb 2>/dev/null | head -1)}
[ -n "$deb" ] && [ -f "$deb" ] || fail "no .deb given and none in dist/ (run make packages)"
[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, chroot)"
command -v debootstrap >/dev/null || fail "debootstrap is not installed (apt-get install debootstrap)"
expect_commit=${EXPECT_COMMIT:-$(git rev-parse HEAD 2>/dev/null || true)}

cache=${MNPOOL_PKGTEST_CACHE:-/var/cache/mnpool-pkgtest}
tarball=$cache/bookworm-minbase.tar.gz
mirror=${MNPOOL_DEBIAN_MIRROR:-$(grep -hoE '(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | awk '{print $2}' | head -1 || true)}
mirror=${mirror:-http://deb.debian.org/debian}

root=$(mktemp -d /var/tmp/mnpool-pkgtest.XXXXXX)
mounted=()
cleanup() {
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
	rm -rf --one-file-system "$root"
}
trap cleanup EXIT

if [ ! -s "$tarball" ]; then
	log "debootstrap bookworm from $mirror (cached as $tarball)"
	mkdir -p "$cache"
	debootstrap --variant=minbase --include=man-db,bash-completion bookworm "$root" "$mirror" >"$cache/bootstrap.log" 2>&1 ||
		fail "debootstrap failed, see $cache/bootstrap.log"
	tar -C "$root" -czf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
else
	log "clean Debian 12 chroot from $tarball"
	tar -C "$root" -xzf "$tarball"
fi
for m in proc dev; do
	mount --bind "/$m" "$root/$m"
	mounted+=("$root/$m")
done

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if ! out=$("$@" 2>&1); then
		printf '%s\n' "$out" >&2
		fail "$what"
	fi
	printf 'ok    %s\n' "$what"
}

log "package scripts never start a service"
ctl=$(mktemp -d)
dpkg-deb -e "$deb" "$ctl"
if grep -nE 'systemctl +(--[a-z-]+ +)*(start|restart|enable|reload-or-restart|try-restart)|deb-systemd-invoke|invoke-rc.d' "$ctl"/postinst "$ctl"/preinst 2>/dev/null; then
	rm -rf "$ctl"
	fail "a package script starts or enables a service"
fi
rm -rf "$ctl"
printf 'ok    no start/enable in preinst/postinst\n'

cp "$deb" "$root/tmp/mnpool.deb"
check "dpkg -i $(basename "$deb")" in_root dpkg -i /tmp/mnpool.deb
for p in mnpool snmove makedhcp makemn mnpoold; do
	check "$p --version" in_root "$p" --version
done
ver=$(in_root mnpool --version)
printf '      %s\n' "$ver"
if [ -n "$expect_commit" ]; then
	case "$ver" in *"${expect_commit:0:12}"*) printf 'ok    --version names commit %s\n' "${expect_commit:0:12}" ;; *) fail "--version does not name commit ${expect_commit:0:12}: $ver" ;; esac
fi
check "mnpool version --json" in_root mnpool version --json

check "man mnpool-snmove" in_root sh -c 'MANPAGER=cat man mnpool-snmove | grep -q "snmove"'
check "man snmove" in_root sh -c 'MANPAGER=cat man snmove | grep -q "SNMOVE"'
check "man mnpool-node-add" in_root sh -c 'MANPAGER=cat man mnpool-node-add | grep -q "mnpool node add"'
check "man mnpoold" in_root sh -c 'MANPAGER=cat man -w mnpoold'
printf '      %s man pages in section 1\n' "$(in_root sh -c 'ls /usr/share/man/man1/ | grep -cE "^(mnpool|snmove|makedhcp|makemn|mnpoold)"')"

for f in /usr/share/bash-completion/completions/mnpool /usr/share/zsh/vendor-completions/_mnpool /usr/share/fish/vendor_completions.d/mnpool.fish \
	/usr/share/bash-completion/completions/snmove; do
	check "completion $f" in_root test -s "$f"
done
check "bash completion loads" in_root bash -c '. /usr/share/bash-completion/bash_completion; . /usr/share/bash-completion/completions/mnpool; complete -p mnpool'

for u in mnpoold mnpool-console mnpool-dns; do
	check "unit $u.service" in_root test -s "/usr/lib/systemd/system/$u.service"
done
check "mnpoold unit runs /usr/bin/mnpoold" in_root grep -q '^ExecStart=/usr/bin/mnpoold ' /usr/lib/systemd/system/mnpoold.service
check "console unit runs /usr/bin/mnpool console serve" in_root grep -q '^ExecStart=/usr/bin/mnpool console serve' /usr/lib/systemd/system/mnpool-console.service
check "dns unit runs /usr/bin/mnpool dns serve" in_root grep -q '^ExecStart=/usr/bin/mnpool dns serve' /usr/lib/systemd/system/mnpool-dns.service

check "/etc/mnpool/db is 0600" in_root sh -c '[ "$(stat -c %a /etc/mnpool/db)" = 600 ]'
check "/etc/mnpool/sshkeys is 0700" in_root sh -c '[ "$(stat -c %a /etc/mnpool/sshkeys)" = 700 ]'
check "unit defaults in /etc/mnpool" in_root test -f /etc/mnpool/mnpoold.env -a -f /etc/mnpool/mnpool-console.env -a -f /etc/mnpool/mnpool-dns.env
check "the empty DSN file gives a clear error" in_root sh -c 'mnpool status 2>&1 | grep -q "/etc/mnpool/db is empty"'

log "a pool on SQLite, through the installed programs"
check "init" in_root sh -c 'echo sqlite:/var/lib/mnpool/pool.db >/etc/mnpool/db && mnpool --self mn1 init --mn mn1'
check "network add" in_root mnpool network add mgmt 10.0.0.0/16
check "member set" in_root mnpool member set mn1 --ip mgmt=10.0.0.1
check "member add" in_root mnpool member add sn1 --ip mgmt=10.0.0.2
check "node add" in_root mnpool node add cn001 --ip 10.0.1.1 --groups compute
check "completion of node names from the pool" in_root sh -c 'mnpool __complete node list "" | grep -qx cn001'
check "completion of member names for snmove -d" in_root sh -c 'snmove __complete -d "" | grep -qx sn1'
check "console set" in_root mnpool console set cn001 --tcp 127.0.0.1:7001 --servers mn1,sn1
check "conserver.cf runs /usr/bin/mnpool, as the units do" in_root sh -c 'mnpool console conserver --member mn1 | grep -q "exec /usr/bin/mnpool console "'
check "a non-member host is told about --self" in_root sh -c 'mnpool --self ws1 sync; test $? = 2 && mnpool --self ws1 sync 2>&1 | grep -q -- "--self"'

check "dpkg -r mnpool" in_root dpkg -r mnpool
check "programs removed" in_root sh -c '! test -e /usr/bin/mnpool'
check "configuration kept after remove" in_root test -f /etc/mnpool/db
check "dpkg --purge mnpool" in_root dpkg --purge mnpool
printf 'pkgtest: PASS (%s in Debian %s)\n' "$(basename "$deb")" "$(cat "$root/etc/debian_version")"
