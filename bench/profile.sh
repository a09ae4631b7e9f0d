#!/bin/bash
# Profile: where a hand-off's cost goes, on the front or on the back.
#
# A three-node cluster in network namespaces (lib.sh); wrk sends
# "Connection: close" requests for 1 KB objects owned by n2 and n3 through
# n1, so every request is one hand-off by n1 (NODE=2: objects owned by n2
# only, and n2's daemon is the one profiled).  Four passes of the same
# load, DURATION s each:
#
#   plain   the daemon's CPU per hand-off (schedstat), its node's eth0
#           packets per hand-off (in and out), its event-loop wake-ups
#           (voluntary context switches) per hand-off; then the
#           daemons' step timings (qtctl stats) of the front and backs
#   strace  strace -c -f on the daemon: system calls per hand-off, by
#           name (strace slows the daemon: only the counts are read)
#   alloc   uprobes on libc's malloc, calloc, realloc and free, counted
#           for the daemon by perf stat: heap calls per hand-off (the
#           probes are removed on exit)
#   perf    perf record -g on the daemon: the top symbols, self and with
#           children (the kernel's share included)
#
# Figures only: it never asserts, and exits 0 unless the setup fails.
#
# Environment:
#   DURATION=4   seconds per pass
#   CONNS=8      wrk connections
#   TOP=25       symbols shown per perf table
#   PERF=1       0 skips the perf pass; STRACE=1 and ALLOC=1 likewise
#   NODE=1       the daemon profiled: 1 (the front) or 2 (the back)
#   UPSTREAM=0   1: each back relays to its own nginx over a unix socket,
#                as in bench/compare.sh, instead of its built-in responder;
#                tcp: the same over 127.0.0.1:8080
#   PIN=0        1: the comparison's layout (bench/compare.sh): n1's daemon
#                on CPU 0, everything else on CPU 1, receive packet
#                steering of n1's interface to CPU 0 and of the others to
#                CPU 1; the plain pass then also gives CPU 0's whole time
#                per hand-off, and with NODE=1 the perf pass records all
#                of CPU 0 (softirq packet work included), not the daemon
#   LOG_FLOWS=   the daemons' log-flows (empty: the default, end)
#   QT_BUILD=<repo>/build

set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
QT_BUILD=${QT_BUILD:-$REPO/build}
DURATION=${DURATION:-4}
CONNS=${CONNS:-8}
TOP=${TOP:-25}
PERF=${PERF:-1}
STRACE=${STRACE:-1}
ALLOC=${ALLOC:-1}
NODE=${NODE:-1}
UPSTREAM=${UPSTREAM:-0}
PIN=${PIN:-0}

die() { echo "bench/profile.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: it builds network namespaces"
case $NODE in 1 | 2) ;; *) die "NODE must be 1 or 2" ;; esac
case $UPSTREAM in 0 | 1 | tcp) ;; *) die "UPSTREAM must be 0, 1 or tcp" ;; esac
case $PIN in 0 | 1) ;; *) die "PIN must be 0 or 1" ;; esac
for t in wrk ip awk python3; do
	command -v "$t" >/dev/null || die "$t not found"
done
[ "$STRACE" = 0 ] || command -v strace >/dev/null || die "strace not found"
[ "$PERF" = 0 ] && [ "$ALLOC" = 0 ] || command -v perf >/dev/null || die "perf not found"
if [ ! -x "$QT_BUILD/quicktwitchd" ] || [ ! -x "$QT_BUILD/qtpick" ]; then
	cmake -S "$REPO" -B "$QT_BUILD" >/dev/null &&
	    cmake --build "$QT_BUILD" -j"$(nproc)" >/dev/null || die "build failed"
fi

export QT_BUILD
# shellcheck source=tests/integration/lib.sh
source "$REPO/tests/integration/lib.sh"
source "$REPO/bench/lib.sh"
# The daemons log as shipped (log-flows end), not as the tests do.
LOG_FLOWS=${LOG_FLOWS-}
require_root
# Everything started from here runs on CPU 1, but what is moved to CPU 0.
[ "$PIN" = 1 ] && { taskset -p -c 1 $$ >/dev/null || fail "taskset failed"; }

make_cluster 3
pa=$(name_owned_by 2 prof) || fail "no path owned by n2"
pb=$(name_owned_by 3 prof) || fail "no path owned by n3"
make_file "$pa" 1024
make_file "$pb" 1024
[ "$NODE" = 2 ] && pb=$pa	# all for n2
if [ "$UPSTREAM" != 0 ]; then
	command -v nginx >/dev/null || die "nginx not found"
	for i in 1 2 3; do
		up=127.0.0.1:8080
		[ "$UPSTREAM" = 1 ] && up=unix:$TMP/up$i.sock
		nginx_start "$i" "$up"
		write_config "$i"
		sed -i "s|^service http port 80 handoff-base 8000\$|& upstream $up|" "$TMP/n$i.conf"
	done
fi
start_cluster
D=${DPID[$NODE]}
if [ "$PIN" = 1 ]; then
	taskset -a -p -c 0 "${DPID[1]}" >/dev/null || fail "cannot pin n1's daemon"
	for n in "$(ns 1):1" "$(ns 2):2" "$(ns 3):2" "$CL:2"; do
		in_ns "${n%:*}" sh -c "echo ${n#*:} > /sys/class/net/eth0/queues/rx-0/rps_cpus" ||
		    fail "cannot set rps_cpus in ${n%:*}"
	done
fi

cp "$REPO/bench/paths.lua" "$TMP/wrk.lua"

handoffs() {
	in_node 1 "$QTCTL" -s "$TMP/n1.sock" stats --json |
	    python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"]["handoffs"])'
}
taken_back() {
	in_node 1 "$QTCTL" -s "$TMP/n1.sock" stats --json |
	    python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"]["taken_back"])'
}
load() {
	in_client wrk -t1 -c "$CONNS" -d "${DURATION}s" -s "$TMP/wrk.lua" \
	    -H 'Connection: close' \
	    "http://$(addr 1)/" -- "$pa" "$pb" >"$TMP/wrk.out" 2>&1
	sleep 1		# the teardowns of the last flows
}
ns_cpu() { proc_ns "$D"; }
# busy clock ticks of CPU 0 (user+nice+system+irq+softirq)
cpu0_ticks() { awk '$1 == "cpu0" {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
ctxsw() { awk '/^voluntary_ctxt_switches/ {print $2}' /proc/"$D"/status; }
pkts() { in_node "$NODE" cat /sys/class/net/eth0/statistics/rx_packets /sys/class/net/eth0/statistics/tx_packets | tr '\n' ' '; }

# Warm-up: ARP, page cache, the daemons' first allocations.
in_client wrk -t1 -c 2 -d 1s -s "$TMP/wrk.lua" -H 'Connection: close' "http://$(addr 1)/" -- "$pa" "$pb" >/dev/null 2>&1
sleep 1

echo "== quicktwitch hand-off profile: $NPROC cores, $(uname -r), tree $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)"
echo "load: wrk -c $CONNS, Connection: close, 1 KB objects owned by $([ "$NODE" = 2 ] && echo n2 || echo "n2 and n3"), through n1, ${DURATION} s per pass; profiled: n$NODE's daemon ($([ "$NODE" = 1 ] && echo front || echo back)), backs serving with $(case $UPSTREAM in 0) echo "the built-in responder" ;; 1) echo "their nginx (relay, unix socket)" ;; *) echo "their nginx (relay, 127.0.0.1:8080)" ;; esac)$([ "$PIN" = 1 ] && echo "; pinned: n1's daemon and n1's packet work on CPU 0, the rest on CPU 1")"

# --- plain ------------------------------------------------------------------
h0=$(handoffs) c0=$(ns_cpu) v0=$(ctxsw) tb0=$(taken_back) z0=$(cpu0_ticks)
read -r rx0 tx0 <<<"$(pkts)"
load
h1=$(handoffs) c1=$(ns_cpu) v1=$(ctxsw) tb1=$(taken_back) z1=$(cpu0_ticks)
read -r rx1 tx1 <<<"$(pkts)"
n=$((h1 - h0))
[ "$n" -gt 0 ] || fail "no hand-off in the plain pass: $(tail -n 3 "$TMP/wrk.out")"
# The load's last second is the teardowns' wait (load): CPU 0's ticks
# over it are idle ones, its busy share is the pass's.
awk -v n="$n" -v c=$((c1 - c0)) -v v=$((v1 - v0)) -v rx=$((rx1 - rx0)) \
    -v tx=$((tx1 - tx0)) -v tb=$((tb1 - tb0)) -v d="$DURATION" \
    -v z=$((z1 - z0)) -v hz="$HZ" -v pin="$PIN" 'BEGIN {
	printf "\n-- plain pass: %d hand-offs (%.0f/s), %d taken back\n", n, n / d, tb
	printf "daemon CPU per hand-off      %8.1f us (schedstat, the daemon'"'"'s threads)\n", c / 1e3 / n
	if (pin)
		printf "CPU 0 per hand-off           %8.1f us (/proc/stat: the daemon and n1'"'"'s packet work)\n", z * 1e6 / hz / n
	printf "event-loop sleeps per hand-off %6.2f (voluntary context switches)\n", v / n
	printf "n1 eth0 packets per hand-off %8.2f in, %.2f out\n", rx / n, tx / n }'
echo "step timings so far (qtctl stats: the plain pass and the warm-up):"
step_timings 1 front_wake steer freeze replay front_handoff confirm
for b in 2 3; do
	[ "$NODE" = 2 ] && [ "$b" = 3 ] && continue
	step_timings "$b" capture_wake rebuild first_byte back_handoff
done

# traced CMD...: the load with CMD (a tracer of the daemon) running
# through it, interrupted after; prints the hand-offs made meanwhile.
traced() {
	local h0 tp
	h0=$(handoffs)
	"$@" >/dev/null 2>&1 &
	tp=$!
	sleep 0.5
	load
	kill -INT "$tp" 2>/dev/null
	wait "$tp" 2>/dev/null
	echo $(($(handoffs) - h0))
}

# --- strace -----------------------------------------------------------------
if [ "$STRACE" != 0 ]; then
	n=$(traced strace -c -f -q -p "$D" -o "$TMP/strace.txt")
	echo
	echo "-- strace pass: $n hand-offs; system calls per hand-off (strace -c -f)"
	awk -v n="$n" '$1 ~ /^[0-9.]+$/ && NF >= 5 {
		name = $NF; calls = $4
		if (name == "total") { total = calls; next }
		errs = (NF == 6) ? $5 : 0
		printf "%-20s %7.2f%s\n", name, calls / n,
		    errs ? sprintf("  (%.2f failed)", errs / n) : ""
	} END { printf "%-20s %7.2f\n", "total", total / n }' "$TMP/strace.txt" |
	    sort -k2 -g -r
fi

# --- alloc ------------------------------------------------------------------
if [ "$ALLOC" != 0 ]; then
	libc=$(ldd "$QT_BUILD/quicktwitchd" | awk '$1 ~ /^libc\.so/ {print $3}')
	# A group of our own, so that no one else's probes are touched,
	# removed when the script exits, however (lib.sh's cleanup after).
	PGRP=qtprof$$
	trap 'perf probe -q -d "$PGRP:*" 2>/dev/null; cleanup' EXIT
	ok=1
	for fn in malloc calloc realloc free; do
		perf probe -q -x "$libc" -a "$PGRP:$fn=$fn" 2>/dev/null || ok=0
	done
	echo
	if [ "$ok" = 1 ] && [ -n "$libc" ]; then
		n=$(traced perf stat -x, -o "$TMP/alloc.txt" \
		    -e "$PGRP:malloc,$PGRP:calloc,$PGRP:realloc,$PGRP:free" -p "$D")
		echo "-- alloc pass: $n hand-offs; heap calls per hand-off (uprobes on $libc)"
		awk -F, -v n="$n" '$3 ~ /:/ {
			split($3, e, ":"); printf "%-20s %7.2f\n", e[2], $1 / n
		}' "$TMP/alloc.txt"
	else
		echo "-- alloc pass: skipped, perf probe cannot probe $libc here"
	fi
fi

# --- perf -------------------------------------------------------------------
if [ "$PERF" != 0 ]; then
	if [ "$PIN" = 1 ] && [ "$NODE" = 1 ]; then
		what="all of CPU 0's samples"
		n=$(traced perf record -q -g -a -C 0 -o "$TMP/perf.data")
	else
		what="the daemon's samples"
		n=$(traced perf record -q -g -p "$D" -o "$TMP/perf.data")
	fi
	echo
	echo "-- perf pass: $n hand-offs; $what by symbol, self (top $TOP)"
	perf report -i "$TMP/perf.data" --no-children --sort symbol \
	    --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' |
	    head -n "$TOP"
	echo
	echo "-- the same with children (what each call costs, kernel work included; top $TOP)"
	perf report -i "$TMP/perf.data" --children --sort symbol \
	    --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' |
	    head -n "$TOP"
fi
