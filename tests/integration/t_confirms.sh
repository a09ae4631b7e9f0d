#!/bin/bash
# Batched confirmations: a back confirms the hand-offs one loop turn
# rebuilt in one CONFIRMS datagram per front, but only to a front whose
# heartbeat says it takes them (HB_CONFIRMS); a front that never said so,
# as one of an older version, gets one CONFIRM a hand-off.
#   (a) concurrent hand-offs n1 -> n2: every one of n2's rebuilt flows
#       confirmed in a CONFIRMS datagram, none taken back, every body intact
#   (b) n2 restarted while n1's heartbeats are dropped on their way to it
#       (u32 on the band message's type byte, 7): n2 has never heard that
#       n1 takes CONFIRMS, sends none, and the hand-offs still succeed
#   (c) the heartbeats let through again: CONFIRMS within a heartbeat
source "$(dirname "$0")/lib.sh"
require_root
command -v wrk >/dev/null || { echo "SKIP: wrk not installed"; exit $ksft_skip; }
make_cluster 2
f=$(name_owned_by 2 cf) || fail "no name hashes to n2"
make_file "$f" 2048
# One line per flow: the load below would make the default test log big.
LOG_FLOWS=end
write_config 1
write_config 2
start_cluster
cp "$QT_SRC/bench/paths.lua" "$TMP/w.lua"

# load N: N seconds of Connection: close requests through n1, 8 at once;
# prints the requests wrk completed and the non-2xx/errors.
load() {
	in_client wrk -t1 -c 8 -d "${1}s" -s "$TMP/w.lua" -H 'Connection: close' \
	    "http://$(addr 1)/" -- "$f" "$f" >"$TMP/wrk.out" 2>&1
	awk '/requests in/ {r = $1} /Non-2xx/ {e += $NF} /Socket errors/ {e += 1}
	    END {print r + 0, e + 0}' "$TMP/wrk.out"
}
quiet_flows() { [ "$(counter 2 back_flows)" -gt 0 ] && [ "$(flows_of 2)" = 0 ]; }

# n2 must have heard n1's heartbeat (every 200 ms) before the load.
sleep 0.5
read -r req err <<<"$(load 2)"
[ "$req" -gt 100 ] || fail "(a) only $req requests: $(tail -n 5 "$TMP/wrk.out")"
[ "$err" = 0 ] || fail "(a) $err errors: $(cat "$TMP/wrk.out")"
busywait 5000 quiet_flows || fail "(a) n2 still has $(flows_of 2) flows"
bf=$(counter 2 back_flows)
cb=$(counter 2 confirm_batched)
nb=$(counter 2 confirm_batches)
[ "$cb" = "$bf" ] || fail "(a) $cb of n2's $bf rebuilt flows confirmed in CONFIRMS"
[ "$nb" -ge 1 ] && [ "$nb" -le "$cb" ] || fail "(a) $nb CONFIRMS datagrams for $cb confirmations"
[ "$(counter 1 taken_back)" = 0 ] || fail "(a) n1 took $(counter 1 taken_back) back"
fetch 1 "$f" "$TMP/o" && cmp -s "$TMP/o" "$TMP/www/$f" || fail "(a) body differs"
pass "(a) $req requests, n2's $bf hand-offs confirmed in $nb CONFIRMS datagrams, none taken back"

in_node 2 iptables -w -I INPUT -s "$(addr 1)" -p udp --dport 7400 \
    -m u32 --u32 "30&0xFF=7" -j DROP || fail "cannot drop heartbeats"
stop_node 2
start_node 2
sleep 0.5
tb0=$(counter 1 taken_back)
read -r req err <<<"$(load 2)"
[ "$req" -gt 100 ] && [ "$err" = 0 ] || fail "(b) $req requests, $err errors"
busywait 5000 quiet_flows || fail "(b) n2 still has $(flows_of 2) flows"
[ "$(counter 2 confirm_batches)" = 0 ] ||
	fail "(b) n2 sent $(counter 2 confirm_batches) CONFIRMS to a front it never heard take them"
[ "$(counter 1 taken_back)" = "$tb0" ] || fail "(b) n1 took hand-offs back"
[ "$(counter 2 back_flows)" -gt 100 ] || fail "(b) only $(counter 2 back_flows) hand-offs to n2"
pass "(b) n2 never heard n1 take CONFIRMS: $(counter 2 back_flows) hand-offs confirmed one by one, none taken back"

in_node 2 iptables -w -D INPUT -s "$(addr 1)" -p udp --dport 7400 \
    -m u32 --u32 "30&0xFF=7" -j DROP
sleep 0.5
read -r req err <<<"$(load 1)"
[ "$err" = 0 ] || fail "(c) $err errors"
[ "$(counter 2 confirm_batches)" -ge 1 ] || fail "(c) no CONFIRMS once n1's heartbeats came through"
[ "$(counter 1 taken_back)" = "$tb0" ] || fail "(c) n1 took hand-offs back"
pass "(c) heartbeats through again: $(counter 2 confirm_batched) confirmations in $(counter 2 confirm_batches) CONFIRMS"
