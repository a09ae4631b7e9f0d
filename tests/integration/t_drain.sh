#!/bin/bash
# Drain: while a 100 MB transfer runs on n2, n2 is drained (qtctl drain on
# n2 itself, announced to the others by heartbeat): the transfer
# completes, new requests for n2's paths go elsewhere, through every
# front; after undrain they come back.  A node drained in the config gets
# nothing either.
source "$(dirname "$0")/lib.sh"
require_root
make_cluster 3
for i in 1 2 3; do write_config "$i" "heartbeat-interval 100" "dead-after 500"; done
big=$(name_owned_by 2 big) || fail "no name for n2"
make_file "$big" 104857600
mapfile -t mine < <(for k in $(seq 1 60); do [ "$(owner "/d$k")" = 2 ] && echo "d$k"; done)
[ "${#mine[@]}" -ge 5 ] || fail "too few paths owned by n2"
for p in "${mine[@]}"; do make_file "$p" 1000; done
start_cluster

ip netns exec "$CL" curl -sS --max-time 60 --limit-rate 25M -o "$TMP/big.out" \
    "http://$(addr 1)/$big" &
cpid=$!
busywait 5000 eval 'qtctl 2 list-flows --state back --json | grep -q back' || fail "transfer not on n2"
qtctl 2 drain n2 || fail "qtctl drain: exit $?"
busywait 2000 grep -q 'node n2 drains' "$TMP/n1.log" || fail "n1 did not learn n2 drains"
busywait 2000 grep -q 'node n2 drains' "$TMP/n3.log" || fail "n3 did not learn n2 drains"
for front in 1 2 3; do
	for p in "${mine[@]}"; do
		fetch "$front" "$p" "$TMP/o" || fail "$p via n$front failed"
		cmp -s "$TMP/o" "$TMP/www/$p" || fail "$p via n$front: body differs"
		by=$(served_by "$TMP/o.h")
		[ "$by" != 2 ] || fail "$p via n$front served by the draining n2"
	done
done
pass "n2 draining: ${#mine[@]} of its paths through each front went elsewhere"
wait "$cpid" || fail "the transfer on the draining node failed"
cmp -s "$TMP/big.out" "$TMP/www/$big" || fail "the transfer's body differs"
pass "the 100 MB transfer on n2 completed while draining"

qtctl 2 undrain n2 || fail "qtctl undrain: exit $?"
busywait 2000 grep -q 'node n2 no longer drains' "$TMP/n1.log" || fail "n1 did not learn n2 undrained"
fetch 1 "${mine[0]}" "$TMP/o" || fail "fetch after undrain"
[ "$(served_by "$TMP/o.h")" = 2 ] || fail "n2's path not back on n2 after undrain"
pass "undrained: n2 serves its paths again"

# drain from one front's point of view only, then in the config
qtctl 1 drain n2 >/dev/null || fail "qtctl 1 drain n2"
fetch 1 "${mine[0]}" "$TMP/o"; [ "$(served_by "$TMP/o.h")" != 2 ] || fail "n1 still sends to n2"
fetch 3 "${mine[0]}" "$TMP/o"; [ "$(served_by "$TMP/o.h")" = 2 ] || fail "n3 stopped sending to n2"
qtctl 1 undrain n2 >/dev/null
pass "a front's own drain of n2 affects only that front"
qtctl 1 drain n9 >/dev/null 2>&1; rc=$?
[ "$rc" = 1 ] || fail "drain of an unknown node: exit $rc, want 1"
sed -i 's/^node n2 id 2 address \(.*\) weight 100$/node n2 id 2 address \1 weight 100 drain yes/' "$TMP/n1.conf"
grep -q 'drain yes' "$TMP/n1.conf" || fail "config not edited"
qtctl 1 reload >/dev/null || fail "reload with drain yes failed"
fetch 1 "${mine[0]}" "$TMP/o"; [ "$(served_by "$TMP/o.h")" != 2 ] || fail "config drain ignored"
pass "drain in the config: n1 sends n2 nothing"
