# shellcheck shell=bash
# Helpers the benchmarks share, sourced after tests/integration/lib.sh.

HZ=$(getconf CLK_TCK)
NPROC=$(getconf _NPROCESSORS_ONLN)

# machine_ticks: busy clock ticks (user+nice+system+irq+softirq) of all
# CPUs, from /proc/stat.
machine_ticks() {
	awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat
}

# proc_ns PID...: CPU time in ns of these processes, all their threads,
# from schedstat (nanosecond resolution).
proc_ns() {
	local p
	for p in "$@"; do
		cat /proc/"$p"/task/*/schedstat 2>/dev/null
	done | awk '{s += $1} END {printf "%.0f\n", s}'
}

# quiesce: wait (at most QUIET_MAX seconds, default 30) until the machine
# is nearly idle (3% of all cores) over half a second; deleting network
# namespaces (an earlier run's, or anyone's) keeps kernel workers busy for
# seconds and would be counted in a machine figure.  Sets IDLE_PCT, the
# busy share of all cores over the last half second, in percent.
quiesce() {
	local t0 a b limit
	limit=$((NPROC * HZ * 3 / 200))
	t0=$(date +%s)
	while true; do
		a=$(machine_ticks)
		sleep 0.5
		b=$(machine_ticks)
		IDLE_PCT=$(awk -v d=$((b - a)) -v c="$NPROC" -v hz="$HZ" \
		    'BEGIN {printf "%.1f", d * 100 / (c * hz / 2)}')
		[ $((b - a)) -le "$limit" ] && return 0
		[ $(($(date +%s) - t0)) -ge "${QUIET_MAX:-30}" ] && return 1
	done
}

# step_timings N STEP...: node N's step timings (qtctl stats, timing.c),
# one line a step: median, p90, p99 and mean in us, and the count.
step_timings() {
	local n=$1
	shift
	qtctl "$n" stats --json | python3 -c '
import json, sys
t = json.load(sys.stdin).get("timings", {})
for step in sys.argv[2:]:
    h = t.get(step)
    if not h or not h["count"]:
        print("  n%s %-14s (none)" % (sys.argv[1], step))
        continue
    print("  n%s %-14s median %6.1f us  p90 %6.1f us  p99 %7.1f us  "
          "mean %6.1f us  (n=%d)" % (
        sys.argv[1], step, h["p50_ns"] / 1e3, h["p90_ns"] / 1e3,
        h["p99_ns"] / 1e3, h["sum_ns"] / h["count"] / 1e3, h["count"]))
' "$n" "$@"
}
