#!/bin/bash
# Live reload while 20 large transfers run: weights change, n4 joins, n3
# leaves.  Every transfer completes byte-exact (those on n3 too: n3 stays
# steered, retired, until its flows end), the new mapping is in effect at
# once, the retired node's state goes when its last flow ends, and a
# reload with a broken config changes nothing and names the bad line.
source "$(dirname "$0")/lib.sh"
require_root
make_cluster 4
# the old cluster: n1, n2, n3 (n4 exists but is not a member)
old_conf() {
	local n=$1 i
	write_config "$n" "sweep-interval 1000" "heartbeat-interval 100" "dead-after 500"
	sed -i '/^node n4 /d' "$TMP/n$n.conf"
}
new_conf() {
	local n=$1
	write_config "$n" "sweep-interval 1000" "heartbeat-interval 100" "dead-after 500"
	sed -i -e '/^node n3 /d' -e 's/^\(node n2 .*\) weight 100$/\1 weight 300/' "$TMP/n$n.conf"
}
for i in 1 2 3; do old_conf "$i"; done
NODES=(1 2 3)
objs=()
for k in $(seq 1 300); do
	o=$(owner "/r$k")
	[ "$o" = 1 ] && continue
	objs+=("r$k")
	[ "${#objs[@]}" = 20 ] && break
done
make_file big 20971520
for o in "${objs[@]}"; do ln "$TMP/www/big" "$TMP/www/$o"; done
for k in $(seq 1 40); do make_file "m$k" 3000; done
start_node 1; start_node 2; start_node 3

pids=()
for i in $(seq 0 19); do
	ip netns exec "$CL" curl -sS --max-time 90 --limit-rate 3M \
	    -o "$TMP/t$i.out" "http://$(addr 1)/${objs[$i]}" 2>"$TMP/t$i.err" &
	pids+=($!)
done
busywait 10000 eval '[ "$(qtctl 1 list-flows --state handed-off --json | grep -o handed-off | wc -l)" = 20 ]' ||
	fail "20 hand-offs not established"
on3=$(qtctl 3 list-flows --state back --json |
	python3 -c 'import json,sys; print(len(json.load(sys.stdin)["flows"]))')
log "$on3 of the 20 transfers are served by n3"
[ "$on3" -gt 0 ] || fail "no transfer on n3: the test would prove nothing"

NODES=(1 2 3 4)
for i in 1 2 4; do new_conf "$i"; done
start_node 4
qtctl 1 reload || fail "n1 reload failed"
qtctl 2 reload || fail "n2 reload failed"
pass "n1 and n2 reloaded: n3 out, n4 in, n2 weight 300"
grep -q 'node n3 removed: kept, retired' "$TMP/n1.log" || fail "n1 did not retire n3"

NODES=(1 2 4)
spec="1:100,2:300,4:100"
for k in $(seq 1 40); do
	want=$("$QT_BUILD/qtpick" "$spec" "/m$k")
	for front in 1 2; do
		fetch "$front" "m$k" "$TMP/o" || fail "m$k via n$front failed"
		cmp -s "$TMP/o" "$TMP/www/m$k" || fail "m$k via n$front: body differs"
		[ "$(served_by "$TMP/o.h")" = "$want" ] ||
		    fail "m$k via n$front: served by n$(served_by "$TMP/o.h"), new mapping says n$want"
	done
done
pass "the new mapping is in effect on both fronts (40 paths)"

bad=0
for i in $(seq 0 19); do
	if ! wait "${pids[$i]}" || ! cmp -s "$TMP/t$i.out" "$TMP/www/big"; then
		bad=$((bad + 1)); cat "$TMP/t$i.err"
	fi
done
[ "$bad" = 0 ] || fail "$bad of 20 transfers failed across the reload"
pass "all 20 transfers completed byte-exact across the reload"
busywait 15000 grep -q 'retired node n3 has no flows left' "$TMP/n1.log" ||
	fail "retired n3 never dropped"
busywait 3000 eval '[ -z "$(in_node 1 ipset list -n | grep "^qt-0-3$")" ]' ||
	fail "n3's set still on n1"
pass "retired n3 dropped with its set once its flows ended"

cp "$TMP/n1.conf" "$TMP/n1.good"
echo "weight-of-the-world 12" >> "$TMP/n1.conf"
line=$(wc -l < "$TMP/n1.conf")
out=$(qtctl 1 reload 2>&1); rc=$?
[ "$rc" = 1 ] || fail "broken reload: exit $rc, want 1"
echo "$out" | grep -q "n1.conf:$line: unknown keyword" || fail "broken reload does not name the line: $out"
for k in 1 2 3; do
	want=$("$QT_BUILD/qtpick" "$spec" "/m$k")
	fetch 1 "m$k" "$TMP/o" || fail "after a broken reload: m$k failed"
	[ "$(served_by "$TMP/o.h")" = "$want" ] || fail "a broken reload changed the mapping"
done
grep -q "keeping the running configuration" "$TMP/n1.log" || fail "no log of the kept config"
pass "a broken config: reload refused, names n1.conf:$line, nothing changed"
new_conf 3	# the cluster's new config, which no longer names n3
out=$(qtctl 3 reload 2>&1); rc=$?
[ "$rc" = 1 ] || fail "n3 reload with itself removed: exit $rc"
pass "n3 refuses a config without itself: $out"
