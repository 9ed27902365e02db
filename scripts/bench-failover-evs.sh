#!/usr/bin/env bash
# bench-failover-evs.sh - the agent's automatic failover time with the test
# cluster's lowered Galera timeouts and with Galera's production defaults,
# side by side on one machine (docs/perf/agent.md).
#
# For each setting it creates its own three-node cluster (not the shared
# one) in MNPOOL_GALERA_DIR (default /tmp/mnpool-galera-evs-bench) on ports
# MNPOOL_GALERA_PORT (default 4600), runs BenchmarkFailoverGalera/victim=sn
# RUNS times (default 5) and takes the cluster down again.
#
#   scripts/bench-failover-evs.sh            # fast, then production
#   RUNS=9 scripts/bench-failover-evs.sh production
set -euo pipefail

cd "$(dirname "$0")/.."
export MNPOOL_GALERA_DIR=${MNPOOL_GALERA_DIR:-/tmp/mnpool-galera-evs-bench}
export MNPOOL_GALERA_PORT=${MNPOOL_GALERA_PORT:-4600}
RUNS=${RUNS:-5}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || {
	echo "RUNS=$RUNS: want a positive number" >&2
	exit 2
}
settings=("$@")
((${#settings[@]} > 0)) || settings=(fast production)

bin=$(mktemp -d)
trap 'scripts/galera.sh down >/dev/null 2>&1 || true; rm -rf "$bin"' EXIT
go test -c -o "$bin/agent.test" ./agent/
for evs in "${settings[@]}"; do
	scripts/galera.sh down >/dev/null 2>&1 || true
	MNPOOL_GALERA_EVS=$evs scripts/galera.sh up >/dev/null
	eval "$(scripts/galera.sh env)"
	echo "== MNPOOL_GALERA_EVS=$evs, $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
	(cd agent && MNPOOL_REQUIRE_GALERA=1 "$bin/agent.test" -test.run '^$' -test.bench 'BenchmarkFailoverGalera/victim=sn' \
		-test.benchtime "${RUNS}x" -test.timeout 60m -test.v) | grep -E 'runs [0-9]+:|s-to-rerendered'
	echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
done
