#!/bin/bash
# Stopping: a plain stop (SIGTERM) keeps the steering of live hand-offs,
# so a transfer in flight completes and a restarted daemon adopts it;
# "qtctl stop --cleanup" removes every rule and set the node owns; a
# restart with a peer removed from the config destroys that peer's set.
source "$(dirname "$0")/lib.sh"
require_root
make_cluster 3
for i in 1 2 3; do write_config "$i" "sweep-interval 1000"; done
f=$(name_owned_by 2 st) || fail "no name hashes to n2"
make_file "$f" 31457280
start_cluster

ip netns exec "$CL" curl -sS --max-time 60 --limit-rate 10M \
    -o "$TMP/out" "http://$(addr 1)/$f" &
cpid=$!
busywait 5000 eval 'qtctl 1 list-flows --state handed-off --json | grep -q handed-off' ||
	fail "no hand-off"
kill -TERM "${DPID[1]}"; wait "${DPID[1]}"; unset "DPID[1]"
entries=$(in_node 1 ipset list qt-0-2 | awk '/^Members:/ {m=1; next} m && NF' | wc -l)
[ "$entries" = 1 ] || fail "SIGTERM removed the live flow's set entry ($entries)"
in_node 1 iptables-legacy-save -t nat | grep -q 'QT-NAT-PRE' || fail "SIGTERM removed our rules"
pass "SIGTERM keeps the steering of the live hand-off"
start_node 1
grep -q 'adopted 1 handed-off' "$TMP/n1.log" || fail "restart did not adopt the flow"
wait "$cpid" || fail "transfer failed across the stop"
cmp -s "$TMP/out" "$TMP/www/$f" || fail "body differs"
pass "the transfer completed across stop and restart, the flow adopted"
busywait 10000 nothing_left 1 || fail "the adopted flow was not torn down"
pass "adopted flow torn down after the transfer"

out=$(qtctl 1 stop --cleanup) || fail "qtctl stop --cleanup: exit $?"
echo "# $out"
wait "${DPID[1]}"; unset "DPID[1]"
in_node 1 iptables-legacy-save | grep -q 'QT-' && fail "rules left after stop --cleanup"
[ -z "$(in_node 1 ipset list -n | grep '^qt-')" ] || fail "sets left after stop --cleanup"
pass "qtctl stop --cleanup removed every rule and set"

start_node 1
[ -n "$(in_node 1 ipset list -n | grep '^qt-0-3$')" ] || fail "no set for n3"
stop_node 1
write_config 1 "sweep-interval 1000"
sed -i '/^node n3 /d' "$TMP/n1.conf"
start_node 1
[ -z "$(in_node 1 ipset list -n | grep '^qt-0-3$')" ] || fail "n3's set survived its removal"
grep -q 'destroyed stale ipset qt-0-3' "$TMP/n1.log" || fail "no log of the stale set"
pass "restart without n3 destroyed n3's set"
