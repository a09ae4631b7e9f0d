#!/bin/bash
# After start-up the daemon holds CAP_NET_ADMIN, CAP_NET_RAW and
# CAP_NET_BIND_SERVICE only (effective, permitted and bounding sets), with
# no_new_privs set, and still hands off, reloads and stops cleanly.
source "$(dirname "$0")/lib.sh"
require_root
make_cluster 2
f=$(name_owned_by 2 p); make_file "$f" 100000
start_cluster
pid=${DPID[1]}
want=0000000000003400	# bits 10, 12, 13
for field in CapEff CapPrm CapBnd; do
	v=$(awk -v f="$field:" '$1 == f {print $2}' "/proc/$pid/status")
	[ "$v" = "$want" ] || fail "$field is $v, want $want"
done
[ "$(awk '$1 == "NoNewPrivs:" {print $2}' "/proc/$pid/status")" = 1 ] || fail "no_new_privs not set"
pass "capabilities: NET_ADMIN, NET_RAW, NET_BIND_SERVICE only; no_new_privs"
fetch 1 "$f" "$TMP/o" || fail "hand-off failed"
[ "$(served_by "$TMP/o.h")" = 2 ] || fail "not handed off"
echo "service alt port 8080 handoff-base 9000" >> "$TMP/n1.conf"
kill -HUP "$pid"
busywait 3000 grep -q reloaded "$TMP/n1.log" || fail "reload failed"
in_client curl -s -o /dev/null --max-time 5 "http://$(addr 1):8080/$f" || fail "new listener not serving"
pass "still hands off, and a reload adds a listener"
