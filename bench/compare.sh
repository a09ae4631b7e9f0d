#!/bin/bash
# shellcheck disable=SC2059  # the tables' printf formats are in variables
# Benchmark: quicktwitch against HAProxy, nginx and direct service.
#
# A client and nodes in network namespaces (lib.sh): n1 is the front, n2
# and n3 the backs, each back running nginx on a unix socket (what
# quicktwitchd relays to; QT_UPSTREAM=tcp: 127.0.0.1:8080) and on its own
# address :8080 (what the proxies and the direct baseline use), serving
# the same files; n4 is a third back
# for the flow-table part only (see there).  The front runs, in turn:
#
#   quicktwitch     quicktwitchd on all three nodes, each relaying to its
#                   own nginx (upstream unix:...; see QT_UPSTREAM);
#                   the paths are owned by n2 and n3, so every connection
#                   through n1 is handed off
#   qt-builtin      the same hand-offs, the backs answering from the
#                   daemon's own static responder (sendfile from the
#                   files nginx serves) instead of relaying to nginx
#   haproxy         Debian's HAProxy, HTTP mode, defaults, round robin
#   haproxy-splice  the same with option splice-request/splice-response
#                   (checked with strace -c that splice() is called)
#   nginx           nginx as a reverse proxy, keepalive upstreams
#   direct          no front: the client asks n2's nginx itself
#
# The front's processes are pinned to CPU 0, everything else (wrk, curl,
# the backs' nginx and daemons) to CPU 1; receive packet steering puts
# the packet work of n1's eth0 on CPU 0 and that of the others on CPU 1.
# For bodies of 1 KB, 64 KB, 1 MB and 10 MB, keep-alive and
# "Connection: close": wrk for DURATION s (requests/s, and CPU time from
# /proc/stat: CPU 0's, the front's, and all cores'), then TTFB_N
# sequential curl requests (time to first byte).  Then the flow-table
# scaling: hand-off latency and front CPU per hand-off with 0, 10,000 and
# 50,000 live handed-off connections held open (bench/holdconns.py, from
# 20 client addresses).  A back holds a descriptor per flow, and no
# process here may have more than its hard RLIMIT_NOFILE: that part uses
# the daemons' built-in responder (one descriptor per flow, six with the
# relay) and three backs, n2, n3 and n4.
#
# Figures only: it never asserts, and exits 0 unless the setup fails (not
# root, a tool missing, the build, the cluster, a contender that does not
# start, or a sample check with a wrong body or server).
#
# Environment:
#   DURATION=4     seconds of wrk per cell
#   CONNS=32       wrk connections
#   SIZES="1k 64k 1m 10m"
#   MODES="keepalive close"
#   CONTENDERS="quicktwitch qt-builtin haproxy haproxy-splice nginx direct"
#   TTFB_N=200     sequential curl requests per cell for the TTFB
#   FLOWS="0 10000 50000"   live hand-offs for the scaling part ("" skips it)
#   FLOW_REPS=5  wrk runs per flow count; the median one is reported
#   FLOW_AFTER=1 measure the empty table again once the flows are released
#                (row "after": the machine's drift over the scaling part)
#   FLOW_PERF=0  1: one more wrk run per row under perf record -a -C 0,
#                not counted; CPU 0's top symbols per row in the log
#   QUIET_MAX=10   seconds to wait at most for an idle machine per contender
#   CELL_QUIET=10  seconds to wait at most for an idle CPU 0 before each cell
#   DRAIN_MAX=15 seconds to wait at most, after a quicktwitch run, for n1's
#                flow table to be as before it (the flows' teardown is
#                part of the run and of its CPU)
#   NOISY=5 RETRY=1  a cell during which other programs took more than
#                NOISY% of a CPU is measured again, RETRY times at most;
#                the quietest run is kept
#   OUT=/tmp/qt-bench-compare.csv
#   OUT_FLOWS=/tmp/qt-bench-compare-flows.csv
#   PLOT=/tmp/qt-bench-compare.png
#   LOGS=          a directory to copy the daemons' logs to at the end
#   LOG_FLOWS=   the daemons' log-flows (empty: the default, end)
#   QT_BUILD=<repo>/build
#   QT_UPSTREAM=unix  how a back's daemon reaches its nginx: unix (a unix
#                socket, as a deployment would) or tcp (127.0.0.1:8080;
#                each relay then pays a loopback connection's handshake,
#                conntrack entry and teardown, about 40 us of the back's
#                CPU per hand-off here)
#   ORDER=cell   cell: each mode and size measured for every contender in
#                turn (started and stopped for it), so that the ratios of
#                a cell come from runs minutes apart at most; contender:
#                every cell of one contender, then the next (faster, but
#                a machine whose speed drifts skews the ratios)

set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
QT_BUILD=${QT_BUILD:-$REPO/build}
DURATION=${DURATION:-4}
CONNS=${CONNS:-32}
SIZES=${SIZES:-1k 64k 1m 10m}
MODES=${MODES:-keepalive close}
CONTENDERS=${CONTENDERS:-quicktwitch qt-builtin haproxy haproxy-splice nginx direct}
TTFB_N=${TTFB_N:-200}
FLOWS=${FLOWS-0 10000 50000}
FLOW_REPS=${FLOW_REPS:-5}
FLOW_AFTER=${FLOW_AFTER:-1}
FLOW_PERF=${FLOW_PERF:-0}
QUIET_MAX=${QUIET_MAX:-10}
CELL_QUIET=${CELL_QUIET:-10}
RETRY=${RETRY:-1}
NOISY=${NOISY:-5}
DRAIN_MAX=${DRAIN_MAX:-15}
DRAIN=0
OUT=${OUT:-/tmp/qt-bench-compare.csv}
OUT_FLOWS=${OUT_FLOWS:-${OUT%.csv}-flows.csv}
PLOT=${PLOT:-/tmp/qt-bench-compare.png}
QT_UPSTREAM=${QT_UPSTREAM:-unix}
ORDER=${ORDER:-cell}

die() { echo "bench/compare.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: it builds network namespaces"
case $RETRY in "" | *[!0-9]*) die "RETRY must be a number" ;; esac
case $FLOW_AFTER in 0 | 1) ;; *) die "FLOW_AFTER must be 0 or 1" ;; esac
case $FLOW_PERF in 0 | 1) ;; *) die "FLOW_PERF must be 0 or 1" ;; esac
[ "$FLOW_PERF" = 0 ] || command -v perf >/dev/null || die "FLOW_PERF=1 needs perf (apt-get install linux-perf)"
case $QT_UPSTREAM in unix | tcp) ;; *) die "QT_UPSTREAM must be unix or tcp" ;; esac
case $ORDER in cell | contender) ;; *) die "ORDER must be cell or contender" ;; esac
for v in DURATION CONNS TTFB_N QUIET_MAX CELL_QUIET NOISY FLOW_REPS; do
	case ${!v} in '' | *[!0-9]*) die "$v must be a positive integer" ;; esac
	[ "${!v}" -ge 1 ] || die "$v must be at least 1"
done
for f in $FLOWS; do
	case $f in *[!0-9]*) die "FLOWS must be numbers" ;; esac
done
for m in $MODES; do
	case $m in keepalive | close) ;; *) die "MODES: keepalive and/or close" ;; esac
done
for c in $CONTENDERS; do
	case $c in quicktwitch | qt-builtin | haproxy | haproxy-splice | nginx | direct) ;;
	*) die "CONTENDERS: unknown $c" ;; esac
done
case " $CONTENDERS " in *" quicktwitch "*) ;; *) die "CONTENDERS must include quicktwitch (the ratios are to it)" ;; esac
for t in wrk haproxy nginx curl taskset strace python3 ip awk sort getconf timeout; do
	command -v "$t" >/dev/null || die "$t not found (scripts/deps.sh installs it)"
done
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (the front on CPU 0, the rest on CPU 1)"

# size_bytes LABEL: 1k -> 1024, 10m -> 10485760.
size_bytes() {
	case $1 in
	*[kK]) echo $((${1%?} * 1024)) ;;
	*[mM]) echo $((${1%?} * 1048576)) ;;
	*) echo "$1" ;;
	esac
}
for s in $SIZES; do
	case $s in [0-9]*[kKmM] | [0-9]*) ;; *) die "SIZES: like 1k 64k 1m 10m" ;; esac
	case $s in *[!0-9kKmM]*) die "SIZES: like 1k 64k 1m 10m" ;; esac
done

if [ ! -x "$QT_BUILD/quicktwitchd" ] || [ ! -x "$QT_BUILD/qtpick" ] || [ ! -x "$QT_BUILD/qtctl" ]; then
	echo "# building in $QT_BUILD"
	if ! cmake -S "$REPO" -B "$QT_BUILD" >/dev/null ||
	    ! cmake --build "$QT_BUILD" -j"$(nproc)" >/dev/null; then
		die "build failed"
	fi
fi

# Everything started from here runs on CPU 1 unless pinned to CPU 0.
taskset -p -c 1 $$ >/dev/null || die "taskset failed"
# Held connections need descriptors: as many as this process may have.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
FDMAX=$(ulimit -n)

export QT_BUILD
# shellcheck source=tests/integration/lib.sh
source "$REPO/tests/integration/lib.sh"
source "$REPO/bench/lib.sh"
# The daemons log as shipped (log-flows end), not as the tests do.
LOG_FLOWS=${LOG_FLOWS-}
require_root

FRONT=$(addr 1)

# --- counters ----------------------------------------------------------------

# "cpu0 all": busy clock ticks (user+nice+system+irq+softirq) of CPU 0 and
# of all CPUs, from /proc/stat.
cpu_snap() {
	awk '$1 == "cpu0" {z = $2 + $3 + $4 + $7 + $8}
	     $1 == "cpu" {t = $2 + $3 + $4 + $7 + $8}
	     END {print z, t}' /proc/stat
}

# CPU time in ns of every process in n1's namespace (the front's), all
# threads, from schedstat.
front_proc_ns() {
	# shellcheck disable=SC2046	# one word per pid
	proc_ns $(ip netns pids "$(ns 1)" 2>/dev/null)
}

# The CPUs the front's processes may run on, e.g. "haproxy:0".
front_affinity() {
	local p out=""
	for p in $(ip netns pids "$(ns 1)" 2>/dev/null); do
		out="$out $(cat /proc/"$p"/comm 2>/dev/null):$(awk '/^Cpus_allowed_list/ {print $2}' /proc/"$p"/status 2>/dev/null)"
	done
	echo "${out# }"
}

# --- cluster, files, nginx on the backs ----------------------------------------

make_cluster 4
NS_INODES=()
for n in $(ip netns list | awk '{print $1}' | grep "^$NS_PREFIX-"); do
	NS_INODES+=("$(stat -L -c %i "/run/netns/$n")")
done
# Receive packet steering: n1's packet work on CPU 0 (mask 1), the
# client's and the backs' on CPU 1 (mask 2).
set_rps() {
	in_ns "$1" sh -c "echo $2 > /sys/class/net/eth0/queues/rx-0/rps_cpus" ||
	    fail "cannot set rps_cpus in $1"
	RPS="$RPS $3:$(in_ns "$1" cat /sys/class/net/eth0/queues/rx-0/rps_cpus)"
}
RPS=""
set_rps "$(ns 1)" 1 n1
set_rps "$(ns 2)" 2 n2
set_rps "$(ns 3)" 2 n3
set_rps "$(ns 4)" 2 n4
set_rps "$CL" 2 client

declare -A PA PB BYTES
for s in $SIZES; do
	BYTES[$s]=$(size_bytes "$s")
	PA[$s]=$(name_owned_by 2 "b$s-a") || fail "no path owned by n2"
	PB[$s]=$(name_owned_by 3 "b$s-b") || fail "no path owned by n3"
	make_file "${PA[$s]}" "${BYTES[$s]}"
	make_file "${PB[$s]}" "${BYTES[$s]}"
done

# nginx_back N: nginx on back N, on unix:$TMP/nginx-nN/up.sock,
# 127.0.0.1:8080 and its address :8080.
nginx_back() {
	local n=$1 d=$TMP/nginx-n$1
	mkdir -p "$d"
	cat > "$d/nginx.conf" <<CONF
daemon on;
user root root;
worker_processes 1;
pid $d/pid;
error_log $d/error.log;
events { worker_connections 16384; }
http {
	access_log off;
	client_body_temp_path $d; proxy_temp_path $d; fastcgi_temp_path $d;
	uwsgi_temp_path $d; scgi_temp_path $d;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 10000000;
	keepalive_timeout 3600s;
	server {
		listen unix:$d/up.sock backlog=4096;
		listen 127.0.0.1:8080 backlog=4096;
		listen $(addr "$n"):8080 backlog=4096;
		root $TMP/www;
		add_header X-Served-By n$n;
	}
}
CONF
	in_node "$n" taskset -c 1 nginx -c "$d/nginx.conf" -p "$d" ||
	    fail "nginx on n$n did not start"
}
nginx_back 2
nginx_back 3

# upstream_of N: what node N's daemon relays to (QT_UPSTREAM).  n1 has
# no nginx of its own: it serves nothing here, every path being owned by
# a back.
upstream_of() {
	if [ "$QT_UPSTREAM" = tcp ]; then echo 127.0.0.1:8080
	else echo "unix:$TMP/nginx-n$1/up.sock"; fi
}

# qt_configs relay|builtin: every node's config; relay: each node relays
# to its own nginx (upstream_of), builtin: the daemon's own static
# responder.
qt_configs() {
	local i
	for i in "${NODES[@]}"; do
		write_config "$i" "upstream-timeout 5000" "idle-timeout 3600000" \
		    "stop-cleanup yes"
		[ "$1" = relay ] &&
		    sed -i "s|^service http port 80 handoff-base 8000\$|& upstream $(upstream_of "$i")|" "$TMP/n$i.conf"
	done
	if [ "$1" = relay ]; then
		grep -q upstream "$TMP/n1.conf" || fail "config not edited"
	fi
}

# --- contenders -----------------------------------------------------------------

# shellcheck disable=SC2317  # called through busywait
pid_gone() { ! kill -0 "$1" 2>/dev/null; }
# shellcheck disable=SC2317
n1_empty() { [ -z "$(ip netns pids "$(ns 1)")" ]; }

qt_start() {
	start_cluster
	taskset -a -p -c 0 "${DPID[1]}" >/dev/null || fail "cannot pin n1's daemon"
}
qt_stop() { local i; for i in 4 3 2 1; do stop_node "$i"; done; }

haproxy_start() {
	local splice=$1 cfg=$TMP/haproxy-$1.cfg
	{
		echo "global"
		echo "	nbthread 1"
		echo "	maxconn 4000"
		echo "	pidfile $TMP/haproxy.pid"
		echo "defaults"
		echo "	mode http"
		echo "	timeout connect 5s"
		echo "	timeout client 60s"
		echo "	timeout server 60s"
		if [ "$splice" = splice ]; then
			echo "	option splice-request"
			echo "	option splice-response"
		fi
		echo "frontend fe"
		echo "	bind $FRONT:80"
		echo "	default_backend be"
		echo "backend be"
		echo "	balance roundrobin"
		echo "	server n2 $(addr 2):8080"
		echo "	server n3 $(addr 3):8080"
	} > "$cfg"
	rm -f "$TMP/haproxy.pid"
	in_node 1 taskset -c 0 haproxy -D -f "$cfg" >"$TMP/haproxy.log" 2>&1 ||
	    { cat "$TMP/haproxy.log"; fail "haproxy did not start"; }
	busywait 3000 test -s "$TMP/haproxy.pid" || fail "haproxy wrote no pid file"
}
haproxy_stop() {
	local p
	p=$(cat "$TMP/haproxy.pid" 2>/dev/null) || return 0
	kill "$p" 2>/dev/null
	busywait 5000 pid_gone "$p" || kill -9 "$p" 2>/dev/null
	rm -f "$TMP/haproxy.pid"
}

nginx_front_start() {
	local d=$TMP/nginx-n1
	mkdir -p "$d"
	cat > "$d/nginx.conf" <<CONF
daemon on;
user root root;
worker_processes 1;
pid $d/pid;
error_log $d/error.log;
events { worker_connections 8192; }
http {
	access_log off;
	client_body_temp_path $d; proxy_temp_path $d; fastcgi_temp_path $d;
	uwsgi_temp_path $d; scgi_temp_path $d;
	keepalive_requests 10000000;
	upstream backs {
		server $(addr 2):8080;
		server $(addr 3):8080;
		keepalive 64;
		keepalive_requests 10000000;
	}
	server {
		listen $FRONT:80 backlog=4096;
		location / {
			proxy_pass http://backs;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
}
CONF
	in_node 1 taskset -c 0 nginx -c "$d/nginx.conf" -p "$d" ||
	    fail "nginx on n1 did not start"
}
nginx_front_stop() {
	in_node 1 nginx -c "$TMP/nginx-n1/nginx.conf" -p "$TMP/nginx-n1" -s stop 2>/dev/null
	busywait 5000 n1_empty || true
}

contender_start() {
	case $1 in
	quicktwitch) qt_configs relay; qt_start ;;
	qt-builtin) qt_configs builtin; qt_start ;;
	haproxy) haproxy_start default ;;
	haproxy-splice) haproxy_start splice ;;
	nginx) nginx_front_start ;;
	direct) ;;
	esac
}
contender_stop() {
	case $1 in
	quicktwitch | qt-builtin) qt_stop ;;
	haproxy | haproxy-splice) haproxy_stop ;;
	nginx) nginx_front_stop ;;
	direct) ;;
	esac
	busywait 5000 n1_empty ||
	    fail "$1: processes left in n1: $(front_affinity)"
}
base_url() {
	if [ "$1" = direct ]; then echo "http://$(addr 2):8080"; else echo "http://$FRONT"; fi
}

# check_contender NAME: each object, byte for byte, and who served it
# (quicktwitch: the path's owner; direct: n2; proxies: n2 or n3).  Also
# the warm-up (ARP, page cache, upstream connections).
check_contender() {
	local c=$1 s p want by k url
	url=$(base_url "$c")
	for s in $SIZES; do
		for p in "${PA[$s]}" "${PB[$s]}"; do
			for k in 1 2; do
				in_client curl -sS --max-time 30 -D "$TMP/chk.h" -o "$TMP/chk" "$url/$p" 2>>"$TMP/curl.err" ||
				    fail "$c: $p: curl failed"
			done
			cmp -s "$TMP/chk" "$TMP/www/$p" || fail "$c: $p: body differs from the file"
			by=$(grep -i '^X-Served-By:' "$TMP/chk.h" | tail -n 1 | tr -d '\r' | sed 's/.*n//')
			case $c in
			quicktwitch | qt-builtin) if [ "$p" = "${PA[$s]}" ]; then want=2; else want=3; fi ;;
			direct) want=2 ;;
			*) want=$by; [ "$by" = 2 ] || [ "$by" = 3 ] || want=2or3 ;;
			esac
			[ "$by" = "$want" ] || fail "$c: $p served by n$by, want n$want"
		done
	done
}

# --- measurement ------------------------------------------------------------------

cp "$REPO/bench/paths.lua" "$TMP/wrk.lua"	# the paths in turn, one result line

# stats FILE: "median p99" of seconds in FILE, in ms (nearest-rank p99).
stats() {
	sort -g "$1" | awk '{v[NR] = $1 * 1000}
		END {
			if (NR == 0) { print "nan nan"; exit }
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			r = int(0.99 * NR); if (r < 0.99 * NR) r++; if (r < 1) r = 1
			printf "%.3f %.3f\n", m, v[r] }'
}

# ttfb C MODE SIZE URL PATH...: TTFB_N sequential requests (one curl
# process, -w per transfer), the paths in turn; sets T50 T99 TBAD, TC50,
# the median of their connects (close: the handshake with the front
# alone, a share no front's work is in), and TT50, of their whole
# transfers (a response held back after its first byte shows there).
ttfb() {
	local c=$1 mode=$2 s=$3 url=$4 i
	shift 4
	local paths=("$@") hdr=()
	[ "$mode" = close ] && hdr=(-H 'Connection: close')
	: > "$TMP/ttfb.cfg"
	for ((i = 0; i < TTFB_N; i++)); do
		printf 'url = "%s/%s"\noutput = "/dev/null"\n' "$url" "${paths[$((i % ${#paths[@]}))]}"
	done >> "$TMP/ttfb.cfg"
	in_client curl -sS --max-time 120 "${hdr[@]}" -K "$TMP/ttfb.cfg" \
	    -w '%{http_code} %{size_download} %{time_starttransfer} %{time_connect} %{time_total}\n' \
	    > "$TMP/ttfb.w" 2>>"$TMP/curl.err"
	TBAD=$(awk -v size="${BYTES[$s]}" -v n="$TTFB_N" -v t="$TMP/ttfb.t" \
	    -v tc="$TMP/ttfb.c" -v tt="$TMP/ttfb.tt" '
		BEGIN { printf "" > t; printf "" > tc; printf "" > tt }
		$1 == 200 && $2 == size && NF == 5 {
			print $3 > t; print $4 > tc; print $5 > tt; good++; next }
		{ bad++ }
		END { print n - good }' "$TMP/ttfb.w")
	read -r T50 T99 < <(stats "$TMP/ttfb.t")
	read -r TC50 _ < <(stats "$TMP/ttfb.c")
	read -r TT50 _ < <(stats "$TMP/ttfb.tt")
}

# wrk_run MODE URL DURATION CONNS PATH...: sets W_REQ W_DUR_US W_ERR W_L50 W_L99
# (latency in ms), the CPU deltas D0 (CPU 0) DM (all) in ticks, DP
# (front processes) in ns, and FGN, foreign work during the run in % of
# one CPU.
# With DRAIN=1 (quicktwitch) the CPU is read once n1's flow table is back
# to its size before the run (W_DRAIN: the seconds that took).
wrk_run() {
	local mode=$1 url=$2 dur=$3 conns=$4 z0 m0 z1 m1 p0 p1 f0 f1 line n0 n1 t0 k0 k1
	shift 4
	local hdr=()
	[ "$mode" = close ] && hdr=(-H 'Connection: close')
	[ "$DRAIN" = 1 ] && n0=$(qt_counter 1 flows_total)
	f0=$(foreign_ticks)
	p0=$(front_proc_ns)
	k0=$(front_pkts)
	read -r z0 m0 < <(cpu_snap)
	in_client wrk -t1 -c "$conns" -d "${dur}s" --timeout 10s -s "$TMP/wrk.lua" \
	    "${hdr[@]}" "$url/" -- "$@" > "$TMP/wrk.out" 2>&1
	W_DRAIN=0
	if [ "$DRAIN" = 1 ]; then
		# A handed-off flow's end costs the front after the client has
		# gone (the back's report, the set entry, the conntrack entry
		# after conntrack-grace): the run is not over, nor its CPU read,
		# until n1's table is back where it was.  The wait's idle CPU
		# counts as well.
		t0=$(date +%s%N)
		while [ "$n0" != "?" ] && n1=$(qt_counter 1 flows_total) && [ "$n1" != "?" ] &&
		    [ "$n1" -gt "$n0" ] && [ $((($(date +%s%N) - t0) / 1000000000)) -lt "$DRAIN_MAX" ]; do
			sleep 0.1
		done
		W_DRAIN=$(awk -v d=$(($(date +%s%N) - t0)) 'BEGIN {printf "%.1f", d / 1e9}')
	fi
	read -r z1 m1 < <(cpu_snap)
	k1=$(front_pkts)
	p1=$(front_proc_ns)
	f1=$(foreign_ticks)
	D0=$((z1 - z0)) DM=$((m1 - m0)) DP=$((p1 - p0)) DK=$((k1 - k0))
	FGN=$(awk -v d=$((f1 - f0)) -v t="$dur" -v hz="$HZ" 'BEGIN {if (d < 0) d = 0; printf "%.0f", d * 100 / hz / t}')
	line=$(grep '^WRKRESULT' "$TMP/wrk.out" | tail -n 1)
	if [ -z "$line" ]; then
		echo "# wrk gave no result:"; sed 's/^/#   /' "$TMP/wrk.out" | head -n 5
		W_REQ=0 W_DUR_US=1 W_ERR=0 W_L50=nan W_L99=nan
		return
	fi
	# shellcheck disable=SC2086
	set -- $line
	W_REQ=$2 W_DUR_US=$3 W_ERR=$(($5 + $6 + $7 + $8 + $9))
	W_L50=$(awk -v v="${10}" 'BEGIN {printf "%.3f", v / 1000}')
	W_L99=$(awk -v v="${11}" 'BEGIN {printf "%.3f", v / 1000}')
}

# Packets through the front's interface, in and out: what it touches of
# the traffic (a proxy every packet of both connections; a hand-off's
# front the client's packets, each forwarded, so counted twice).
front_pkts() {
	in_node 1 cat /sys/class/net/eth0/statistics/rx_packets \
	    /sys/class/net/eth0/statistics/tx_packets | awk '{s += $1} END {print s + 0}'
}

# bg_sample: before a cell, wait (at most CELL_QUIET s) until CPU 0 is
# under 5% busy over half a second; BG0 and BGA are the last half
# second's busy share of CPU 0 and of all CPUs, in percent.
bg_sample() {
	local z0 m0 z1 m1 t0
	t0=$(date +%s)
	while true; do
		read -r z0 m0 < <(cpu_snap)
		sleep 0.5
		read -r z1 m1 < <(cpu_snap)
		[ $(((z1 - z0) * 200)) -lt $((HZ * 5)) ] && break
		[ $(($(date +%s) - t0)) -ge "$CELL_QUIET" ] && break
	done
	BG0=$(awk -v d=$((z1 - z0)) -v hz="$HZ" 'BEGIN {printf "%.0f", d * 200 / hz}')
	BGA=$(awk -v d=$((m1 - m0)) -v hz="$HZ" -v c="$NPROC" 'BEGIN {printf "%.0f", d * 200 / hz / c}')
}

# Foreign work: CPU time (clock ticks) of the processes that are not ours
# (this script's descendants, anything in our namespaces), with their
# reaped children's (cutime, cstime), and of kernel threads but
# ksoftirqd (which does our packet work): other sessions' programs,
# compilers, namespace clean-up in kworkers.  A process that exits and is
# reaped by a process that also exits between two readings is lost: the
# difference is a lower bound of what else ran.
cat > "$TMP/foreign.py" <<'PY'
import os, sys
root = int(sys.argv[1])
ours_ns = {int(x) for x in sys.argv[2:]}
procs = {}
for d in os.listdir('/proc'):
    if not d.isdigit():
        continue
    try:
        st = open('/proc/%s/stat' % d).read()
    except OSError:
        continue
    comm = st[st.index('(') + 1:st.rfind(')')]
    f = st[st.rfind(')') + 2:].split()
    procs[int(d)] = (int(f[1]), comm, sum(int(x) for x in f[11:15]))
kids = {}
for p, (pp, _, _) in procs.items():
    kids.setdefault(pp, []).append(p)
ours, todo = set(), [root]
while todo:
    p = todo.pop()
    ours.add(p)
    todo.extend(kids.get(p, []))
total = 0
for p, (_, comm, ticks) in procs.items():
    if p in ours or comm.startswith('ksoftirqd/'):
        continue
    try:
        if os.stat('/proc/%d/ns/net' % p).st_ino in ours_ns:
            continue
    except OSError:
        continue
    total += ticks
print(total)
PY
PY3=python3
[ -x /usr/bin/python3 ] && PY3="/usr/bin/python3 -S"
foreign_ticks() {
	# shellcheck disable=SC2086
	$PY3 "$TMP/foreign.py" $$ "${NS_INODES[@]}" 2>/dev/null || echo 0
}

# us_per TICKS_OR_NS UNIT REQUESTS
us_per() { awk -v d="$1" -v u="$2" -v n="$3" -v hz="$HZ" 'BEGIN {
	if (n <= 0) { print "nan"; exit }
	us = (u == "ticks") ? d * 1e6 / hz / n : d / 1e3 / n
	printf "%.1f\n", us }'; }

# qt_counter NODE NAME: a counter from qtctl stats --json.
qt_counter() {
	in_node "$1" "$QTCTL" -s "$TMP/n$1.sock" stats --json 2>/dev/null |
	    python3 -c 'import json,sys
d = json.load(sys.stdin); k = sys.argv[1]
print(d["counters"].get(k, d["flows"].get(k, d.get(k, 0))))' "$2" 2>/dev/null || echo "?"
}

# steps_snap TAG: the step timings (qtctl stats) of n1, n2 and n3 now;
# steps_mean A B: each step's mean between snapshots A and B (sums and
# counts of n1's front steps, and of n2's and n3's back steps together),
# one line.
steps_snap() {
	local n
	for n in 1 2 3; do
		in_node "$n" "$QTCTL" -s "$TMP/n$n.sock" stats --json \
		    >"$TMP/steps-$1-n$n.json" 2>/dev/null
	done
}
steps_mean() {
	python3 - "$TMP" "$1" "$2" <<'PY' 2>/dev/null || echo "(no step timings)"
import json, sys
tmp, a, b = sys.argv[1:4]
def load(tag, n):
    return json.load(open("%s/steps-%s-n%d.json" % (tmp, tag, n)))["timings"]
out = []
for nodes, steps in (((1,), ("front_wake", "steer", "freeze", "replay", "front_handoff")),
                     ((2, 3), ("capture_wake", "rebuild", "first_byte", "back_handoff"))):
    for st in steps:
        ds = dc = 0
        for n in nodes:
            x, y = load(a, n)[st], load(b, n)[st]
            ds += y["sum_ns"] - x["sum_ns"]
            dc += y["count"] - x["count"]
        out.append("%s %.0f" % (st, ds / dc / 1e3) if dc else "%s -" % st)
print(", ".join(out) + " (us)")
PY
}

declare -A R_RPS R_T50 R_T99 R_TC50 R_TT50 R_FCPU R_MCPU R_FPROC R_FPKT R_ERR R_REQ R_BG0 R_BGA R_L50 R_L99 R_TBAD R_FGN
declare -A SPLICE_CHECK AFF

# splice_check C: strace -c -f on haproxy over 1.5 s of a 1 MB keep-alive
# run: how many splice() calls, against recvfrom/sendto.
splice_check() {
	local c=$1 s pid f spl rcv snd
	s=1m
	case " $SIZES " in *" 1m "*) ;; *) s=${SIZES##* } ;; esac
	pid=$(cat "$TMP/haproxy.pid")
	in_client wrk -t1 -c 8 -d 3s -s "$TMP/wrk.lua" "http://$FRONT/" -- "${PA[$s]}" "${PB[$s]}" >/dev/null 2>&1 &
	local wpid=$!
	sleep 0.7
	f=$TMP/strace-$c.txt
	timeout -s INT 1.5 strace -c -f -q -p "$pid" -o "$f" >/dev/null 2>&1
	wait "$wpid"
	spl=$(awk '$NF == "splice" {print $4}' "$f" 2>/dev/null)
	rcv=$(awk '$NF == "recvfrom" {print $4}' "$f" 2>/dev/null)
	snd=$(awk '$NF == "sendto" {print $4}' "$f" 2>/dev/null)
	SPLICE_CHECK[$c]="$c: splice ${spl:-0} calls, recvfrom ${rcv:-0}, sendto ${snd:-0} (strace -c -f -p, 1.5 s of $s keep-alive)"
	echo "# strace check: ${SPLICE_CHECK[$c]}"
}

# begin_contender C: started, checked, its affinity and the machine's
# quiet noted (once per contender, the first time).
begin_contender() {
	local c=$1 q
	contender_start "$c"
	check_contender "$c"
	[ -n "${BEGUN[$c]:-}" ] && return
	BEGUN[$c]=1
	AFF[$c]=""
	[ "$c" = direct ] || AFF[$c]=$(front_affinity)
	case $c in haproxy | haproxy-splice) splice_check "$c" ;; esac
	if quiesce; then q="idle"; else q="NOT idle after ${QUIET_MAX}s"; fi
	QUIET_NOTES+=("$c: machine $q before measuring (${IDLE_PCT}% of all cores busy); front: ${AFF[$c]:-none}")
	echo "# $c: machine $q (${IDLE_PCT}% busy); front processes and CPUs: ${AFF[$c]:-none}"
}

# measure_cell C MODE SIZE: one cell's wrk run (again while other work
# ran, RETRY times at most; the quietest kept) and its TTFB.
measure_cell() {
	local c=$1 mode=$2 s=$3 url k att ho0 ho1 tb0 tb1 extra=""
	url=$(base_url "$c")
	k="$c|$mode|$s"
	DRAIN=0
	case $c in quicktwitch | qt-builtin) DRAIN=1 ;; esac
	for ((att = 0; att <= RETRY; att++)); do
		bg_sample
		if [ "$DRAIN" = 1 ]; then
			ho0=$(qt_counter 1 handed_off); tb0=$(qt_counter 1 taken_back)
		fi
		wrk_run "$mode" "$url" "$DURATION" "$CONNS" "${PA[$s]}" "${PB[$s]}"
		if [ "$att" = 0 ] || [ "$FGN" -lt "${R_FGN[$k]}" ]; then
			R_REQ[$k]=$W_REQ R_ERR[$k]=$W_ERR R_L50[$k]=$W_L50 R_L99[$k]=$W_L99
			R_BG0[$k]=$BG0 R_BGA[$k]=$BGA R_FGN[$k]=$FGN
			R_RPS[$k]=$(awk -v r="$W_REQ" -v d="$W_DUR_US" 'BEGIN {printf "%.0f", r * 1e6 / d}')
			R_FCPU[$k]=$(us_per "$D0" ticks "$W_REQ")
			R_MCPU[$k]=$(us_per "$DM" ticks "$W_REQ")
			R_FPROC[$k]=$(us_per "$DP" ns "$W_REQ")
			R_FPKT[$k]=$(awk -v p="$DK" -v r="$W_REQ" 'BEGIN {printf "%.1f", (r > 0 ? p / r : 0)}')
			extra=""
			if [ "$DRAIN" = 1 ]; then
				ho1=$(qt_counter 1 handed_off); tb1=$(qt_counter 1 taken_back)
				extra=" hand-offs $((ho1 - ho0)), taken back $((tb1 - tb0)), table drained in $W_DRAIN s"
			fi
		fi
		[ "$FGN" -le "$NOISY" ] && break
		[ "$att" -lt "$RETRY" ] &&
		    echo "# $c $mode $s: other work took $FGN% of a CPU during the run: again"
	done
	[ "$DRAIN" = 1 ] && [ "$mode" = close ] && steps_snap a
	ttfb "$c" "$mode" "$s" "$url" "${PA[$s]}" "${PB[$s]}"
	R_T50[$k]=$T50 R_T99[$k]=$T99 R_TBAD[$k]=$TBAD R_TC50[$k]=$TC50 R_TT50[$k]=$TT50
	echo "# [$(front_affinity)] $c $mode $s: ${R_RPS[$k]} req/s, front ${R_FCPU[$k]} us/req (procs ${R_FPROC[$k]}), machine ${R_MCPU[$k]} us/req, ttfb $T50/$T99 ms, errors ${R_ERR[$k]}+$TBAD, bg cpu0 ${R_BG0[$k]}%, foreign ${R_FGN[$k]}%$extra"
	# Where the TTFB requests' time went, by the daemons' own clocks.
	if [ "$DRAIN" = 1 ] && [ "$mode" = close ]; then
		steps_snap b
		echo "# $c $mode $s: the TTFB requests' step means: $(steps_mean a b)"
	fi
}

start=$(date +%s)
echo "# cells: contenders [$CONTENDERS], modes [$MODES], sizes [$SIZES]; wrk $DURATION s x $CONNS connections, TTFB over $TTFB_N requests; order $ORDER"
QUIET_NOTES=()
declare -A BEGUN
if [ "$ORDER" = contender ]; then
	for c in $CONTENDERS; do
		begin_contender "$c"
		for mode in $MODES; do
			for s in $SIZES; do
				measure_cell "$c" "$mode" "$s"
			done
		done
		contender_stop "$c"
	done
else
	# The machine's speed drifts over minutes (a shared host): each
	# cell's contenders one after another, so that a ratio compares
	# runs made within a minute of each other.
	for mode in $MODES; do
		for s in $SIZES; do
			for c in $CONTENDERS; do
				begin_contender "$c"
				measure_cell "$c" "$mode" "$s"
				contender_stop "$c"
			done
		done
	done
fi
elapsed=$(($(date +%s) - start))

# --- flow-table scaling ----------------------------------------------------------

declare -A F_LIVE F_HELD F_LOST F_IDLE F_IDLEP F_RPS F_FCPU F_FPROC F_MCPU F_T50 F_T99 F_ERR F_BG0 F_FGN F_WERR F_TB F_RSS F_LB1 F_LBMAX
# loop_snap FILE: n1's stats now.  loop_row A B [C D]: of n1's batches
# of callbacks between A and B, and between C and D (qtctl stats:
# loop_busy), how many took over 1 ms, and the bound (ms) of the bucket
# that holds the longest; "- -" for a daemon without them.
loop_snap() { in_node 1 "$QTCTL" -s "$TMP/n1.sock" stats --json >"$1" 2>/dev/null; }
loop_row() {
	python3 - "$1" "$2" <<'PY' 2>/dev/null || echo "- -"
import json, sys
h = [json.load(open(f))["loop_busy"] for f in sys.argv[1:]]
n, le = 0, {}
for a, b in zip(h[::2], h[1::2]):
    n += b["count"] - a["count"]
    for k in b["le_ns"]:
        le[int(k)] = le.get(int(k), 0) + b["le_ns"][k] - a["le_ns"][k]
le = sorted(le.items())
over1 = n - dict(le)[1000000]
top = next((k for k, c in le if c == n), None)
print(over1, "%g" % (top / 1e6) if top else ">%g" % (le[-1][0] / 1e6))
PY
}
FLOW_LEVELS=$(for f in $FLOWS; do echo "$f"; done | sort -n | uniq | tr '\n' ' ')
FLOW_KEYS=$FLOW_LEVELS
FLOW_NOTE=""
fs=${SIZES%% *}
if [ -n "$FLOW_LEVELS" ]; then
	fstart=$(date +%s)
	# A back holds one descriptor per flow with the built-in responder,
	# six with the relay to nginx (socket, upstream, two pipes): with at
	# most $FDMAX per process, the held flows are served by the built-in
	# responder of three backs, n2, n3 and n4.
	qt_configs builtin
	qt_start
	check_contender quicktwitch
	DRAIN=1
	PC=$(name_owned_by 4 "b$fs-c") || fail "no path owned by n4"
	make_file "$PC" "${BYTES[$fs]}"
	HOLD_MAX=$((FDMAX - 1000))
	srcs=()
	for i in $(seq 101 120); do
		in_client ip addr add "198.18.0.$i/24" dev eth0 || fail "cannot add client address"
		srcs+=("198.18.0.$i")
	done
	held=0
	hk=0
	HPIDS=()
	# flow_measure KEY TB0: one row of the table, with the flows now held.
	flow_measure() {
		local K=$1 tb0=$2 lost j att
		sleep 2
		loop_snap "$TMP/loop-$K-a.json"
		F_HELD[$K]=$held
		F_LIVE[$K]=$(qt_counter 1 handed-off)
		# Idle cost of the table: CPU 0 and the daemon over DURATION s.
		p0=$(front_proc_ns)
		read -r z0 _ < <(cpu_snap)
		sleep "$DURATION"
		loop_snap "$TMP/loop-$K-b.json"
		read -r z1 _ < <(cpu_snap)
		p1=$(front_proc_ns)
		F_IDLE[$K]=$(awk -v d=$((z1 - z0)) -v hz="$HZ" -v t="$DURATION" 'BEGIN {printf "%.1f", d * 100 / hz / t}')
		F_IDLEP[$K]=$(awk -v d=$((p1 - p0)) -v t="$DURATION" 'BEGIN {printf "%.1f", d / 1e7 / t}')
		# The front daemon's resident memory with the flows held, MB.
		F_RSS[$K]=$(awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/${DPID[1]}/status" 2>/dev/null)
		# FLOW_REPS runs; the one with the median front CPU is kept
		# (whole rows, so the figures stay of one run): the machine's
		# noise moves single runs by more than the effect measured.
		: >"$TMP/flowreps"
		for ((att = 0; att < FLOW_REPS; att++)); do
			bg_sample
			wrk_run close "http://$FRONT" "$DURATION" "$CONNS" "${PA[$fs]}" "${PB[$fs]}"
			echo "$(us_per "$D0" ticks "$W_REQ")" \
			    "$(awk -v r="$W_REQ" -v d="$W_DUR_US" 'BEGIN {printf "%.0f", r * 1e6 / d}')" \
			    "$(us_per "$DM" ticks "$W_REQ") $(us_per "$DP" ns "$W_REQ")" \
			    "$BG0 $FGN $W_ERR" >>"$TMP/flowreps"
		done
		read -r F_FCPU[$K] F_RPS[$K] F_MCPU[$K] F_FPROC[$K] F_BG0[$K] F_FGN[$K] F_WERR[$K] < \
		    <(sort -g "$TMP/flowreps" | sed -n "$(((FLOW_REPS + 1) / 2))p")
		echo "# flows $K: front us/hand-off of the $FLOW_REPS runs: $(cut -d' ' -f1 "$TMP/flowreps" | tr '\n' ' ')"
		if [ "$FLOW_PERF" = 1 ]; then
			# Where CPU 0's time goes at this count, from a run of its
			# own: perf's sampling would weigh on the runs above.
			perf record -q -a -C 0 -g -o "$TMP/perf-$K.data" >/dev/null 2>&1 &
			local pp=$!
			sleep 0.5
			wrk_run close "http://$FRONT" "$DURATION" "$CONNS" "${PA[$fs]}" "${PB[$fs]}"
			kill -INT "$pp"; wait "$pp"
			perf report -q -i "$TMP/perf-$K.data" --no-children --sort sym \
			    --percent-limit 0.7 -g none 2>/dev/null | grep -v '^$' | head -n 30 |
			    sed "s/^/# perf $K: /"
			echo "# perf $K: $W_REQ hand-offs in the recorded run"
		fi
		steps_snap a
		loop_snap "$TMP/loop-$K-c.json"
		ttfb quicktwitch close "$fs" "http://$FRONT" "${PA[$fs]}" "${PB[$fs]}"
		steps_snap b
		# Which step a TTFB that grows with the flows grows in.
		echo "# flows $K: the TTFB requests' step means: $(steps_mean a b)"
		F_T50[$K]=$T50 F_T99[$K]=$T99 F_ERR[$K]=$((F_WERR[$K] + TBAD))
		loop_snap "$TMP/loop-$K-d.json"
		read -r F_LB1[$K] F_LBMAX[$K] < <(loop_row "$TMP/loop-$K-"{a,b,c,d}.json)
		F_TB[$K]=$(($(qt_counter 1 taken_back) - tb0))
		lost=0
		for ((j = 1; j <= hk; j++)); do
			[ -s "$TMP/hold$j.status" ] && lost=$((lost + $(awk '{print $4 + 0}' "$TMP/hold$j.status")))
		done
		F_LOST[$K]=$lost
		echo "# flows $K: live ${F_LIVE[$K]}, idle cpu0 ${F_IDLE[$K]}%, ${F_RPS[$K]} hand-offs/s, front ${F_FCPU[$K]} us/hand-off, ttfb $T50/$T99 ms"
	}
	for L in $FLOW_LEVELS; do
		tb0=$(qt_counter 1 taken_back)
		need=$((L - held))
		while [ "$need" -gt 0 ]; do
			n=$need
			[ "$n" -gt "$HOLD_MAX" ] && n=$HOLD_MAX
			need=$((need - n))
			hk=$((hk + 1))
			rm -f "$TMP/hold$hk.status"
			# Not through in_client: $! must be the holder itself (ip
			# netns exec execs it), which closes its flows on SIGTERM;
			# a function's subshell dies and leaves it holding them.
			ip netns exec "$CL" python3 "$REPO/bench/holdconns.py" "$FRONT" 80 "$n" \
			    "$TMP/hold$hk.status" "/${PA[$fs]},/${PB[$fs]},/$PC" "${srcs[@]}" \
			    > "$TMP/hold$hk.out" 2>&1 &
			HPIDS+=($!)
			t0=$(date +%s)
			while [ ! -s "$TMP/hold$hk.status" ] && kill -0 "${HPIDS[-1]}" 2>/dev/null &&
			    [ $(($(date +%s) - t0)) -lt $((n / 100 + 120)) ]; do
				sleep 1
			done
			if [ -s "$TMP/hold$hk.status" ]; then
				read -r ok bad secs _ < "$TMP/hold$hk.status"
				held=$((held + ok))
				echo "# holder $hk: $ok connections handed off and held, $bad failed, in $secs s"
			else
				echo "# holder $hk gave no status:"; tail -n 5 "$TMP/hold$hk.out" | sed 's/^/#   /'
				FLOW_NOTE="$FLOW_NOTE holder $hk failed;"
			fi
		done
		flow_measure "$L" "$tb0"
	done
	for p in "${HPIDS[@]}"; do kill "$p" 2>/dev/null; done
	if [ "$FLOW_AFTER" = 1 ] && [ "$held" -gt 0 ]; then
		# The empty table once more, after the flows are gone: the rows
		# are measured one after another, minutes apart, and this
		# machine's speed drifts by more than the 10% looked for; a
		# difference the flows make is one this row does not share.
		tb0=$(qt_counter 1 taken_back)
		for p in "${HPIDS[@]}"; do wait "$p" 2>/dev/null; done
		t0=$(date +%s)
		while live=$(qt_counter 1 handed-off) && [ "$live" != 0 ] &&
		    [ $(($(date +%s) - t0)) -lt $((held / 500 + 60)) ]; do
			sleep 1
		done
		echo "# flows released: n1 has $live live hand-offs after $(($(date +%s) - t0)) s"
		held=0 hk=0
		flow_measure after "$tb0"
		FLOW_KEYS="$FLOW_LEVELS after"
	fi
	felapsed=$(($(date +%s) - fstart))
fi

# --- report ----------------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {
	if (a == "nan" || b == "nan" || b + 0 == 0 || a == "") print "-"; else printf "%.2f\n", a / b }'; }

echo
echo "== quicktwitch against HAProxy, nginx and direct service"
echo "machine: $NPROC cores, $(uname -sr), $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo)"
echo "versions: $(haproxy -v | awk 'NR == 1 {print "haproxy " $3}'), $(nginx -v 2>&1 | sed 's/.*\///; s/^/nginx /'), wrk $(dpkg-query -W -f='${Version}' wrk 2>/dev/null), curl $(curl --version | awk 'NR == 1 {print $2}'), quicktwitch tree $(git -C "$REPO" describe --always --dirty 2>/dev/null), binaries from $QT_BUILD"
echo "quicktwitch backs relay to their nginx over $QT_UPSTREAM ($(upstream_of 2)); qt-builtin backs serve the same files themselves"
echo "pinning: front (n1) on CPU 0, everything else on CPU 1; rps_cpus$RPS"
echo "wrk -t1 -c $CONNS -d ${DURATION}s per cell; TTFB: curl time_starttransfer over $TTFB_N sequential requests per cell"
echo "paths (A owned by n2, B by n3, requested in turn):$(for s in $SIZES; do printf ' %s=%s,%s' "$s" "${PA[$s]}" "${PB[$s]}"; done)"
for n in "${QUIET_NOTES[@]}"; do echo "$n"; done
for c in haproxy haproxy-splice; do
	[ -n "${SPLICE_CHECK[$c]:-}" ] && echo "strace check: ${SPLICE_CHECK[$c]}"
done
echo "measured in ${elapsed}s"
echo

cols="mode,size,bytes,contender,requests,errors,req_per_s,ttfb_median_ms,ttfb_p99_ms,front_cpu_us_per_req,machine_cpu_us_per_req,front_proc_us_per_req,x_req_per_s,x_ttfb_median,x_ttfb_p99,x_front_cpu,x_machine_cpu,wrk_latency_p50_ms,wrk_latency_p99_ms,ttfb_requests,ttfb_bad,bg_cpu0_pct,bg_all_pct,foreign_pct,duration_s,conns,nproc,kernel,ttfb_connect_median_ms,front_pkts_per_req,total_median_ms"
echo "$cols" > "$OUT"

fmt='%-9s %-5s %-14s %8s %5s %7s %5s %7s %5s %6s %7s %8s %6s %8s %5s %7s %7s %4s %4s %4s\n'
printf "$fmt" mode size contender "req/s" x "ttfb50" x "ttfb99" x conn50 tot50 front x machine x fproc fpkt err bg0 fgn
printf "$fmt" "" "" "" "" "" ms "" ms "" ms ms "us/req" "" "us/req" "" "us/req" "/req" "" "%" "%"
for mode in $MODES; do
	for s in $SIZES; do
		q="quicktwitch|$mode|$s"
		for c in $CONTENDERS; do
			k="$c|$mode|$s"
			xr=$(ratio "${R_RPS[$k]}" "${R_RPS[$q]}")
			x5=$(ratio "${R_T50[$k]}" "${R_T50[$q]}")
			x9=$(ratio "${R_T99[$k]}" "${R_T99[$q]}")
			xf=$(ratio "${R_FCPU[$k]}" "${R_FCPU[$q]}")
			xm=$(ratio "${R_MCPU[$k]}" "${R_MCPU[$q]}")
			err=$((R_ERR[$k] + R_TBAD[$k]))
			printf "$fmt" "$mode" "$s" "$c" "${R_RPS[$k]}" "$xr" "${R_T50[$k]}" "$x5" \
			    "${R_T99[$k]}" "$x9" "${R_TC50[$k]}" "${R_TT50[$k]}" "${R_FCPU[$k]}" "$xf" \
			    "${R_MCPU[$k]}" "$xm" "${R_FPROC[$k]}" "${R_FPKT[$k]}" "$err" "${R_BG0[$k]}" \
			    "${R_FGN[$k]}"
			echo "$mode,$s,${BYTES[$s]},$c,${R_REQ[$k]},${R_ERR[$k]},${R_RPS[$k]},${R_T50[$k]},${R_T99[$k]},${R_FCPU[$k]},${R_MCPU[$k]},${R_FPROC[$k]},$xr,$x5,$x9,$xf,$xm,${R_L50[$k]},${R_L99[$k]},$TTFB_N,${R_TBAD[$k]},${R_BG0[$k]},${R_BGA[$k]},${R_FGN[$k]},$DURATION,$CONNS,$NPROC,$(uname -r),${R_TC50[$k]},${R_FPKT[$k]},${R_TT50[$k]}" >> "$OUT"
		done
	done
	echo
done

echo "x        this contender's figure / quicktwitch's, same mode and size."
echo "req/s    wrk -t1 -c $CONNS, completed requests over the run."
echo "ttfb     curl's time_starttransfer (keep-alive: on one reused connection,"
echo "         so the first includes the connect; close: connect + request +"
echo "         first byte, a hand-off for quicktwitch), median and p99, ms."
echo "conn50   the median of those requests' connects (curl's time_connect),"
echo "         ms: close: the handshake alone, kernel work on the front's core"
echo "         for a front; ttfb50 - conn50 is the request's own share."
echo "tot50    the median of those requests' whole transfers (time_total), ms:"
echo "         a response held back after its first byte shows here."
echo "front    CPU 0 (the front's core: its processes and, by RPS, its packet"
echo "         work), user+nice+system+irq+softirq from /proc/stat over the"
echo "         wrk run, per request, us. Direct has no front: its figure is"
echo "         whatever else ran on CPU 0, the noise floor."
echo "machine  all cores, the same counters, per request, us: the front, the"
echo "         backs, wrk and anything else running on the machine."
echo "fproc    the front's processes only (schedstat of every task in n1),"
echo "         per request, us: not touched by other work on CPU 0, but"
echo "         without the packet work softirqs do outside them."
echo "fpkt     packets through the front's interface per request, in and out"
echo "         (over the wrk run): a proxy's both connections; a hand-off's"
echo "         front the client's packets, each counted in and out again."
echo "err      wrk errors (connect, read, write, status, timeout) plus curl"
echo "         transfers with a wrong status or size."
echo "bg0      CPU 0 busy over the half second before the cell (after waiting"
echo "         up to $CELL_QUIET s for it to be under 5%), %."
echo "fgn      CPU time of other programs on the machine (not this script's,"
echo "         with kernel threads but ksoftirqd) during the run, % of one"
echo "         CPU, a lower bound: it lands in front (when on CPU 0) and"
echo "         machine. Trust rows where it is near 0; fproc is immune to it."
echo "         A run with fgn over $NOISY% was made again (up to $RETRY times), the"
echo "         quietest kept."

if [ -n "$FLOW_LEVELS" ]; then
	echo
	echo "== flow-table scaling: hand-offs (Connection: close, $fs) with live handed-off flows held open"
	echo "held from 20 client addresses (198.18.0.101-120), one keep-alive request each, then idle; measured in ${felapsed}s.${FLOW_NOTE:+ NOTE:$FLOW_NOTE}"
	echo "flows,held,live_on_front,lost,idle_cpu0_pct,idle_front_proc_pct,front_rss_mb,handoffs_per_s,front_cpu_us_per_handoff,front_proc_us_per_handoff,machine_cpu_us_per_handoff,ttfb_median_ms,ttfb_p99_ms,errors,taken_back,bg_cpu0_pct,foreign_pct,x_front_cpu,x_ttfb_median,loop_batches_over_1ms,loop_longest_le_ms" > "$OUT_FLOWS"
	ffmt='%7s %7s %7s %5s %6s %6s %6s %8s %8s %5s %8s %8s %7s %5s %7s %4s %4s %4s %4s %5s %5s\n'
	printf "$ffmt" flows held live lost idle0 idlep rss "hoff/s" front x fproc machine ttfb50 x ttfb99 err tb bg0 fgn lb1ms lbmax
	printf "$ffmt" "" "" "" "" "%" "%" MB "" "us" "" us us ms "" ms "" "" "%" "%" "" ms
	# The x columns' baseline: the first row, or with an "after" row the
	# mean of the two, so that a drift of the machine's speed across
	# the part (linear in time) weighs on no row more than on the
	# baseline's.  Both rows are printed: their difference is the drift.
	first=${FLOW_LEVELS%% *}
	base_f=${F_FCPU[$first]} base_t=${F_T50[$first]} base_what="the first row"
	if [ -n "${F_FCPU[after]:-}" ]; then
		base_f=$(awk -v a="$base_f" -v b="${F_FCPU[after]}" 'BEGIN {printf "%.1f", (a + b) / 2}')
		base_t=$(awk -v a="$base_t" -v b="${F_T50[after]}" 'BEGIN {printf "%.3f", (a + b) / 2}')
		base_what="the mean of the first row and the after row ($base_f us, $base_t ms)"
	fi
	for L in $FLOW_KEYS; do
		xf=$(ratio "${F_FCPU[$L]}" "$base_f")
		xt=$(ratio "${F_T50[$L]}" "$base_t")
		printf "$ffmt" "$L" "${F_HELD[$L]}" "${F_LIVE[$L]}" "${F_LOST[$L]}" "${F_IDLE[$L]}" "${F_IDLEP[$L]}" \
		    "${F_RSS[$L]:--}" "${F_RPS[$L]}" "${F_FCPU[$L]}" "$xf" "${F_FPROC[$L]}" "${F_MCPU[$L]}" "${F_T50[$L]}" "$xt" \
		    "${F_T99[$L]}" "${F_ERR[$L]}" "${F_TB[$L]}" "${F_BG0[$L]}" "${F_FGN[$L]}" "${F_LB1[$L]}" "${F_LBMAX[$L]}"
		echo "$L,${F_HELD[$L]},${F_LIVE[$L]},${F_LOST[$L]},${F_IDLE[$L]},${F_IDLEP[$L]},${F_RSS[$L]},${F_RPS[$L]},${F_FCPU[$L]},${F_FPROC[$L]},${F_MCPU[$L]},${F_T50[$L]},${F_T99[$L]},${F_ERR[$L]},${F_TB[$L]},${F_BG0[$L]},${F_FGN[$L]},$xf,$xt,${F_LB1[$L]},${F_LBMAX[$L]}" >> "$OUT_FLOWS"
	done
	echo
	echo "held     connections the holder opened, got a response on, and holds idle."
	echo "live     handed-off flows in n1's table (qtctl stats) before measuring."
	echo "lost     held connections the server closed since they were opened."
	echo "idle0    CPU 0 busy over $DURATION idle s with the flows held, %;"
	echo "idlep    the front daemon's own share of it (schedstat), %."
	echo "rss      the front daemon's resident memory with the flows held, MB."
	echo "hoff/s   wrk -c $CONNS, Connection: close, $DURATION s: every request a hand-off."
	echo "front    CPU 0 per hand-off, us; x: against $base_what."
	echo "after    the empty table again, once the flows were released (FLOW_AFTER)."
	echo "fproc    the front daemon's own CPU per hand-off, us."
	echo "ttfb     curl time_starttransfer of $TTFB_N sequential Connection: close"
	echo "         requests through n1 (connect + hand-off + first byte), ms; x: as for front."
	echo "lb1ms    n1's batches of callbacks (qtctl stats: loop_busy) over 1 ms while"
	echo "         idle and during the TTFB requests (under wrk's load a batch holds"
	echo "         many events); lbmax: the bound of the histogram bucket that holds"
	echo "         the longest of them, ms."
	echo "tb       hand-offs n1 took back (served itself) while this row's flows were"
	echo "         opened and measured (qtctl stats taken_back)."
	echo "bg0, fgn as above. Backs: the daemons' built-in responder on n2, n3, n4."
fi

# --- CSV done; the plot ------------------------------------------------------------

if command -v gnuplot >/dev/null; then
	for mode in $MODES; do
		for c in $CONTENDERS; do
			[ "$c" = direct ] && continue
			awk -F, -v m="$mode" -v c="$c" '$1 == m && $4 == c && $10 + 0 > 0 {print $3, $10}' "$OUT" > "$TMP/plot-$mode-$c.dat"
		done
	done
	{
		echo "set terminal pngcairo size 1200,520 font ',10'"
		echo "set output '$PLOT'"
		echo "set logscale xy"
		echo "set grid"
		echo "set key top left"
		echo "set xtics ('1 KB' 1024, '64 KB' 65536, '1 MB' 1048576, '10 MB' 10485760)"
		echo "set xrange [700:15000000]"
		echo "set xlabel 'body size'"
		echo "set ylabel 'front core CPU per request (us)'"
		echo "set multiplot layout 1,$(echo "$MODES" | wc -w) title 'Front CPU per request ($NPROC cores, front pinned to CPU 0 with RPS; $(date -u +%Y-%m-%d))'"
		for mode in $MODES; do
			if [ "$mode" = close ]; then echo "set title 'Connection: close'"; else echo "set title 'keep-alive'"; fi
			line="plot"
			sep=" "
			for c in $CONTENDERS; do
				[ "$c" = direct ] && continue
				line="$line$sep'$TMP/plot-$mode-$c.dat' using 1:2 with linespoints lw 2 pt 7 title '$c'"
				sep=", "
			done
			echo "$line"
		done
		echo "unset multiplot"
	} > "$TMP/plot.gp"
	if gnuplot "$TMP/plot.gp" 2>"$TMP/gnuplot.err"; then
		echo
		echo "CSV: $OUT${FLOW_LEVELS:+, flows: $OUT_FLOWS}; plot: $PLOT"
	else
		echo
		echo "CSV: $OUT${FLOW_LEVELS:+, flows: $OUT_FLOWS}; gnuplot failed: $(head -n 3 "$TMP/gnuplot.err")"
	fi
else
	echo
	echo "CSV: $OUT${FLOW_LEVELS:+, flows: $OUT_FLOWS}; no plot (gnuplot not installed: apt-get install gnuplot-nox)"
fi

# Warnings of the daemons, for the record: how many, and the commonest
# (numbers blanked).
for n in "${NODES[@]}"; do
	re=': (warning|error|crit|alert|emerg): '
	warn=$(grep -cE "$re" "$TMP/n$n.log" 2>/dev/null)
	echo "n$n daemon: ${warn:-0} warning/error log lines"
	[ "${warn:-0}" = 0 ] && continue
	grep -E "$re" "$TMP/n$n.log" | sed 's/^[^:]*: //; s/[0-9][0-9.:]*/N/g' |
	    sort | uniq -c | sort -rn | head -n 3 | sed 's/^ */#   /'
done
if [ -n "${LOGS:-}" ] && mkdir -p "$LOGS"; then
	cp "$TMP"/n*.log "$LOGS"/ 2>/dev/null && echo "daemon logs copied to $LOGS"
fi
errs=$(grep -c . "$TMP/curl.err" 2>/dev/null)
[ "${errs:-0}" = 0 ] || { echo "curl errors ($errs lines), first ones:"; head -n 5 "$TMP/curl.err"; }
exit 0
