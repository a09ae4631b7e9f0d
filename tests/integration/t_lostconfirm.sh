#!/bin/bash
# A hand-off whose confirmation is lost: the back built the connection and
# started answering, but the front never heard so and took the connection
# back after its tries.  Only one of them may keep it.  The front tells
# the back (ABORT) when it takes a connection back, and the back, which
# has heard nothing from the client, confirms again until a front answers:
# its socket must vanish without a packet, and never reset the client's
# connection, which is the front's now.
#
# n1 is the front, n2 the back of a 256 KB object (more than the back's
# first flight, so its socket is still sending when it is told to drop).
# In n1's namespace: the client's steered packets (FORWARD) and n2's band
# messages are dropped, so the front gets no CONFIRM and the back hears
# nothing from the client.
#   (a) n1's ABORT at take-back gets through: n2 drops its socket at once.
#   (b) n1's band messages to n2 are dropped too, until 1.2 s after the
#       fetch began (0.6 s after the take-back): n2's repeated CONFIRM,
#       once the band works again, is answered ABORT by n1, whose flow
#       record is gone by then.
# Each time: the client gets the whole object intact, no reset on a live
# connection; n2 logs the abort, keeps no socket on the hand-off port, and
# no node keeps steering state.  In (b) the client may get a reset after
# its connection is over: n2's socket, until told, retransmits what the
# client already has, the client re-acknowledges it from TIME-WAIT to n1,
# whose socket is gone (rstclass.py: "after both FINs", harmless).  The back's close-wait (1 s) and idle timeout (2 s) are
# short, and the test waits past both: before the fix, n2's socket ended
# in a reset to the client.
source "$(dirname "$0")/lib.sh"
require_root
for t in curl tcpdump iptables; do
	command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit $ksft_skip; }
done
BAND=7400
make_cluster 2
f=$(name_owned_by 2 lc) || fail "no name hashes to n2"
make_file "$f" 262144
for n in 1 2; do
	write_config "$n" "dead-after 10000" "close-wait 1000" \
	    "idle-timeout 2000"
done
start_cluster
flags_watch_start

fetch 1 "$f" "$TMP/out" || fail "curl failed"
[ "$(served_by "$TMP/out.h")" = 2 ] || fail "not handed off to n2 at first"

ipt1() { in_node 1 iptables -w "$@"; }
block() {
	ipt1 -I FORWARD -s "$CLIENT_ADDR" -j DROP
	ipt1 -I INPUT -s "$(addr 2)" -p udp --dport "$BAND" -j DROP
}
unblock() {
	ipt1 -D FORWARD -s "$CLIENT_ADDR" -j DROP
	ipt1 -D INPUT -s "$(addr 2)" -p udp --dport "$BAND" -j DROP
}

# lost_confirm WHAT: one fetch with the confirmation lost.
lost_confirm() {
	local what=$1 port
	fetch 1 "$f" "$TMP/out" || fail "$what: curl failed"
	cmp -s "$TMP/out" "$TMP/www/$f" || fail "$what: body differs"
	grep -q "hand-offs to n2 fail (no confirmation)" "$TMP/n1.log" ||
		fail "$what: n1 did not take the connection back"
	# The fetch's flow on n1: served there, not handed to n2.
	port=$(grep " front $CLIENT_ADDR:[0-9]* closed: .*first GET /$f " \
	    "$TMP/n1.log" | grep -v "handed to" | tail -n 1 |
	    sed -n "s/.* $CLIENT_ADDR:\([0-9]*\) .*/\1/p")
	[ -n "$port" ] || fail "$what: no take-back logged"
	LAST_PORT=$port
	busywait 8000 eval 'grep -q "back $CLIENT_ADDR:$port closed: aborted by the front" "$TMP/n2.log"' ||
		fail "$what: n2 was not told to drop its socket for port $port: $(grep " $CLIENT_ADDR:$port " "$TMP/n2.log" | tail -n 2)"
	pass "$what: the client got the whole object, n2 dropped its copy on n1's word"
	[ "$(grep -c "back $CLIENT_ADDR:$port closed" "$TMP/n2.log")" = 1 ] ||
		fail "$what: n2 closed the flow more than once"
}

block
lost_confirm "(a) ABORT at take-back"
unblock

# (b): the band both ways down until 1.2 s after the fetch starts (the
# take-back comes at 0.6 s, its ABORT lost); n2 confirms again at 1.4 s.
block
ipt1 -I OUTPUT -d "$(addr 2)" -p udp --dport "$BAND" -j DROP
( sleep 1.2
  ipt1 -D OUTPUT -d "$(addr 2)" -p udp --dport "$BAND" -j DROP
  ipt1 -D INPUT -s "$(addr 2)" -p udp --dport "$BAND" -j DROP ) &
UNB=$!
t0=$(now_ms)
lost_confirm "(b) ABORT lost, CONFIRM repeated"
ms=$(( $(now_ms) - t0 ))
wait "$UNB"
ipt1 -D FORWARD -s "$CLIENT_ADDR" -j DROP
log "(b) n2 dropped its copy within $ms ms of the fetch's start"

# Past the back's close-wait and idle timeout: whatever n2's kernel would
# still send for those connections has been sent.
sleep 3
[ -z "$(in_node 2 ss -tanH "( sport = :8001 )" | grep -v TIME-WAIT)" ] ||
	fail "n2 keeps a socket on the hand-off port: $(in_node 2 ss -tanH "( sport = :8001 )")"
pass "n2 keeps no socket on the hand-off port"
rst_classify 3
grep -E '^(LIVE|AFTER)' "$TMP/rst.class" | cut -c 1-400 | sed 's/^/#   /'
[ "$RST_LIVE" = 0 ] || fail "the client received $RST_LIVE resets on live connections"
pass "no reset on a live connection ($RST_AFTER after both FINs)"
no_steering_left 1 2
pass "nothing left behind"
fetch 1 "$f" "$TMP/out" || fail "curl failed after"
[ "$(served_by "$TMP/out.h")" = 2 ] || fail "no hand-off to n2 after"
pass "hand-offs to n2 go on"
