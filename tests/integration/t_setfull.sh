#!/bin/bash
# A full steering set on the front (set-maxelem entries already in it).
# The front makes the flow's conntrack entry and its set entry in one
# netlink datagram; when the set refuses the entry, the conntrack entry
# made with it must not stay, and the client must not notice.
#   (a) n1's set for n2 filled to its maxelem (1024) with other tuples:
#       a request for n2's object through n1 gets 200 and the right body
#       from n1 itself (taken back), steer_failed counts it, and no
#       conntrack entry is left on the client's tuple
#   (b) room again: the next request is handed off to n2, and once it
#       ends nothing of it is left
source "$(dirname "$0")/lib.sh"
require_root
make_cluster 2
obj=$(name_owned_by 2 full) || fail "no path owned by n2"
make_file "$obj" 4096
write_config 1 "set-maxelem 1024"
write_config 2
start_cluster
set=$(in_node 1 ipset list -n | grep '^qt-.*-2$') || fail "n1 has no set for n2"

# Other clients' tuples, 198.18.1.x: nothing sends from them.
for i in $(seq 0 1023); do
	echo "add $set 198.18.1.$((i / 256)),tcp:$((10000 + i)),$(addr 1)"
done | in_node 1 ipset restore || fail "cannot fill $set"
[ "$(in_node 1 ipset list "$set" | awk '/^Number of entries/ {print $NF}')" = 1024 ] ||
	fail "$set not full"

fetch 1 "$obj" "$TMP/out" || fail "(a) curl failed"
cmp -s "$TMP/out" "$TMP/www/$obj" || fail "(a) body differs"
[ "$(served_by "$TMP/out.h")" = 1 ] || fail "(a) served by n$(served_by "$TMP/out.h"), not by n1"
[ "$(counter 1 steer_failed)" = 1 ] || fail "(a) steer_failed $(counter 1 steer_failed), want 1"
grep -q 'steering set full' "$TMP/n1.log" || fail "(a) n1's log does not say why: $(grep -i steer "$TMP/n1.log" | tail -n 3)"
[ "$(ct_of 1)" = 0 ] || fail "(a) $(ct_of 1) conntrack entries left on n1: $(in_node 1 conntrack -L -p tcp --dport 80 2>/dev/null)"
pass "(a) set full: n1 served the request itself, the conntrack entry undone"

in_node 1 ipset flush "$set" || fail "cannot flush $set"
fetch 1 "$obj" "$TMP/out" || fail "(b) curl failed"
cmp -s "$TMP/out" "$TMP/www/$obj" || fail "(b) body differs"
[ "$(served_by "$TMP/out.h")" = 2 ] || fail "(b) served by n$(served_by "$TMP/out.h"), not handed off to n2"
no_steering_left 1
pass "(b) room again: handed off to n2, nothing left after it"
