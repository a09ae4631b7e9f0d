#!/bin/bash
# The back's daemon is gone: the front gets no confirmation, takes the
# connection back after its tries and serves the request itself.  The
# client gets a correct response within the configured time and never a
# reset.  Then the same with the back's link down.
source "$(dirname "$0")/lib.sh"
require_root
make_cluster 3
f=$(name_owned_by 3 tb) || fail "no name hashes to n3"
make_file "$f" 1048576
start_cluster
rst_watch_start

fetch 1 "$f" "$TMP/out" || fail "curl failed"
[ "$(served_by "$TMP/out.h")" = 3 ] || fail "not handed off to n3 at first"

check_takeback() {
	local what=$1 t0 t1 ms
	t0=$(date +%s%3N)
	fetch 1 "$f" "$TMP/out" || fail "$what: curl failed"
	t1=$(date +%s%3N)
	ms=$((t1 - t0))
	cmp -s "$TMP/out" "$TMP/www/$f" || fail "$what: body differs"
	[ "$(served_by "$TMP/out.h")" = 1 ] || fail "$what: not served by the front"
	# 3 tries of 200 ms, plus the transfer: well under 2 s.
	[ "$ms" -lt 2000 ] || fail "$what: took $ms ms"
	pass "$what: front took the connection back, served it in $ms ms"
}

stop_node 3
check_takeback "back daemon stopped"
grep -q 'hand-offs to n3 fail (no confirmation): serving them here' "$TMP/n1.log" || fail "no take-back log line"

start_node 3
fetch 1 "$f" "$TMP/out" || fail "curl failed after restart"
[ "$(served_by "$TMP/out.h")" = 3 ] || fail "not handed off to n3 after restart"
pass "back restarted: hand-offs resume"

ip -n "$SW" link set n3 down
check_takeback "back's link down"
ip -n "$SW" link set n3 up

rst=$(rst_watch_count)
[ "$rst" = 0 ] || fail "$rst TCP resets seen at the client"
pass "no reset at the client"
no_steering_left 1 2
pass "nothing left behind"
