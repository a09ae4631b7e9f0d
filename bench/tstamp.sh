#!/bin/bash
# Benchmark: what the step timings' receive timestamps cost.
#
# The daemons' listeners ask for SO_TIMESTAMPNS (qtctl stats' step
# timings start at a request's arrival in the kernel).  That makes the
# kernel stamp every packet it receives, in every namespace, and the front
# reads its request with recvmsg.  bench/tstamp.c times 1-byte TCP round
# trips over the loopback of a namespace of its own, client and server on
# CPU 1, in three variants: plain; stamped (an idle socket turns stamping
# on); recvmsg (the reader asks for stamps and reads them as the front
# does).  ROUNDS rounds, the variants' order rotating each round, and
# prints each variant's median, and the median of the paired differences
# with how many rounds were slower.  A round trip here is two packets
# received and two reads; scale by a hand-off's received packets (about a
# dozen, all nodes, before its first byte) and its one recvmsg.
#
# Environment: ROUNDS=21, TRIPS=50000 (round trips per run).
# Figures only; exits 0 unless the setup fails.
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-21}
TRIPS=${TRIPS:-50000}
source "$REPO/tests/integration/lib.sh"
require_root
command -v cc >/dev/null || fail "cc not installed"
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -o "$TMP/tstamp" \
    "$REPO/bench/tstamp.c" || fail "bench/tstamp.c did not build"
NS=$NS_PREFIX-ts
ip netns add "$NS" || fail "no namespace"
in_ns "$NS" ip link set lo up || fail "no loopback in $NS"

V=(plain stamped recvmsg)
for ((r = 0; r < ROUNDS; r++)); do
	for ((k = 0; k < 3; k++)); do
		v=${V[(r + k) % 3]}
		us=$(in_ns "$NS" taskset -c 1 "$TMP/tstamp" "$v" "$TRIPS") ||
		    fail "tstamp $v failed"
		echo "$r $v $us"
	done
done >"$TMP/runs"

med() { sort -n | awk '{a[NR] = $1} END {printf "%.3f", a[int((NR + 1) / 2)]}'; }
col() { awk -v v="$1" '$2 == v {print $1, $3}' "$TMP/runs" | sort -n |
    awk '{print $2}'; }
printf '%d rounds of %d round trips, us per round trip (CPU 1, loopback)\n' \
    "$ROUNDS" "$TRIPS"
for v in "${V[@]}"; do
	printf '  %-8s median %s\n' "$v" "$(col "$v" | med)"
done
diff_of() {
	paste <(col "$1") <(col "$2") | awk '{print $2 - $1}' >"$TMP/d"
	printf '  %-8s - %-8s median %+.3f, slower in %d of %d rounds\n' \
	    "$2" "$1" "$(med <"$TMP/d")" \
	    "$(awk '$1 > 0' "$TMP/d" | wc -l)" "$ROUNDS"
}
diff_of plain stamped
diff_of stamped recvmsg
diff_of plain recvmsg
