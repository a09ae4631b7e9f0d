#!/bin/bash
# The front's daemon is killed (SIGKILL) and restarted while 20 large
# transfers it handed off are in flight: all 20 complete byte-exact, the
# new daemon lists them (adopted from the kernel's steering sets), and
# once they end, nothing is left.
source "$(dirname "$0")/lib.sh"
require_root
make_cluster 3
for i in 1 2 3; do write_config "$i" "sweep-interval 1000"; done
objs=()
for n in 2 3; do
	for k in $(seq 1 200); do
		o="r$k"
		[ "$(owner "/$o")" = "$n" ] || continue
		objs+=("$o")
		[ "${#objs[@]}" -ge $(( n == 2 ? 10 : 20 )) ] && break
	done
done
[ "${#objs[@]}" = 20 ] || fail "found ${#objs[@]} objects"
make_file big 20971520
for o in "${objs[@]}"; do ln "$TMP/www/big" "$TMP/www/$o"; done
start_cluster
rst_watch_start

pids=()
for i in $(seq 0 19); do
	# 20 MB at 4 MB/s: about 5 s each, far longer than the restart.
	ip netns exec "$CL" curl -sS --max-time 60 --limit-rate 4M \
	    -o "$TMP/t$i.out" "http://$(addr 1)/${objs[$i]}" 2>"$TMP/t$i.err" &
	pids+=($!)
done
flows() { in_node "$1" "$QTCTL" -s "$TMP/n$1.sock" list-flows --json |
	python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(1 for f in d["flows"] if f["state"]=="'"$2"'"))'; }
busywait 10000 eval '[ "$(flows 1 handed-off)" = 20 ]' ||
	fail "20 hand-offs not established ($(flows 1 handed-off))"
pass "20 transfers handed off"

kill -KILL "${DPID[1]}"
wait "${DPID[1]}" 2>/dev/null
unset "DPID[1]"
start_node 1
n=$(flows 1 handed-off)
[ "$n" = 20 ] || fail "the new daemon lists $n handed-off flows, not 20"
pass "restarted front lists the 20 live flows"

bad=0
for i in $(seq 0 19); do
	if ! wait "${pids[$i]}" || ! cmp -s "$TMP/t$i.out" "$TMP/www/big"; then
		bad=$((bad + 1))
		cat "$TMP/t$i.err"
	fi
done
[ "$bad" = 0 ] || fail "$bad of 20 transfers failed"
pass "all 20 transfers completed byte-exact"

busywait 15000 eval '[ "$(flows 1 handed-off)" = 0 ]' ||
	fail "$(flows 1 handed-off) flows still listed after the transfers"
for n in 1 2 3; do
	busywait 10000 nothing_left "$n" || fail "node $n keeps steering state"
done
pass "every flow torn down, nothing left"
rst=$(rst_watch_count)
[ "$rst" = 0 ] || fail "$rst TCP resets seen at the client"
pass "no reset at the client"
