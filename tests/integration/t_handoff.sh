#!/bin/bash
# Files of 0 B, 1 KB, 1 MB and 100 MB through each node of a three-node
# cluster: bodies byte-exact, each served by the node the hash names, no
# reset at the client, nothing left behind.
source "$(dirname "$0")/lib.sh"
require_root
make_cluster 3
for s in 0:0 1k:1024 1m:1048576 100m:104857600; do
	make_file "obj-${s%%:*}" "${s#*:}"
done
start_cluster
rst_watch_start

handoffs=0
for f in obj-0 obj-1k obj-1m obj-100m; do
	want=$(owner "/$f")
	for n in 1 2 3; do
		fetch "$n" "$f" "$TMP/out" || fail "$f via n$n: curl failed"
		cmp -s "$TMP/out" "$TMP/www/$f" || fail "$f via n$n: body differs"
		got=$(served_by "$TMP/out.h")
		[ "$got" = "$want" ] || fail "$f via n$n: served by n$got, hash names n$want"
		[ "$n" != "$want" ] && handoffs=$((handoffs + 1))
	done
	pass "$f: byte-exact through n1, n2, n3, served by n$want"
done
[ "$handoffs" -ge 4 ] || fail "only $handoffs requests were hand-offs"

# Requests of every replay shape: within the SYN (after the header), and
# spread over the SYN and 1, 2 and 9 more segments (a 12 KB cookie).  A
# replay the back could not put together would be taken back and served
# by the front, which X-Served-By would show.
for pad in 0 1500 2900 12000; do
	want=$(owner /obj-1k)
	for n in 1 2 3; do
		[ "$n" = "$want" ] && continue
		cookie=$(head -c "$pad" /dev/zero | tr '\0' 'c')
		in_client curl -sS --max-time 10 -D "$TMP/out.h" -o "$TMP/out" \
		    -H "Cookie: c=$cookie" "http://$(addr "$n")/obj-1k" ||
			fail "$pad B cookie via n$n: curl failed"
		cmp -s "$TMP/out" "$TMP/www/obj-1k" ||
			fail "$pad B cookie via n$n: body differs"
		got=$(served_by "$TMP/out.h")
		[ "$got" = "$want" ] ||
			fail "$pad B cookie via n$n: served by n$got, not handed off to n$want"
		handoffs=$((handoffs + 1))
	done
done
pass "requests of up to 12 KB handed off whole (one to ten replay packets)"

# Each front logged its hand-offs, each back its materialized flows.
ho=$(cat "$TMP"/n*.log | grep -c 'handed-off: to')
mat=$(cat "$TMP"/n*.log | grep -c 'materialized: from')
[ "$ho" = "$handoffs" ] || fail "$ho hand-offs logged, $handoffs expected"
[ "$mat" = "$handoffs" ] || fail "$mat connections materialized, $handoffs expected"
pass "$handoffs hand-offs, each materialized once"

rst=$(rst_watch_count)
[ "$rst" = 0 ] || fail "$rst TCP resets seen at the client"
pass "no reset at the client"

no_steering_left 1 2 3
pass "no set entries or steered conntrack entries left"
