#!/bin/bash
# Proxy mode: n3 runs only nginx (no quicktwitch) and is declared "proxy":
# its paths are served through the fronts, correctly, counted as proxied.
# n2 is declared "handoff-then-proxy": while its daemon runs it gets
# hand-offs; once its daemon is gone and nginx answers on its address,
# the fronts proxy to it, first by taking back a failed hand-off, then
# directly once it is known down.
source "$(dirname "$0")/lib.sh"
require_root
command -v nginx >/dev/null || fail "nginx is not installed (scripts/deps.sh installs it)"
make_cluster 3
for i in 1 2; do
	write_config "$i" "heartbeat-interval 100" "dead-after 3000"
	sed -i -e 's/^\(node n3 .*\)$/\1 mode proxy/' \
	    -e 's/^\(node n2 .*\)$/\1 mode handoff-then-proxy/' "$TMP/n$i.conf"
done
grep -q 'mode proxy' "$TMP/n1.conf" || fail "config not edited"
p3=(); p2=()
for k in $(seq 1 80); do
	case "$(owner "/x$k")" in 3) p3+=("x$k") ;; 2) p2+=("x$k") ;; esac
done
for p in "${p3[@]}" "${p2[@]}"; do make_file "$p" 300000; done
nginx_start 3 "$(addr 3):80"
start_node 1; start_node 2
rst_watch_start

for front in 1 2; do
	for p in "${p3[@]:0:5}"; do
		fetch "$front" "$p" "$TMP/o" || fail "$p via n$front failed"
		cmp -s "$TMP/o" "$TMP/www/$p" || fail "$p via n$front: body differs"
		[ "$(served_by "$TMP/o.h")" = 3 ] || fail "$p not served by n3's nginx"
	done
done
c=$(in_node 1 "$QTCTL" -s "$TMP/n1.sock" stats --json | python3 -c 'import json,sys; c=json.load(sys.stdin)["counters"]; print(c["proxied"], c["proxy_bytes"] >= 5 * 300000, c["handed_off"])')
[ "$c" = "5 True 0" ] || fail "n1 counters (proxied, proxy_bytes, handed_off): $c"
pass "n3 (proxy, nginx only): 10 requests through n1 and n2, correct, counted as proxied"

fetch 1 "${p2[0]}" "$TMP/o" || fail "hand-off to n2 failed"
[ "$(served_by "$TMP/o.h")" = 2 ] || fail "not handed off to n2"
grep -q "handed-off: to n2" "$TMP/n1.log" || fail "n2 not reached by hand-off while its daemon runs"
pass "n2 (handoff-then-proxy) gets hand-offs while its daemon runs"

stop_node 2
nginx_start 2 "$(addr 2):80"
fetch 1 "${p2[1]}" "$TMP/o" || fail "take-back then proxy failed"
cmp -s "$TMP/o" "$TMP/www/${p2[1]}" || fail "body differs after take-back"
[ "$(served_by "$TMP/o.h")" = 2 ] || fail "not served by n2's nginx"
grep -q "hand-offs to n2 fail (no confirmation): proxying to it" "$TMP/n1.log" || fail "no take-back to proxy logged"
pass "n2's daemon gone: the failed hand-off was taken back and proxied to n2's nginx"
busywait 6000 grep -q 'node n2 .* is down' "$TMP/n1.log" || fail "n2 never seen down"
t0=$(date +%s%3N)
fetch 1 "${p2[2]}" "$TMP/o" || fail "direct proxy failed"
ms=$(( $(date +%s%3N) - t0 ))
[ "$(served_by "$TMP/o.h")" = 2 ] || fail "not served by n2's nginx"
[ "$ms" -lt 400 ] || fail "took $ms ms: still trying a hand-off first?"
pass "n2 known down: proxied to at once ($ms ms)"
rst=$(rst_watch_count)
[ "$rst" = 0 ] || fail "$rst TCP resets seen at the client"
pass "no reset at the client"
