#!/bin/bash
# Forged replays: one under a wrong key, one under the right key with the
# request changed after signing.  The back rejects and counts each, opens
# no socket, and sends nothing towards the address named in the replay;
# real hand-offs keep working.
source "$(dirname "$0")/lib.sh"
require_root
make_cluster 3
make_file "$(name_owned_by 2 x)" 4096
start_cluster
stat() { in_node 2 "$QTCTL" -s "$TMP/n2.sock" stats --json |
	python3 -c "import json,sys; print(json.load(sys.stdin)['counters']['$1'])"; }

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$TMP/wrongkey"
# The victim: the client's address, which a reflector would flood.
ip netns exec "$CL" tcpdump -i eth0 --immediate-mode -nn -U -w "$TMP/victim.pcap" \
    "ip and src host $(addr 2)" >/dev/null 2>&1 &
cap=$!
sleep 0.5
in_client "$QT_BUILD/qtforge" "$TMP/wrongkey" "$CLIENT_ADDR" 40001 \
    "$(addr 2)" 8001 1 || fail "qtforge could not send"
busywait 3000 eval '[ "$(stat forged)" = 1 ]' || fail "wrong-key replay not counted (forged=$(stat forged))"
pass "replay under a wrong key rejected and counted"

in_client "$QT_BUILD/qtforge" "$TMP/key" "$CLIENT_ADDR" 40002 \
    "$(addr 2)" 8001 1 tamper || fail "qtforge could not send"
busywait 3000 eval '[ "$(stat forged)" = 2 ]' || fail "tampered replay not counted (forged=$(stat forged))"
pass "replay with a changed request rejected and counted"

sleep 0.5
socks=$(in_node 2 ss -Htan 'sport >= :8001 and sport <= :8063' | wc -l)
[ "$socks" = 0 ] || fail "$socks sockets on the back's hand-off ports"
[ "$(stat back_flows)" = 0 ] || fail "a back flow was created"
pass "no socket on the back"
kill -INT $cap; wait $cap 2>/dev/null
tcpdump -nn -r "$TMP/victim.pcap" 2>/dev/null > "$TMP/victim.txt"; cat "$TMP/victim.txt"
sent=$(wc -l < "$TMP/victim.txt")
[ "$sent" = 0 ] || fail "the back sent $sent packets to the client"
pass "nothing sent towards the named address"
grep -q 'forged replay' "$TMP/n2.log" || fail "no log line for the forgery"

# With the right key, what only the other checks stop.
n2flows() { in_node 2 ss -Htan 'sport >= :8001 and sport <= :8063' | wc -l; }
in_client "$QT_BUILD/qtforge" "$TMP/key" "$CLIENT_ADDR" 40003 "$(addr 2)" 8001 1 truncated
busywait 3000 eval '[ "$(stat forged)" = 3 ]' || fail "truncated header not counted (forged=$(stat forged))"
pass "a truncated header: rejected and counted"
in_client "$QT_BUILD/qtforge" "$TMP/key" "$CLIENT_ADDR" 40004 "$(addr 2)" 8001 1 stale
busywait 3000 eval '[ "$(stat stale)" = 1 ]' || fail "stale replay not counted (stale=$(stat stale))"
pass "a replay 60 s old: rejected as stale"
in_client "$QT_BUILD/qtforge" "$TMP/key" "$CLIENT_ADDR" 40005 "$(addr 2)" 8009 9
in_client "$QT_BUILD/qtforge" "$TMP/key" "$CLIENT_ADDR" 40006 "$(addr 2)" 8001 1 reorder
sleep 0.5
[ "$(n2flows)" = 0 ] || fail "a socket after an unknown origin or a reordered replay"
[ "$(stat back_flows)" = 0 ] || fail "a back flow after an unknown origin or a reordered replay"
pass "a replay for an origin not in the cluster, and one whose request came before its SYN: nothing built"
in_client "$QT_BUILD/qtforge" "$TMP/key" "$CLIENT_ADDR" 40007 "$(addr 2)" 8001 1 dup
busywait 3000 eval '[ "$(stat dup_replays)" -ge 1 ]' || fail "duplicate not recognised (dup_replays=$(stat dup_replays))"
[ "$(stat back_flows)" = 1 ] || fail "a duplicated replay built $(stat back_flows) connections"
pass "a replay sent twice: one connection, the duplicate recognised"

f=$(name_owned_by 2 x)
fetch 1 "$f" "$TMP/out" || fail "a real hand-off failed after the forgeries"
cmp -s "$TMP/out" "$TMP/www/$f" || fail "body differs"
[ "$(served_by "$TMP/out.h")" = 2 ] || fail "not served by n2"
pass "real hand-offs still work"
