#!/bin/bash
# Direct server return: while a 100 MB body is handed off from n1 to its
# owner, n1's interface carries less than 5% of the body's size each way
# (the client's ACKs pass through it, the body does not), and every
# response packet the client sees comes from n1's address.
source "$(dirname "$0")/lib.sh"
require_root
make_cluster 3
size=104857600
f=$(name_owned_by 3 big) || fail "no name hashes to n3"
make_file "$f" "$size"
start_cluster
rst_watch_start

ip netns exec "$CL" tcpdump -i eth0 --immediate-mode -nn -U -s 96 -w "$TMP/c.pcap" 'tcp src port 80' \
    >/dev/null 2>&1 &
cap=$!
sleep 0.5
rx0=$(in_node 1 cat /sys/class/net/eth0/statistics/rx_bytes)
tx0=$(in_node 1 cat /sys/class/net/eth0/statistics/tx_bytes)
fetch 1 "$f" "$TMP/out" || fail "curl failed"
rx1=$(in_node 1 cat /sys/class/net/eth0/statistics/rx_bytes)
tx1=$(in_node 1 cat /sys/class/net/eth0/statistics/tx_bytes)
sleep 0.3
kill -INT $cap; wait $cap 2>/dev/null

cmp -s "$TMP/out" "$TMP/www/$f" || fail "body differs"
[ "$(served_by "$TMP/out.h")" = 3 ] || fail "not served by n3"
rx=$((rx1 - rx0)); tx=$((tx1 - tx0))
log "front n1: received $rx B, sent $tx B for a $size B body"
[ $((rx * 20)) -lt "$size" ] || fail "front received $rx B: not below 5% of the body"
[ $((tx * 20)) -lt "$size" ] || fail "front sent $tx B: not below 5% of the body"
pass "front carried $((rx * 100 / size)).$(( (rx * 1000 / size) % 10 ))% in, $((tx * 100 / size)).$(( (tx * 1000 / size) % 10 ))% out"

total=$(tcpdump -nn -r "$TMP/c.pcap" 2>/dev/null | wc -l)
front=$(tcpdump -nn -r "$TMP/c.pcap" "src host $(addr 1)" 2>/dev/null | wc -l)
log "client saw $total response packets, $front from $(addr 1)"
[ "$total" -gt 1000 ] || fail "too few response packets captured ($total)"
[ "$total" = "$front" ] || fail "$((total - front)) response packets from another address"
pass "every response packet came from the front's address"
rst=$(rst_watch_count)
[ "$rst" = 0 ] || fail "$rst TCP resets seen at the client"
pass "no reset at the client"
