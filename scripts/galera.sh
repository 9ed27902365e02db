#!/usr/bin/env bash
# galera.sh - a local three-node MariaDB Galera cluster on one host, for the
# mnpool tests and demos. See docs/GALERA.md.
set -euo pipefail

readonly NODES=3
readonly RUN_USER=mysql
readonly DB_NAME=mnpool
readonly DB_USER=mnpool
readonly DB_PASS=mnpool

PROG=${0##*/}
readonly PROG
GALERA_DIR=${MNPOOL_GALERA_DIR:-${TMPDIR:-/tmp}/mnpool-galera}
BASE_PORT=${MNPOOL_GALERA_PORT:-}
TIMEOUT=${MNPOOL_GALERA_TIMEOUT:-120}
STOP_TIMEOUT=${MNPOOL_GALERA_STOP_TIMEOUT:-30}
MARIADBD=${MNPOOL_MARIADBD:-/usr/sbin/mariadbd}
PROVIDER=${MNPOOL_GALERA_PROVIDER:-/usr/lib/galera/libgalera_smm.so}
START_SECONDS=$SECONDS

# Galera failure detection (MNPOOL_GALERA_EVS). "fast", the default, lowers
# it for fast tests; "production" keeps Galera's own defaults (keepalive
# PT1S, suspect PT5S, inactive PT15S, install PT7.5S); anything else is a
# raw option string. docs/GALERA.md explains them.
readonly EVS_FAST="evs.keepalive_period=PT0.5S;evs.inactive_check_period=PT0.5S;evs.suspect_timeout=PT2S;evs.inactive_timeout=PT4S;evs.install_timeout=PT4S;evs.join_retrans_period=PT0.5S;gmcast.peer_timeout=PT2S"
EVS_SETTING=${MNPOOL_GALERA_EVS:-}
EVS_OPTIONS=""

usage() {
	cat <<EOF
Usage: $PROG COMMAND [N]

A local 3-node MariaDB Galera cluster for mnpool tests and demos.
Node N (1..3) listens on 127.0.0.(10+N), SQL port BASE+N.

Commands:
  up           create (or repair) the cluster; returns when all 3 nodes are
               Synced/Primary; prints MNPOOL_TEST_DSNS=... and
               MNPOOL_GALERA_DIR=... as its last stdout lines
  down         stop every node (SIGKILL after ${STOP_TIMEOUT}s) and remove the directory
  status       per node: pid, process state, cluster status, state, ready, size
  env          print 'export MNPOOL_TEST_DSNS=...' lines for eval
  stop N       graceful shutdown of node N
  kill N       SIGKILL node N (a crash)
  start N      start a stopped/killed node, wait until it is Synced
               (when all nodes are down, bootstraps the most advanced one first)
  pause N      SIGSTOP node N
  resume N     SIGCONT node N
  isolate N    cut node N off (gmcast.isolate=1)
  heal N       undo isolate (gmcast.isolate=0)
  wait N [S]   wait up to S seconds (default $TIMEOUT) until node N is Synced/Primary

Environment:
  MNPOOL_GALERA_DIR      state directory (default \${TMPDIR:-/tmp}/mnpool-galera)
  MNPOOL_GALERA_PORT     port base (default 4400): SQL base+N, gcomm base+10+N,
                         IST base+20+N, SST base+30+N
  MNPOOL_GALERA_TIMEOUT  seconds to wait for a node to sync (default 120)
  MNPOOL_GALERA_EVS      failure detection: fast (default; suspect 2 s +
                         inactive 4 s), production (Galera's defaults,
                         5 s + 15 s), or a raw option string such as
                         'evs.suspect_timeout=PT3S;evs.inactive_timeout=PT6S'
                         (evs.*, gmcast.peer_timeout, pc.* keys only). A
                         cluster keeps the setting it was created with.
EOF
}

log() { printf '%s: [%3ds] %s\n' "$PROG" "$((SECONDS - START_SECONDS))" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$PROG" "$*" >&2
	exit 1
}

# ---------------------------------------------------------------- settings

check_settings() {
	[[ $GALERA_DIR == /* ]] || die "MNPOOL_GALERA_DIR=$GALERA_DIR: must be an absolute path"
	[[ $GALERA_DIR =~ ^[A-Za-z0-9._/-]+$ ]] ||
		die "MNPOOL_GALERA_DIR=$GALERA_DIR: only letters, digits and . _ / - are allowed"
	GALERA_DIR=${GALERA_DIR%/}
	# The socket path must fit in sun_path (108 bytes).
	((${#GALERA_DIR} <= 80)) || die "MNPOOL_GALERA_DIR=$GALERA_DIR: longer than 80 characters"
	[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "MNPOOL_GALERA_TIMEOUT=$TIMEOUT: must be a number of seconds"
	[[ $STOP_TIMEOUT =~ ^[0-9]+$ ]] || die "MNPOOL_GALERA_STOP_TIMEOUT=$STOP_TIMEOUT: must be a number of seconds"

	# A cluster that exists keeps the port base it was created with.
	local saved=""
	if [[ -f $GALERA_DIR/cluster.env ]]; then
		saved=$(sed -n 's/^port_base=\([0-9]*\)$/\1/p' "$GALERA_DIR/cluster.env")
	fi
	if [[ -n $saved && -n $BASE_PORT && $saved != "$BASE_PORT" ]]; then
		die "MNPOOL_GALERA_PORT=$BASE_PORT: the cluster in $GALERA_DIR uses $saved"
	fi
	BASE_PORT=${BASE_PORT:-${saved:-4400}}
	if ! [[ $BASE_PORT =~ ^[0-9]+$ ]] || ((BASE_PORT < 1024 || BASE_PORT > 65400)); then
		die "MNPOOL_GALERA_PORT=$BASE_PORT: must be a number from 1024 to 65400"
	fi
	check_evs
}

# check_evs resolves MNPOOL_GALERA_EVS into EVS_OPTIONS. A cluster that
# exists keeps the setting it was created with (cluster.env).
check_evs() {
	local saved="" exists=""
	if [[ -f $GALERA_DIR/cluster.env ]]; then
		exists=1
		saved=$(sed -n 's/^evs=\(.*\)$/\1/p' "$GALERA_DIR/cluster.env")
		saved=${saved:-fast} # clusters created before the setting existed
	fi
	if [[ -n $exists && -n $EVS_SETTING && $EVS_SETTING != "$saved" ]]; then
		die "MNPOOL_GALERA_EVS=$EVS_SETTING: the cluster in $GALERA_DIR was created with '$saved' (run down, then up)"
	fi
	EVS_SETTING=${EVS_SETTING:-${saved:-fast}}
	case $EVS_SETTING in
	fast) EVS_OPTIONS=";$EVS_FAST" ;;
	production) EVS_OPTIONS="" ;;
	*)
		local re='^(evs\.[a-z_]+|gmcast\.peer_timeout|pc\.[a-z_]+)=[A-Za-z0-9.]+$' opt
		local -a opts
		IFS=';' read -r -a opts <<<"$EVS_SETTING"
		((${#opts[@]} > 0)) || die "MNPOOL_GALERA_EVS is empty"
		for opt in "${opts[@]}"; do
			[[ $opt =~ $re ]] ||
				die "MNPOOL_GALERA_EVS: option '$opt': want fast, production, or KEY=VALUE;... with evs.*, gmcast.peer_timeout or pc.* keys and values of letters, digits and dots"
		done
		EVS_OPTIONS=";$EVS_SETTING"
		;;
	esac
}

check_node() {
	if ! [[ ${1:-} =~ ^[1-9]$ ]] || (($1 > NODES)); then
		die "node ${1:-(none)}: must be 1..$NODES"
	fi
}

node_ip() { echo "127.0.0.$((10 + $1))"; }
sql_port() { echo "$((BASE_PORT + $1))"; }
gcomm_port() { echo "$((BASE_PORT + 10 + $1))"; }
ist_port() { echo "$((BASE_PORT + 20 + $1))"; }
sst_port() { echo "$((BASE_PORT + 30 + $1))"; }
node_dir() { echo "$GALERA_DIR/node$1"; }
node_addr() { echo "$(node_ip "$1"):$(sql_port "$1")"; }

dsns() {
	local n out=""
	for ((n = 1; n <= NODES; n++)); do
		out+="${out:+,}mysql:$DB_USER:$DB_PASS@tcp($(node_addr "$n"))/$DB_NAME"
	done
	echo "$out"
}

# ---------------------------------------------------------------- prerequisites

check_prereqs() {
	local missing=() pkgs=()
	need() { # package description test...
		local pkg=$1 what=$2
		shift 2
		if ! "$@" >/dev/null 2>&1; then
			missing+=("$what")
			[[ " ${pkgs[*]} " == *" $pkg "* ]] || pkgs+=("$pkg")
		fi
	}
	need mariadb-server "$MARIADBD" test -x "$MARIADBD"
	need mariadb-server mariadb-install-db command -v mariadb-install-db
	need mariadb-server wsrep_sst_rsync command -v wsrep_sst_rsync
	need mariadb-client mariadb command -v mariadb
	need galera-4 "$PROVIDER" test -f "$PROVIDER"
	need rsync rsync command -v rsync
	need iproute2 ss command -v ss
	need util-linux "flock, setsid" command -v flock setsid
	if ((${#missing[@]})); then
		printf '%s: error: missing: %s\n' "$PROG" "${missing[*]}" >&2
		printf '%s: install them with: apt-get install %s\n' "$PROG" "${pkgs[*]}" >&2
		printf '%s: (the full set is: apt-get install mariadb-server galera-4 rsync)\n' "$PROG" >&2
		exit 1
	fi
	id -u "$RUN_USER" >/dev/null 2>&1 || die "user $RUN_USER does not exist (it comes with mariadb-server)"
}

need_root() {
	((EUID == 0)) || die "must run as root: the nodes run as user $RUN_USER"
}

# ---------------------------------------------------------------- locking

# lock serialises the commands that change the cluster. The lock file lives
# beside the directory so that down can remove the directory while holding it.
lock() {
	mkdir -p "$(dirname "$GALERA_DIR")"
	exec 9>>"$GALERA_DIR.lock"
	flock -w "$((TIMEOUT * 3))" 9 || die "another $PROG holds $GALERA_DIR.lock"
}

# ---------------------------------------------------------------- processes

ere_quote() { printf '%s' "$1" | sed 's/[][\.^$*+?(){}|/]/\\&/g'; }

# node_pid prints the pid of node N's server process, or nothing.
node_pid() {
	local pat
	pat="^$(ere_quote "$MARIADBD") --defaults-file=$(ere_quote "$(node_dir "$1")/my.cnf") --user=$RUN_USER( --wsrep-new-cluster)?( --wsrep_start_position=[^ ]*)?\$"
	pgrep -o -f -- "$pat" || true
}

# dir_pids prints every process whose command line names the directory of
# node N (the server, a --wsrep-recover run, SST scripts and rsync daemons).
dir_pids() {
	pgrep -u "$RUN_USER" -f -- "$(ere_quote "$(node_dir "$1")")/" || true
}

proc_state() { # pid -> R/S/D/T/Z...
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	echo "${stat%% *}"
}

is_paused() {
	local pid
	pid=$(node_pid "$1")
	[[ -n $pid && $(proc_state "$pid") == [Tt] ]]
}

# ---------------------------------------------------------------- SQL

# sql N QUERY runs QUERY as root over node N's socket (tab-separated, no headers).
sql() {
	timeout 15 mariadb --no-defaults --protocol=socket -S "$(node_dir "$1")/mysqld.sock" \
		-uroot --connect-timeout=5 -N -B -e "$2"
}

# node_status N prints "cluster_status state_comment ready size conf_id incoming".
node_status() {
	local out
	out=$(sql "$1" "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_status','wsrep_local_state_comment','wsrep_ready','wsrep_cluster_size','wsrep_cluster_conf_id','wsrep_incoming_addresses')" 2>/dev/null) || return 1
	awk -F'\t' '{v[$1]=$2} END {
		printf "%s %s %s %s %s %s\n", v["wsrep_cluster_status"], v["wsrep_local_state_comment"],
			v["wsrep_ready"], v["wsrep_cluster_size"], v["wsrep_cluster_conf_id"],
			(v["wsrep_incoming_addresses"] == "" ? "-" : v["wsrep_incoming_addresses"])
	}' <<<"$out"
}

# is_synced N [SIZE]: node N answers Primary, Synced, ON (and SIZE members),
# and is in the same view (wsrep_cluster_conf_id) as every other running
# node that is Primary. The last check matters after a pause: a resumed node
# reports its old Primary view until it notices it was dropped.
is_synced() {
	local n=$1 st cs sc rd sz conf other i pid
	[[ -n $(node_pid "$n") ]] || return 1
	is_paused "$n" && return 1
	st=$(node_status "$n") || return 1
	read -r cs sc rd sz conf _ <<<"$st"
	[[ $cs == Primary && $sc == Synced && $rd == ON ]] || return 1
	[[ -z ${2:-} || $sz == "$2" ]] || return 1
	for ((i = 1; i <= NODES; i++)); do
		((i == n)) && continue
		pid=$(node_pid "$i")
		[[ -n $pid && $(proc_state "$pid") != [Tt] ]] || continue
		st=$(node_status "$i") || continue
		read -r cs _ _ _ other _ <<<"$st"
		[[ $cs != Primary || $other == "$conf" ]] || return 1
	done
}

# wait_synced N [SECONDS [SIZE]] waits until node N is Synced; fails when the
# process exits or the time is up.
wait_synced() {
	local n=$1 limit=${2:-$TIMEOUT} size=${3:-} deadline st
	deadline=$((SECONDS + limit))
	while ! is_synced "$n" "$size"; do
		if [[ -z $(node_pid "$n") ]]; then
			tail -n 25 "$(node_dir "$n")/mariadbd.log" >&2 2>/dev/null || true
			die "node $n: mariadbd is not running (log: $(node_dir "$n")/mariadbd.log)"
		fi
		if ((SECONDS >= deadline)); then
			st=$(node_status "$n" 2>/dev/null || echo "not answering")
			die "node $n: not Synced/Primary${size:+ with size $size} after ${limit}s (now: $st)"
		fi
		sleep 0.2
	done
}

# ---------------------------------------------------------------- node files

write_cnf() {
	local n=$1 d ip all="" i
	d=$(node_dir "$n")
	ip=$(node_ip "$n")
	for ((i = 1; i <= NODES; i++)); do
		all+="${all:+,}$(node_ip "$i"):$(gcomm_port "$i")"
	done
	cat >"$d/my.cnf.tmp" <<EOF
# node $n of the mnpool test cluster, written by $PROG
[mysqld]
datadir                        = $d/data
socket                         = $d/mysqld.sock
pid-file                       = $d/mysqld.pid
log-error                      = $d/mariadbd.log
tmpdir                         = $d/tmp
bind-address                   = $ip
port                           = $(sql_port "$n")
skip-name-resolve
max_connections                = 500
performance_schema             = OFF
innodb_buffer_pool_size        = 64M
innodb_log_file_size           = 32M
innodb_flush_log_at_trx_commit = 1
innodb_autoinc_lock_mode       = 2
binlog_format                  = ROW
default_storage_engine         = InnoDB
key_buffer_size                = 8M
aria_pagecache_buffer_size     = 8M

wsrep_on                       = ON
wsrep_provider                 = $PROVIDER
wsrep_cluster_name             = mnpool-test
wsrep_cluster_address          = gcomm://$all
wsrep_node_name                = node$n
wsrep_node_address             = $ip:$(gcomm_port "$n")
wsrep_node_incoming_address    = $ip:$(sql_port "$n")
wsrep_sst_method               = rsync
wsrep_sst_receive_address      = $ip:$(sst_port "$n")
wsrep_slave_threads            = 2
wsrep_provider_options         = "gmcast.listen_addr=tcp://$ip:$(gcomm_port "$n");ist.recv_addr=$ip:$(ist_port "$n");gcache.size=32M$EVS_OPTIONS"
EOF
	mv "$d/my.cnf.tmp" "$d/my.cnf"
}

prepare_node_dir() {
	local d
	d=$(node_dir "$1")
	mkdir -p "$d/data" "$d/tmp"
	write_cnf "$1"
	chown -R "$RUN_USER:" "$d"
	chmod 0750 "$d/data"
}

# grastate_field N FIELD prints a field of node N's grastate.dat.
grastate_field() {
	sed -n "s/^$2:[[:space:]]*//p" "$(node_dir "$1")/data/grastate.dat" 2>/dev/null | head -n 1
}

# recover_position N prints node N's last committed position (uuid:seqno...),
# read from grastate.dat after a clean shutdown or from InnoDB after a crash.
recover_position() {
	local n=$1 d uuid seqno rlog pos
	d=$(node_dir "$n")
	uuid=$(grastate_field "$n" uuid)
	seqno=$(grastate_field "$n" seqno)
	if [[ -z $uuid ]]; then
		return 0
	fi
	if [[ -n $seqno && $seqno != -1 ]]; then
		echo "$uuid:$seqno"
		return 0
	fi
	rlog=$d/recover.log
	rm -f "$rlog"
	"$MARIADBD" --defaults-file="$d/my.cnf" --user="$RUN_USER" --wsrep-recover \
		--log-error="$rlog" --skip-networking </dev/null >/dev/null 2>&1 9>&- || true
	pos=$(sed -n 's/.*WSREP: Recovered position:[[:space:]]*//p' "$rlog" 2>/dev/null | tail -n 1)
	echo "${pos%% *}"
}

position_seqno() { # uuid:seqno[,gtid] -> seqno (or -1)
	local s=${1#*:}
	s=${s%%,*}
	[[ $1 == *:* && $s =~ ^-?[0-9]+$ ]] && echo "$s" || echo -1
}

# ---------------------------------------------------------------- start/stop

# launch N ARGS... starts mariadbd for node N in its own session, detached
# from our stdout/stderr and our lock.
launch() {
	local n=$1 d
	shift
	d=$(node_dir "$n")
	rm -f "$d/mysqld.pid" "$d/mysqld.sock"
	setsid "$MARIADBD" --defaults-file="$d/my.cnf" --user="$RUN_USER" "$@" \
		</dev/null >>"$d/mariadbd.out" 2>&1 9>&- &
}

# start_args N prints (one per line) the extra mariadbd arguments for node N:
# after a crash grastate.dat says seqno -1, so the committed position is
# recovered from InnoDB and handed over, which lets the node rejoin by IST.
start_args() {
	local n=$1 pos
	if [[ $(grastate_field "$n" seqno) == -1 ]]; then
		log "node $n: recovering its position after a crash (--wsrep-recover)"
		pos=$(recover_position "$n")
		[[ -z $pos ]] || echo "--wsrep_start_position=$pos"
	fi
}

bootstrap_node() {
	local n=$1 d args
	d=$(node_dir "$n")
	mapfile -t args < <(start_args "$n")
	if [[ -f $d/data/grastate.dat ]]; then
		sed -i 's/^safe_to_bootstrap:.*/safe_to_bootstrap: 1/' "$d/data/grastate.dat"
	fi
	log "node $n: bootstrapping a new primary component (--wsrep-new-cluster)"
	launch "$n" --wsrep-new-cluster "${args[@]}"
	wait_synced "$n"
	log "node $n: Synced (bootstrap)"
}

join_node() {
	local n=$1 args
	mapfile -t args < <(start_args "$n")
	log "node $n: starting, joining the cluster"
	launch "$n" "${args[@]}"
	wait_synced "$n"
	log "node $n: Synced"
}

# other_nodes N prints the other nodes whose server runs and is not paused.
other_nodes() {
	local i pid
	for ((i = 1; i <= NODES; i++)); do
		((i == $1)) && continue
		pid=$(node_pid "$i")
		[[ -n $pid && $(proc_state "$pid") != [Tt] ]] && echo "$i"
	done
	return 0
}

# ensure_primary N: when other nodes run but none of them is in a primary
# component (a majority was lost), re-bootstrap the component on the running
# node with the highest wsrep_last_committed (pc.bootstrap=YES) so that node
# N has a cluster to join.
ensure_primary() {
	local n=$1 i st cs last best=0 best_last=-2
	for i in $(other_nodes "$n"); do
		st=$(node_status "$i" 2>/dev/null) || continue
		read -r cs _ <<<"$st"
		[[ $cs == Primary ]] && return 0
		last=$(sql "$i" "SHOW GLOBAL STATUS LIKE 'wsrep_last_committed'" 2>/dev/null | cut -f2) || continue
		[[ $last =~ ^[0-9]+$ ]] || continue
		if ((last > best_last)); then
			best=$i
			best_last=$last
		fi
	done
	((best > 0)) || return 0
	log "node $best: no running node is Primary; forcing pc.bootstrap=YES (last committed $best_last)"
	sql "$best" "SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'" ||
		die "node $best: could not set pc.bootstrap=YES"
	wait_synced "$best"
}

# most_advanced prints the node with the highest committed seqno (lowest
# number on a tie) among nodes that have data.
most_advanced() {
	local i pos s best=0 best_s=-2
	for ((i = 1; i <= NODES; i++)); do
		[[ -d $(node_dir "$i")/data/mysql ]] || continue
		pos=$(recover_position "$i")
		s=$(position_seqno "$pos")
		log "node $i: last committed position ${pos:-unknown} (seqno $s)"
		if ((s > best_s)); then
			best=$i
			best_s=$s
		fi
	done
	echo "$best"
}

start_node() {
	local n=$1 best
	[[ -f $(node_dir "$n")/my.cnf ]] || die "node $n: no cluster in $GALERA_DIR (run: $PROG up)"
	if [[ -n $(node_pid "$n") ]]; then
		if is_paused "$n"; then
			log "node $n: paused; resuming"
			kill -CONT "$(node_pid "$n")"
		fi
		wait_synced "$n"
		log "node $n: already running and Synced"
		return 0
	fi
	write_cnf "$n"
	if [[ -n $(other_nodes "$n") ]]; then
		ensure_primary "$n"
		join_node "$n"
		return 0
	fi
	log "all nodes are down; choosing the most advanced node to bootstrap from"
	best=$(most_advanced)
	((best > 0)) || die "no node in $GALERA_DIR has data (run: $PROG up)"
	bootstrap_node "$best"
	if ((best != n)); then
		join_node "$n"
	fi
}

# wait_gone PID SECONDS
wait_gone() {
	local pid=$1 deadline=$((SECONDS + $2))
	while kill -0 "$pid" 2>/dev/null; do
		# A zombie is gone for our purposes.
		[[ $(proc_state "$pid") == Z ]] && return 0
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

# end_node N stop|kill: a graceful stop (SIGKILL after STOP_TIMEOUT), or a
# crash; returns when the process is gone.
end_node() {
	local n=$1 how=$2 pid
	pid=$(node_pid "$n")
	if [[ -z $pid ]]; then
		log "node $n: not running"
		return 0
	fi
	if [[ $how == stop ]]; then
		log "node $n: stopping pid $pid"
		kill -TERM "$pid" 2>/dev/null || true
		kill -CONT "$pid" 2>/dev/null || true
		if wait_gone "$pid" "$STOP_TIMEOUT"; then
			log "node $n: stopped"
			return 0
		fi
		log "node $n: still running after ${STOP_TIMEOUT}s; sending SIGKILL"
	fi
	kill -KILL "$pid" 2>/dev/null || true
	wait_gone "$pid" 10 || die "node $n: pid $pid survives SIGKILL"
	log "node $n: killed pid $pid"
}

signal_node() { # N SIGNAL verb
	local pid
	pid=$(node_pid "$1")
	[[ -n $pid ]] || die "node $1: not running"
	kill "-$2" "$pid"
	log "node $1: $3 pid $pid"
}

set_isolate() { # N 0|1
	local n=$1
	[[ -n $(node_pid "$n") ]] || die "node $n: not running"
	! is_paused "$n" || die "node $n: paused; resume it first"
	sql "$n" "SET GLOBAL wsrep_provider_options='gmcast.isolate=$2'" ||
		die "node $n: could not set gmcast.isolate=$2"
	log "node $n: gmcast.isolate=$2"
}

# ---------------------------------------------------------------- commands

ensure_accounts() {
	local host sqltext=""
	for host in '%' localhost 127.0.0.1 '127.0.0.%'; do
		sqltext+="CREATE USER IF NOT EXISTS '$DB_USER'@'$host' IDENTIFIED BY '$DB_PASS';"
		sqltext+="GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'$host' WITH GRANT OPTION;"
	done
	sqltext+="DROP USER IF EXISTS ''@'localhost', ''@'$(hostname)';"
	sqltext+="CREATE DATABASE IF NOT EXISTS \`$DB_NAME\`;"
	sql 1 "$sqltext" || die "node 1: could not create user $DB_USER and database $DB_NAME"
}

check_ports_free() {
	local n p ip
	for ((n = 1; n <= NODES; n++)); do
		ip=$(node_ip "$n")
		for p in "$(sql_port "$n")" "$(gcomm_port "$n")" "$(ist_port "$n")" "$(sst_port "$n")"; do
			if [[ -n $(ss -Hltn "( sport = :$p )" 2>/dev/null | awk -v a="$ip:$p" '$4 == a || $4 ~ /^(0\.0\.0\.0|\*|\[::\]):/') ]]; then
				die "port $ip:$p is already in use (another cluster? set MNPOOL_GALERA_PORT)"
			fi
		done
	done
}

all_synced() {
	local n
	for ((n = 1; n <= NODES; n++)); do
		is_synced "$n" "$NODES" || return 1
	done
}

print_result() {
	echo "MNPOOL_TEST_DSNS=$(dsns)"
	echo "MNPOOL_GALERA_DIR=$GALERA_DIR"
}

create_cluster() {
	local n d
	log "creating a $NODES-node cluster in $GALERA_DIR (ports base $BASE_PORT)"
	check_ports_free
	# Keep the directory itself: tests may hold faults.lock in it.
	for ((n = 1; n <= NODES; n++)); do
		rm -rf "$(node_dir "$n")"
	done
	mkdir -p "$GALERA_DIR"
	chmod 0755 "$GALERA_DIR"
	printf 'port_base=%s\nevs=%s\n' "$BASE_PORT" "$EVS_SETTING" >"$GALERA_DIR/cluster.env"
	runuser -u "$RUN_USER" -- test -x "$GALERA_DIR" ||
		die "$GALERA_DIR: user $RUN_USER cannot reach it (check the parent directories' permissions)"
	for ((n = 1; n <= NODES; n++)); do
		prepare_node_dir "$n"
	done
	d=$(node_dir 1)
	log "node 1: mariadb-install-db"
	mariadb-install-db --defaults-file="$d/my.cnf" --user="$RUN_USER" \
		--auth-root-authentication-method=socket --skip-test-db --skip-name-resolve \
		--wsrep-on=OFF </dev/null >"$d/install-db.log" 2>&1 9>&- ||
		{
			tail -n 25 "$d/install-db.log" >&2
			die "node 1: mariadb-install-db failed (log: $d/install-db.log)"
		}
	bootstrap_node 1
	ensure_accounts
	for ((n = 2; n <= NODES; n++)); do
		join_node "$n"
	done
}

repair_cluster() {
	local n st cs _
	for ((n = 1; n <= NODES; n++)); do
		if is_paused "$n"; then
			log "node $n: paused; resuming"
			kill -CONT "$(node_pid "$n")"
		fi
	done
	for ((n = 1; n <= NODES; n++)); do
		[[ -n $(node_pid "$n") ]] || continue
		st=$(node_status "$n" 2>/dev/null) || continue
		read -r cs _ <<<"$st"
		if [[ $cs != Primary ]]; then
			log "node $n: $cs; clearing gmcast.isolate"
			sql "$n" "SET GLOBAL wsrep_provider_options='gmcast.isolate=0'" || true
		fi
	done
	for ((n = 1; n <= NODES; n++)); do
		[[ -n $(node_pid "$n") ]] || start_node "$n"
	done
	for ((n = 1; n <= NODES; n++)); do
		wait_synced "$n"
	done
	ensure_accounts
}

cmd_up() {
	need_root
	check_prereqs
	lock
	if [[ -d $(node_dir 1)/data/mysql ]] && all_synced; then
		log "cluster in $GALERA_DIR is already up and Synced"
		print_result
		return 0
	elif [[ -d $(node_dir 1)/data/mysql ]]; then
		log "cluster in $GALERA_DIR exists but is not healthy; repairing"
		repair_cluster
	else
		create_cluster
	fi
	local n
	for ((n = 1; n <= NODES; n++)); do
		wait_synced "$n" "$TIMEOUT" "$NODES"
	done
	log "all $NODES nodes Synced, Primary, ready, cluster size $NODES"
	print_result
}

cmd_down() {
	need_root
	lock
	local n pid pids
	for ((n = 1; n <= NODES; n++)); do
		end_node "$n" stop
	done
	for ((n = 1; n <= NODES; n++)); do
		pids=$(dir_pids "$n")
		for pid in $pids; do
			log "node $n: killing leftover pid $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-80))"
			kill -KILL "$pid" 2>/dev/null || true
		done
		for pid in $pids; do
			wait_gone "$pid" 10 || die "pid $pid survives SIGKILL"
		done
	done
	rm -rf "$GALERA_DIR"
	log "removed $GALERA_DIR"
}

cmd_status() {
	local n pid state st cs sc rd sz _
	printf '%-4s %-16s %-8s %-8s %-12s %-10s %-5s %s\n' node address pid process cluster state ready size
	for ((n = 1; n <= NODES; n++)); do
		pid=$(node_pid "$n")
		cs=- sc=- rd=- sz=-
		if [[ -z $pid ]]; then
			state=stopped
			pid=-
		elif is_paused "$n"; then
			state=paused
		else
			state=running
			if st=$(node_status "$n" 2>/dev/null); then
				read -r cs sc rd sz _ <<<"$st"
			else
				cs="(no answer)"
			fi
		fi
		printf '%-4s %-16s %-8s %-8s %-12s %-10s %-5s %s\n' "$n" "$(node_addr "$n")" "$pid" "$state" "$cs" "$sc" "$rd" "$sz"
	done
}

main() {
	local cmd=${1:-}
	case $cmd in
	-h | --help | help)
		usage
		return 0
		;;
	"")
		usage >&2
		return 2
		;;
	esac
	shift
	check_settings
	case $cmd in
	up | down | status | env)
		(($# == 0)) || die "$cmd takes no arguments"
		;;
	wait)
		(($# == 1 || $# == 2)) || die "usage: $PROG wait N [SECONDS]"
		check_node "$1"
		[[ ${2:-0} =~ ^[0-9]+$ ]] || die "wait: SECONDS=$2 must be a number"
		;;
	stop | kill | start | pause | resume | isolate | heal)
		(($# == 1)) || die "usage: $PROG $cmd N"
		check_node "$1"
		;;
	*)
		usage >&2
		die "unknown command: $cmd"
		;;
	esac
	case $cmd in
	up) cmd_up ;;
	down) cmd_down ;;
	status) cmd_status ;;
	env)
		printf "export MNPOOL_TEST_DSNS='%s'\n" "$(dsns)"
		printf "export MNPOOL_GALERA_DIR='%s'\n" "$GALERA_DIR"
		;;
	wait) wait_synced "$1" "${2:-$TIMEOUT}" ;;
	stop) need_root && lock && end_node "$1" stop ;;
	kill) need_root && lock && end_node "$1" kill ;;
	start) need_root && check_prereqs && lock && start_node "$1" ;;
	pause) need_root && lock && signal_node "$1" STOP paused ;;
	resume) need_root && lock && signal_node "$1" CONT resumed ;;
	isolate) need_root && lock && set_isolate "$1" 1 ;;
	heal) need_root && lock && set_isolate "$1" 0 ;;
	esac
}

main "$@"
