#!/bin/bash
# shellcheck disable=SC2059  # the table's printf format is in $fmt
# Benchmark: what a hand-off costs.
#
# A three-node cluster and a client in network namespaces (lib.sh).  For
# bodies of 1 KB and 1 MB, N sequential requests (default 200), each on a
# fresh connection, for a path owned by n2:
#
#   handoff  the client asks n1: n1 is the front, hands off to n2 (the back)
#   direct   the client asks n2: n2 serves it locally
#
# Printed per size and mode: time to first byte (median, p99) and the
# ratio hand-off/direct, CPU time per request of n1 and n2 (daemon
# utime+stime from /proc/PID/stat, and the same from schedstat, which has
# nanosecond resolution) and of the whole machine (/proc/stat, all cores,
# which includes the kernel's packet work, the client's curl and anything
# else running).  The same rows go to a CSV file ($OUT).
#
# Figures only: it never asserts, and exits 0 unless the setup fails.
#
# Environment:
#   N=200        requests per size and mode
#   ROUNDS=4     each batch is split into ROUNDS chunks, hand-off and direct
#                alternating, so that drift of a noisy machine hits both
#   SETTLE=0.8   seconds to wait after each chunk before reading CPU
#                counters (lets the front's teardown and conntrack-grace
#                work of the last requests land in the chunk)
#   QUIET_MAX=30 seconds to wait at most for the machine to be idle first
#   OUT=/tmp/qt-bench-handoff.csv
#   LOG_FLOWS=   the daemons' log-flows (empty: the default, end)
#   QT_BUILD=<repo>/build

set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
QT_BUILD=${QT_BUILD:-$REPO/build}
N=${N:-200}
ROUNDS=${ROUNDS:-4}
SETTLE=${SETTLE:-0.8}
OUT=${OUT:-/tmp/qt-bench-handoff.csv}

die() { echo "bench/handoff.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: it builds network namespaces"
case $N in '' | *[!0-9]*) die "N must be a positive integer" ;; esac
case $ROUNDS in '' | *[!0-9]*) die "ROUNDS must be a positive integer" ;; esac
if [ "$N" -lt 1 ] || [ "$ROUNDS" -lt 1 ]; then die "N and ROUNDS must be at least 1"; fi
[ "$ROUNDS" -le "$N" ] || ROUNDS=$N
for t in curl ip awk sort getconf; do
	command -v "$t" >/dev/null || die "$t not found"
done

if [ ! -x "$QT_BUILD/quicktwitchd" ] || [ ! -x "$QT_BUILD/qtpick" ]; then
	echo "# building in $QT_BUILD"
	if ! cmake -S "$REPO" -B "$QT_BUILD" >/dev/null ||
	    ! cmake --build "$QT_BUILD" -j"$(nproc)" >/dev/null; then
		die "build failed"
	fi
fi

export QT_BUILD
# shellcheck source=tests/integration/lib.sh
source "$REPO/tests/integration/lib.sh"
source "$REPO/bench/lib.sh"
# The daemons log as shipped (log-flows end), not as the tests do.
LOG_FLOWS=${LOG_FLOWS-}
require_root


# --- counters ----------------------------------------------------------------

# Process CPU (utime+stime) in clock ticks; fields after the ") " that
# ends the command name, so a name with spaces cannot shift them.
proc_ticks() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
	s=${s##*) }
	# shellcheck disable=SC2086
	set -- $s
	echo $((${12} + ${13}))
}

# snapshot: "n1ticks n2ticks n1ns n2ns"
snapshot() {
	echo "$(proc_ticks "${DPID[1]}") $(proc_ticks "${DPID[2]}")" \
	    "$(proc_ns "${DPID[1]}") $(proc_ns "${DPID[2]}")"
}

# --- cluster -------------------------------------------------------------------

make_cluster 3
SIZES="1k:1024 1m:1048576"
declare -A PATHS
for s in $SIZES; do
	label=${s%%:*}
	p=$(name_owned_by 2 "bench-$label") || fail "no path owned by n2 for $label"
	PATHS[$label]=$p
	make_file "$p" "${s#*:}"
done
start_cluster
for n in 1 2; do
	[ -r "/proc/${DPID[$n]}/stat" ] || fail "daemon of n$n not running"
done

# Sample check, byte-exact and who served it, and warm-up (ARP, page cache).
for s in $SIZES; do
	label=${s%%:*}
	p=${PATHS[$label]}
	for n in 1 2; do
		for k in 1 2 3; do
			fetch "$n" "$p" "$TMP/check" 2>/dev/null ||
			    fail "$label via n$n: curl failed"
		done
		cmp -s "$TMP/check" "$TMP/www/$p" ||
		    fail "$label via n$n: body differs from the file"
		by=$(served_by "$TMP/check.h")
		[ "$by" = 2 ] || fail "$label via n$n: served by n$by, expected n2"
	done
done
sleep "$SETTLE"
if quiesce; then
	QUIET="machine idle before measuring: ${IDLE_PCT}% of all cores busy"
else
	QUIET="machine NOT idle before measuring (gave up after ${QUIET_MAX:-30}s): ${IDLE_PCT}% of all cores busy"
fi

# --- measurement -------------------------------------------------------------

# batch FRONT PATH COUNT SIZE TAG: COUNT sequential requests, one curl
# process, one fresh connection each ("Connection: close"), -w per
# transfer; appends "ttfb_seconds" of good transfers to $TMP/TAG.t and
# counts bad ones (status, size, served-by, connections) in $TMP/TAG.bad.
batch() {
	local front=$1 path=$2 count=$3 size=$4 tag=$5 i url
	url="http://$(addr "$front")/$path"
	: > "$TMP/$tag.cfg"
	for ((i = 0; i < count; i++)); do
		printf 'url = "%s"\noutput = "/dev/null"\n' "$url"
	done >> "$TMP/$tag.cfg"
	in_client curl -sS --max-time 20 -H 'Connection: close' -K "$TMP/$tag.cfg" \
	    -w '%{http_code} %{size_download} %{num_connects} %header{x-served-by} %{time_starttransfer}\n' \
	    > "$TMP/$tag.w" 2>>"$TMP/curl.err"
	awk -v size="$size" -v count="$count" -v t="$TMP/$tag.t" '
		$1 == 200 && $2 == size && $3 == 1 && $4 == "n2" && NF == 5 {
			print $5 >> t; good++; next }
		{ bad++ }
		END { missing = count - NR; if (missing < 0) missing = 0
		      print bad + missing + 0 }' "$TMP/$tag.w" >> "$TMP/$tag.bad"
}

# Per tag: accumulated counter deltas, "n1t n2t n1ns n2ns mt".
# "before" and "after" are snapshot lines with the machine ticks appended.
declare -A CPU
add_cpu() {
	local tag=$1 before=$2 after=$3
	CPU[$tag]=$(awk -v a="$after" -v b="$before" -v c="${CPU[$tag]:-0 0 0 0 0}" 'BEGIN {
		split(a, x); split(b, y); split(c, z)
		for (i = 1; i <= 5; i++) printf "%s%d", (i > 1 ? " " : ""), z[i] + x[i] - y[i]
		print "" }')
}

start=$(date +%s)
for s in $SIZES; do
	label=${s%%:*}
	bytes=${s#*:}
	p=${PATHS[$label]}
	for mode in handoff direct; do
		: > "$TMP/$label-$mode.t"
		: > "$TMP/$label-$mode.bad"
	done
	done_n=0
	for ((r = 0; r < ROUNDS; r++)); do
		# Chunk sizes add up to exactly N.
		chunk=$(((N * (r + 1)) / ROUNDS - done_n))
		done_n=$((done_n + chunk))
		for mode in handoff direct; do
			if [ "$mode" = handoff ]; then front=1; else front=2; fi
			tag=$label-$mode
			# Daemons: from before the chunk to after the settle
			# time (teardown included).  Machine: the chunk only.
			mb=$(machine_ticks)
			b=$(snapshot)
			batch "$front" "$p" "$chunk" "$bytes" "$tag"
			ma=$(machine_ticks)
			sleep "$SETTLE"
			a=$(snapshot)
			add_cpu "$tag" "$b $mb" "$a $ma"
		done
	done
done
elapsed=$(($(date +%s) - start))

# --- report --------------------------------------------------------------------

# stats FILE: "median p99" in ms (nearest-rank p99; median of an even
# count is the mean of the middle two).
stats() {
	sort -g "$1" | awk '{v[NR] = $1 * 1000}
		END {
			if (NR == 0) { print "nan nan"; exit }
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			r = int(0.99 * NR); if (r < 0.99 * NR) r++; if (r < 1) r = 1
			printf "%.3f %.3f\n", m, v[r] }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {
	if (a == "nan" || b == "nan" || b == 0) print "nan"; else printf "%.2f\n", a / b }'; }

# per_req DELTA UNIT: DELTA (ticks or ns) over N requests, in microseconds.
per_req() { awk -v d="$1" -v u="$2" -v n="$N" -v hz="$HZ" 'BEGIN {
	us = (u == "ticks") ? d * 1e6 / hz / n : d / 1e3 / n
	printf "%.1f\n", us }'; }

echo
echo "== quicktwitch hand-off benchmark"
echo "machine: $(nproc) cores, $(uname -sr), $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
echo "curl $(curl --version | awk 'NR == 1 {print $2}'), CLK_TCK=$HZ"
echo "N=$N requests per row (sequential, fresh connection each, $ROUNDS chunks," \
    "hand-off and direct alternating), paths owned by n2: ${PATHS[1k]}, ${PATHS[1m]}"
echo "$QUIET; measured in ${elapsed}s"
echo

echo "size,mode,asked,served_by,requests,bad,ttfb_median_ms,ttfb_p99_ms,ratio_median,ratio_p99,n1_cpu_us_per_req,n2_cpu_us_per_req,n1_sched_us_per_req,n2_sched_us_per_req,machine_cpu_us_per_req,clk_tck,nproc,kernel" > "$OUT"

fmt='%-5s %-8s %-6s %5s %4s %9s %9s %7s %7s %8s %8s %8s %8s %10s\n'
printf "$fmt" size mode asked n bad "ttfb-med" "ttfb-p99" "x-med" "x-p99" \
    "n1-cpu" "n2-cpu" "n1-sch" "n2-sch" "machine"
printf "$fmt" "" "" "" "" "" ms ms "" "" "us/req" "us/req" "us/req" "us/req" "us/req"
for s in $SIZES; do
	label=${s%%:*}
	read -r hmed hp99 < <(stats "$TMP/$label-handoff.t")
	read -r dmed dp99 < <(stats "$TMP/$label-direct.t")
	for mode in handoff direct; do
		tag=$label-$mode
		if [ "$mode" = handoff ]; then
			asked=n1 med=$hmed p99=$hp99
			xm=$(ratio "$hmed" "$dmed") xp=$(ratio "$hp99" "$dp99")
		else
			asked=n2 med=$dmed p99=$dp99 xm=1.00 xp=1.00
		fi
		bad=$(awk '{s += $1} END {print s + 0}' "$TMP/$tag.bad")
		read -r d1t d2t d1n d2n dmt <<< "${CPU[$tag]}"
		c1=$(per_req "$d1t" ticks) c2=$(per_req "$d2t" ticks)
		s1=$(per_req "$d1n" ns) s2=$(per_req "$d2n" ns)
		cm=$(per_req "$dmt" ticks)
		printf "$fmt" "$label" "$mode" "$asked" "$N" "$bad" "$med" "$p99" \
		    "$xm" "$xp" "$c1" "$c2" "$s1" "$s2" "$cm"
		echo "$label,$mode,$asked,n2,$N,$bad,$med,$p99,$xm,$xp,$c1,$c2,$s1,$s2,$cm,$HZ,$(nproc),$(uname -r)" >> "$OUT"
	done
done

echo
echo "ttfb      curl time_starttransfer (connect + request + first byte), ms."
echo "x-med/p99 hand-off / direct ratio of the median and of the p99."
echo "n1/n2-cpu daemon utime+stime per request (/proc/PID/stat, 1/$HZ s ticks:"
echo "          a row's resolution is $(per_req 1 ticks) us/req). On hand-off rows n1"
echo "          is the front and n2 the back; on direct rows n2 serves alone."
echo "n1/n2-sch the same CPU time from schedstat (ns resolution), all threads."
echo "machine   whole machine, all cores, user+nice+system+irq+softirq from"
echo "          /proc/stat, over the requests only, per request: kernel packet"
echo "          work, the client's curl, the daemons, and anything else running."
echo "bad       transfers with a wrong status, size, X-Served-By or a reused"
echo "          connection; left out of the ttfb figures."
echo
echo "Figures come from a shared, noisy machine with every node on it: read the"
echo "medians and the ratios, not single numbers, and compare runs on one machine."
echo "CSV: $OUT"

# Daemon counters and log warnings, for the record.
for n in 1 2; do
	line=$(in_node "$n" "$QT_BUILD/qtctl" -s "$TMP/n$n.sock" stats 2>/dev/null |
	    grep -E 'handed_off|taken_back|local|back_flows' | tr -s ' \n' ' ' | sed 's/ $//')
	warn=$(grep -cE ': (warn|warning|err|error|crit|alert|emerg): ' "$TMP/n$n.log")
	echo "n$n: ${line:-no stats} (warm-up included); $warn warning/error log lines"
done
errs=$(grep -c . "$TMP/curl.err" 2>/dev/null)
[ "${errs:-0}" = 0 ] || { echo "curl errors ($errs lines), first ones:"; head -n 5 "$TMP/curl.err"; }
exit 0
