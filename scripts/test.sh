#!/usr/bin/env bash
# Runs every check and test of mnpool: gofmt, go vet, go test -race ./...
# against the embedded SQLite AND a local three-node MariaDB Galera cluster.
#
# When MNPOOL_TEST_DSNS is not set it starts the cluster itself with
# scripts/galera.sh (installing mariadb-server, galera-4 and rsync with
# apt-get first when they are missing and we are root) and stops it at the
# end. Extra arguments go to `go test` (for example -run TestX ./pool/).
#
# --stress runs the same suite while a CPU burner keeps every core busy
# (one busy loop per core, stopped at the end), with the tests' timeouts
# scaled by MNPOOL_TEST_TIMEOUT_SCALE (default 3 with --stress, 1
# without): a suite that holds here holds on a busy CI machine. Timeouts in
# tests come only from internal/testenv.Timeout.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

need_pkgs=()
command -v mariadbd >/dev/null 2>&1 || need_pkgs+=(mariadb-server)
[ -e /usr/lib/galera/libgalera_smm.so ] || need_pkgs+=(galera-4)
command -v rsync >/dev/null 2>&1 || need_pkgs+=(rsync)

stress=0
if [ "${1:-}" = "--stress" ]; then
	stress=1
	shift
	export MNPOOL_TEST_TIMEOUT_SCALE=${MNPOOL_TEST_TIMEOUT_SCALE:-3}
fi

started=0
burners=()
cleanup() {
	if [ "${#burners[@]}" -gt 0 ]; then
		log "stopping the CPU burner (${burners[*]})"
		kill "${burners[@]}" 2>/dev/null || true
		wait "${burners[@]}" 2>/dev/null || true
	fi
	if [ "$started" = 1 ]; then
		log "stopping the local Galera cluster"
		scripts/galera.sh down >&2 || true
	fi
}
trap cleanup EXIT

if [ -z "${MNPOOL_TEST_DSNS:-}" ]; then
	if [ "${#need_pkgs[@]}" -gt 0 ]; then
		if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
			log "installing ${need_pkgs[*]}"
			export DEBIAN_FRONTEND=noninteractive
			apt-get update -qq
			apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
		else
			log "missing packages: ${need_pkgs[*]} (apt-get install ${need_pkgs[*]}); Galera tests will be skipped"
		fi
	fi
	if command -v mariadbd >/dev/null 2>&1 && [ -e /usr/lib/galera/libgalera_smm.so ]; then
		log "starting the local Galera cluster (scripts/galera.sh up)"
		started=1
		out=$(scripts/galera.sh up)
		while IFS= read -r line; do
			case "$line" in
			MNPOOL_*=*) export "${line?}" ;;
			esac
		done <<<"$out"
	fi
fi

log "gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then
	printf 'gofmt needed on:\n%s\n' "$bad" >&2
	exit 1
fi
log "go vet ./..."
go vet ./...
# build/ is its own module (man pages, completion, packages with nfpm).
log "build/: go vet, go test"
(cd build && go vet ./... && go test -count=1 ./...)
if [ "$stress" = 1 ]; then
	n=$(nproc 2>/dev/null || echo 2)
	log "--stress: $n CPU burners, MNPOOL_TEST_TIMEOUT_SCALE=$MNPOOL_TEST_TIMEOUT_SCALE"
	for _ in $(seq "$n"); do
		bash -c 'while :; do :; done' &
		burners+=("$!")
	done
fi
log "go test -race ./... (MNPOOL_TEST_DSNS=${MNPOOL_TEST_DSNS:-unset}, MNPOOL_TEST_TIMEOUT_SCALE=${MNPOOL_TEST_TIMEOUT_SCALE:-1})"
if [ "$#" -eq 0 ]; then
	set -- ./...
fi
go test -race -timeout 40m -count=1 "$@"
