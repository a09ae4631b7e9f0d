#!/bin/bash
# A stale conntrack entry on a flow's tuple (here: DNATed to another back,
# as a crashed daemon or an old flow could leave it) does not decide where
# a new hand-off goes.  The front creates the steered entry with an
# exclusive create; finding the stale one (EEXIST), it deletes it and
# creates its own.  Without that, the create fails and the front serves
# the request itself, or, with a plain create, the client's packets follow
# the stale binding to the wrong back.
source "$(dirname "$0")/lib.sh"
require_root
make_cluster 3
obj=$(name_owned_by 2 stale) || fail "no path owned by n2"
make_file "$obj" 65536
start_cluster
QTNF=$QT_BUILD/qtnf

for port in 40123 40124 40125; do
	# The stale entry: this client port to n1:80, DNATed to n3's hand-off
	# port for origin n1.
	in_node 1 "$QTNF" ct-create-dnat "$CLIENT_ADDR" "$port" "$(addr 1)" 80 \
	    "$(addr 3)" 8001 300 || fail "cannot make the stale entry"
	in_node 1 conntrack -L -p tcp --sport "$port" 2>/dev/null | grep -q "src=$(addr 3) dst=$CLIENT_ADDR" ||
		fail "the stale entry is not there"
	in_client curl -sS --max-time 10 --local-port "$port" -D "$TMP/out.h" \
	    -o "$TMP/out" "http://$(addr 1)/$obj" || fail "port $port: curl failed"
	cmp -s "$TMP/out" "$TMP/www/$obj" || fail "port $port: body differs"
	got=$(served_by "$TMP/out.h")
	[ "$got" = 2 ] || fail "port $port: served by n$got, not handed off to n2"
done
grep -q 'steering failed\|taken back' "$TMP/n1.log" && fail "n1 took a hand-off back"
pass "three hand-offs over stale entries bound to another back: each handed off to its own back"
no_steering_left 1 2 3
pass "nothing left"
