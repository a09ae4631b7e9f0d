#!/bin/bash
# The client's packets are steered to the back from the moment the front
# freezes, and the back's rebuilt socket is in the kernel's table from its
# connect() on, before its options and windows are set: a client FIN that
# arrived in between was processed by the half-built socket, which went to
# CLOSE_WAIT, and the rest of the rebuild failed (EPERM, the hand-off
# refused).  Clients here send their FIN over and over right after their
# request, so that copies come at every moment of the rebuild: every
# hand-off is built (none refused), every client gets its response and
# the server's FIN, and each flow then ends on the back.
source "$(dirname "$0")/lib.sh"
require_root
command -v iptables >/dev/null || { echo "SKIP: iptables not installed"; exit 4; }
N=100

make_cluster 3
f=$(name_owned_by 2 fb) || fail "no name hashes to n2"
make_file "$f" 4096
start_cluster
# The raw client has no socket: its kernel would reset the SYN-ACK.
in_client iptables -A OUTPUT -p tcp --tcp-flags RST RST -j DROP
for i in $(seq 1 "$N"); do
	out=$(in_client python3 "$QT_SRC/tests/integration/rebuildfin.py" \
	    "$CLIENT_ADDR" "$(addr 1)" $((30000 + i)) "$f" 0.03 2>&1) ||
		fail "raw client $i: $(echo "$out" | tail -n 2)"
done
busywait 5000 eval '[ "$(grep -c " back .* closed: " "$TMP/n2.log")" -ge "$N" ]' || true
built=$(grep -c " back .* materialized: " "$TMP/n2.log")
refused=$(grep -c "refused" "$TMP/n2.log")
closed=$(grep -c " back .* closed: " "$TMP/n2.log")
log "n2: $built of $N hand-offs built, $refused refused, $closed flows ended"
grep "refused" "$TMP/n2.log" | head -n 3 | sed 's/^/#   /'
[ "$refused" = 0 ] || fail "$refused hand-offs refused while the client's FIN came"
[ "$built" = "$N" ] || fail "only $built of $N hand-offs built"
pass "$N hand-offs rebuilt while their client's FIN kept coming: none refused"
[ "$closed" = "$N" ] || fail "only $closed of $N flows ended on the back"
pass "every such flow ended on the back"
