#!/bin/sh
# Builds the libFuzzer targets with clang in build-fuzz/ and runs each for
# SECONDS (default 60), then prints per target the executions reached and
# whether it crashed.  Exit status 1 if any did.
#
#	fuzz/run.sh [SECONDS] [TARGET...]	TARGET: http hdr band config ctl
#
# The committed seeds in fuzz/corpus/<target>/ are only read; what the
# fuzzer learns goes to build-fuzz/corpus/<target>/ (kept between runs),
# crashing inputs to build-fuzz/artifacts/<target>/, logs to
# build-fuzz/logs/.  A crash replays with:
#	build-fuzz/fuzz/fuzz_<target> build-fuzz/artifacts/<target>/crash-...
set -e
cd "$(dirname "$0")/.."
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-http hdr band config ctl}
case $secs in
''|*[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac

CC=clang cmake -S . -B build-fuzz -DQT_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz >/dev/null

report=""
failed=0
for t in $targets; do
	bin=build-fuzz/fuzz/fuzz_$t
	[ -x "$bin" ] || { echo "no target $t" >&2; exit 2; }
	work=build-fuzz/corpus/$t
	art=build-fuzz/artifacts/$t
	log=build-fuzz/logs/$t.log
	mkdir -p "$work" "$art" build-fuzz/logs
	set -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix="$art/"
	[ -f "fuzz/$t.dict" ] && set -- "$@" -dict="fuzz/$t.dict"
	echo "fuzz_$t: ${secs}s ..."
	rc=0
	"$bin" "$@" "$work" "fuzz/corpus/$t" </dev/null >"$log" 2>&1 ||
	    rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" |
	    tail -n 1)
	# A crash may end the run before the final stats: the last status
	# line then has the count.
	[ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" |
	    tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	if [ "$rc" = 0 ]; then
		result="ok"
	else
		failed=1
		result="CRASH ($(grep -m1 -o 'Test unit written to .*' "$log" |
		    sed 's/Test unit written to //'), see $log)"
	fi
	report="$report$(printf '%-12s %12s execs %8s/s  %s' "fuzz_$t" \
	    "${execs:-?}" "${rate:-?}" "$result")
"
done
echo
printf '%s' "$report"
exit $failed
