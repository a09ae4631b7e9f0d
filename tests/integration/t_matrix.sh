#!/bin/bash
# The client-side matrix: TCP timestamps, SACK and window scaling each on
# and off at the client, at MTU 1500 and 9000; 50 hand-offs per case, no
# failure, no PAWS drop and no reset at the client.
source "$(dirname "$0")/lib.sh"
require_root

run_mtu() {
	local mtu=$1 ts sack ws i f bad paws rst
	make_cluster 3 "$mtu"
	for i in $(seq 1 10); do make_file "m$i" $((i * 37000)); done
	start_cluster
	mapfile -t remote < <(for i in $(seq 1 10); do
		[ "$(owner "/m$i")" != 1 ] && echo "m$i"; done)
	[ "${#remote[@]}" -ge 3 ] || fail "too few remote paths"
	rst_watch_start
	for ts in 0 1; do for sack in 0 1; do for ws in 0 1; do
		in_client sysctl -qw net.ipv4.tcp_timestamps=$ts \
		    net.ipv4.tcp_sack=$sack net.ipv4.tcp_window_scaling=$ws
		in_client nstat -n >/dev/null
		bad=0
		for i in $(seq 1 50); do
			f=${remote[$((i % ${#remote[@]}))]}
			if ! fetch 1 "$f" "$TMP/o" 2>>"$TMP/curl.err" ||
			    ! cmp -s "$TMP/o" "$TMP/www/$f"; then
				bad=$((bad + 1))
			fi
		done
		paws=$(in_client nstat -az TcpExtPAWSEstab TcpExtPAWSActive |
		    awk '/PAWS/ {s += $2} END {print s + 0}')
		[ "$bad" = 0 ] || fail "mtu $mtu ts $ts sack $sack ws $ws: $bad of 50 failed"
		[ "$paws" = 0 ] || fail "mtu $mtu ts $ts sack $sack ws $ws: $paws PAWS drops"
		pass "mtu $mtu timestamps $ts sack $sack wscale $ws: 50 hand-offs"
	done; done; done
	rst=$(rst_watch_count)
	[ "$rst" = 0 ] || fail "mtu $mtu: $rst TCP resets seen at the client"
}

run_mtu 1500
# A second cluster for the jumbo case, built from scratch.
for n in "${!DPID[@]}"; do stop_node "$n"; done
for n in $(ip netns list | awk '{print $1}' | grep "^$NS_PREFIX-"); do
	ip netns del "$n"
done
NODES=()
run_mtu 9000
