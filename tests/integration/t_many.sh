#!/bin/bash
# Many hand-offs: 200 sequential, 50 concurrent, and two keep-alive
# requests on one handed-off connection; every body right, no reset.
source "$(dirname "$0")/lib.sh"
require_root
make_cluster 3
for k in $(seq 1 60); do make_file "o$k" $((1024 + k * 997)); done
start_cluster
rst_watch_start

# Paths n1 hands off (owned by n2 or n3).
mapfile -t remote < <(for k in $(seq 1 60); do
	o=$(owner "/o$k"); [ "$o" != 1 ] && echo "o$k"; done)
[ "${#remote[@]}" -ge 20 ] || fail "too few remote paths (${#remote[@]})"

bad=0
for i in $(seq 1 200); do
	f=${remote[$((i % ${#remote[@]}))]}
	if ! fetch 1 "$f" "$TMP/s.out" 2>>"$TMP/curl.err" ||
	    ! cmp -s "$TMP/s.out" "$TMP/www/$f"; then
		bad=$((bad + 1))
	fi
done
[ "$bad" = 0 ] || fail "$bad of 200 sequential hand-offs failed"
pass "200 sequential hand-offs"

pids=()
for i in $(seq 1 50); do
	f=${remote[$((i % ${#remote[@]}))]}
	ip netns exec "$CL" curl -sS --max-time 20 -o "$TMP/c$i.out" \
	    "http://$(addr 1)/$f" 2>>"$TMP/curl.err" &
	pids+=($!)
done
bad=0
for i in $(seq 1 50); do
	wait "${pids[$((i - 1))]}" || bad=$((bad + 1))
	f=${remote[$((i % ${#remote[@]}))]}
	cmp -s "$TMP/c$i.out" "$TMP/www/$f" || bad=$((bad + 1))
done
[ "$bad" = 0 ] || fail "$bad failures among 50 concurrent hand-offs"
pass "50 concurrent hand-offs"

a=${remote[0]}; b=${remote[1]}
n=$(in_client curl -sS --max-time 20 -o "$TMP/k1" -o "$TMP/k2" \
    -w '%{num_connects}\n' "http://$(addr 1)/$a" "http://$(addr 1)/$b" |
    awk '{s += $1} END {print s}')
cmp -s "$TMP/k1" "$TMP/www/$a" || fail "keep-alive: first body differs"
cmp -s "$TMP/k2" "$TMP/www/$b" || fail "keep-alive: second body differs"
[ "$n" = 1 ] || fail "keep-alive: $n connections opened, 1 expected"
pass "two keep-alive requests on one handed-off connection"

rst=$(rst_watch_count)
[ "$rst" = 0 ] || fail "$rst TCP resets seen at the client"
pass "no reset at the client"
no_steering_left 1 2 3
pass "nothing left behind"
