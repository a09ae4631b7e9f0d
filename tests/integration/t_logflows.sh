#!/bin/bash
# log-flows: by default (end) each flow is one info line, at its end,
# naming where it went (front) or came from (back), like an access log;
# "all" adds every step (handed-off, materialized, resend); "none" leaves
# flows to the debug level.  A reload switches it.
source "$(dirname "$0")/lib.sh"
require_root
make_cluster 2
obj=$(name_owned_by 2 lf) || fail "no path owned by n2"
make_file "$obj" 4096
LOG_FLOWS="" write_config 1
LOG_FLOWS="" write_config 2
start_cluster

# flow_lines N: the node's info lines about flows.
flow_lines() { grep -c ': info: flow ' "$TMP/n$1.log"; }
# settle: every hand-off over, front records gone (grace included).
settle() {
	busywait 5000 eval '[ "$(flows_of 1)" = 0 ]' ||
		fail "n1 still has flows"
}

N=5
for i in $(seq 1 $N); do
	fetch 1 "$obj" "$TMP/out" || fail "fetch $i failed"
	cmp -s "$TMP/out" "$TMP/www/$obj" || fail "fetch $i: body differs"
done
settle
f=$(grep -c ': info: flow .* closed: .*, handed to n2, first GET ' "$TMP/n1.log")
b=$(grep -c ': info: flow .* closed: .*, from n1, first GET ' "$TMP/n2.log")
[ "$f" = $N ] || fail "n1: $f closing lines naming n2, $N expected"
[ "$b" = $N ] || fail "n2: $b closing lines naming n1, $N expected"
[ "$(flow_lines 1)" = $N ] || fail "n1: $(flow_lines 1) flow lines, $N expected (one per flow)"
[ "$(flow_lines 2)" = $N ] || fail "n2: $(flow_lines 2) flow lines, $N expected (one per flow)"
pass "default (end): one line per flow on each side, naming the other node"

for n in 1 2; do
	echo "log-flows all" >>"$TMP/n$n.conf"
	qtctl "$n" reload >/dev/null || fail "n$n reload"
done
before1=$(flow_lines 1) before2=$(flow_lines 2)
fetch 1 "$obj" "$TMP/out" || fail "fetch failed"
settle
grep -q ': info: flow .* handed-off: to n2 after 1 tries: GET ' "$TMP/n1.log" ||
	fail "n1: no handed-off line under log-flows all"
grep -q ': info: flow .* materialized: from n1 on port 8001' "$TMP/n2.log" ||
	fail "n2: no materialized line under log-flows all"
[ $(($(flow_lines 1) - before1)) = 2 ] || fail "n1: $(($(flow_lines 1) - before1)) lines for one flow, 2 expected"
[ $(($(flow_lines 2) - before2)) = 2 ] || fail "n2: $(($(flow_lines 2) - before2)) lines for one flow, 2 expected"
pass "all: the steps too, after a reload"

for n in 1 2; do
	sed -i 's/^log-flows all$/log-flows none/' "$TMP/n$n.conf"
	qtctl "$n" reload >/dev/null || fail "n$n reload"
done
before1=$(flow_lines 1) before2=$(flow_lines 2)
fetch 1 "$obj" "$TMP/out" || fail "fetch failed"
settle
[ "$(flow_lines 1)" = "$before1" ] || fail "n1 logged a flow under log-flows none"
[ "$(flow_lines 2)" = "$before2" ] || fail "n2 logged a flow under log-flows none"
qtctl 1 show config --json | grep -q '"log-flows": *"none"' ||
	fail "show config does not say log-flows none"
pass "none: no flow line, and show config says so"

echo "log-flows sometimes" >>"$TMP/n1.conf"
out=$("$QTD" -n -c "$TMP/n1.conf" 2>&1) && fail "a bad log-flows value was accepted"
echo "$out" | grep -q "n1.conf:[0-9]*: log-flows: \"sometimes\" is not one of end, all, none" ||
	fail "bad log-flows: unclear error: $out"
pass "a bad value: file:line error"
