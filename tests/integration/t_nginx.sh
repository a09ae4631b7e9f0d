#!/bin/bash
# Responders: each node relays to its own nginx (upstream 127.0.0.1:8080),
# by splice.  Through a front: 1 KB, 1 MB and 100 MB byte-exact, each in
# the back's nginx access log exactly once, the front carrying under 5% of
# the bodies; ten keep-alive requests on one connection and a pipelined
# pair, in order; nginx stopped gives 502, a server that answers after
# 10 s with a 5 s upstream timeout gives 504; and relays cut short by
# their clients leave nothing to the next (the daemon keeps empty pipes
# for reuse).  (A node declared "proxy" is t_proxy's.)
source "$(dirname "$0")/lib.sh"
require_root
command -v nginx >/dev/null || fail "nginx is not installed (scripts/deps.sh installs it)"
make_cluster 3

served_by_nginx() { grep -i '^X-Served-By:' "$1" | tail -n 1 | tr -d '\r' | sed 's/.*n//'; }

for i in 1 2 3; do
	write_config "$i" "upstream-timeout 5000"
	sed -i 's/^service http port 80 handoff-base 8000$/& upstream 127.0.0.1:8080/' "$TMP/n$i.conf"
	nginx_start "$i" 127.0.0.1:8080
done
grep -q upstream "$TMP/n1.conf" || fail "config not edited"
f1k=$(name_owned_by 2 a); make_file "$f1k" 1024
f1m=$(name_owned_by 2 b); make_file "$f1m" 1048576
f100=$(name_owned_by 2 c); make_file "$f100" 104857600
start_cluster
rst_watch_start

rx0=$(in_node 1 cat /sys/class/net/eth0/statistics/rx_bytes)
tx0=$(in_node 1 cat /sys/class/net/eth0/statistics/tx_bytes)
for f in "$f1k" "$f1m" "$f100"; do
	fetch 1 "$f" "$TMP/out" || fail "$f: curl failed"
	cmp -s "$TMP/out" "$TMP/www/$f" || { cat "$TMP/out.h"; ls -la "$TMP/out"; tail -5 "$TMP"/n2.log; cat "$TMP"/nginx-n2/*.log; fail "$f: body differs"; }
	[ "$(served_by_nginx "$TMP/out.h")" = 2 ] || fail "$f: not served by n2's nginx"
done
rx=$(( $(in_node 1 cat /sys/class/net/eth0/statistics/rx_bytes) - rx0 ))
tx=$(( $(in_node 1 cat /sys/class/net/eth0/statistics/tx_bytes) - tx0 ))
for f in "$f1k" "$f1m" "$f100"; do
	c=$(grep -c "GET /$f " "$TMP/nginx-n2/access.log")
	[ "$c" = 1 ] || fail "$f: $c lines in n2's access log, want 1"
done
total=$((1024 + 1048576 + 104857600))
log "front n1 carried $rx B in, $tx B out for $total B of bodies"
[ $((rx * 20)) -lt "$total" ] && [ $((tx * 20)) -lt "$total" ] ||
	fail "the front carried 5% or more of the bodies"
pass "1 KB, 1 MB, 100 MB through n1 from n2's nginx: byte-exact, logged once each, front under 5%"

urls=()
# one "-o /dev/null" per URL: a single -o covers the first transfer only,
# and the other bodies would mix with the -w output
for k in $(seq 1 10); do urls+=(-o /dev/null "http://$(addr 1)/$f1k"); done
n=$(in_client curl -sS --max-time 20 -w '%{num_connects}\n' "${urls[@]}" |
    awk '{s += $1} END {print s}')
[ "$n" = 1 ] || fail "ten keep-alive requests used $n connections"
c=$(grep -c "GET /$f1k " "$TMP/nginx-n2/access.log")
[ "$c" = 11 ] || fail "$c requests for $f1k in the access log, want 11"
out=$(in_client python3 "$QT_SRC/tests/integration/rawhttp.py" "$(addr 1)" 80 \
    "GET /$f1k HTTP/1.1\\r\\nHost: x\\r\\n\\r\\nGET /$f1m HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n" 10 | tr '\n' '|')
case "$out" in "HTTP/1.1 200 OK|HTTP/1.1 200 OK|CLOSED|"*) ;; *) fail "pipelined pair: $out" ;; esac
len=${out##*|CLOSED|}; len=${len%|}
[ "$len" -gt $((1024 + 1048576)) ] || fail "pipelined pair: only $len bytes"
pass "ten keep-alive requests on one connection, and a pipelined pair, in order"

nginx_stop 2
# A quitting nginx still answers the spare connections n2's daemon had
# made (upstream-spare), until the daemon replaces them
# (upstream-spare-age, 4 s): gone means its last process has exited.
busywait 8000 eval '! pgrep -f "$TMP/nginx-n2/nginx.conf" >/dev/null' || fail "nginx on n2 did not stop"
code=$(in_client curl -s --max-time 10 -o /dev/null -w '%{http_code}' "http://$(addr 1)/$f1k")
[ "$code" = 502 ] || fail "nginx stopped: got $code, want 502"
pass "nginx stopped on the back: 502"

# A server that accepts and answers only after 10 s.
cat > "$TMP/slow.py" <<'PY'
import socket, time, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8080)); s.listen(16)
def serve(c):
    c.recv(65536); time.sleep(10)
    try: c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    except OSError: pass
    c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
ip netns exec "$(ns 2)" python3 "$TMP/slow.py" &
SLOW=$!
busywait 3000 eval 'in_node 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/8080" 2>/dev/null' || fail "slow server did not start"
t0=$(date +%s%3N)
code=$(in_client curl -s --max-time 20 -o /dev/null -w '%{http_code}' "http://$(addr 1)/$f1k")
ms=$(( $(date +%s%3N) - t0 ))
[ "$code" = 504 ] || fail "slow upstream: got $code, want 504"
[ "$ms" -ge 4500 ] && [ "$ms" -lt 9000 ] || fail "504 after $ms ms, want about 5000"
pass "upstream answering after 10 s, 5 s timeout: 504 after $ms ms"
s502=$(in_node 2 "$QTCTL" -s "$TMP/n2.sock" stats --json | python3 -c 'import json,sys; c=json.load(sys.stdin)["counters"]; print(c["upstream_502"], c["upstream_504"])')
[ "$s502" = "1 1" ] || fail "n2 counted 502/504 as $s502, want 1 1"
pass "502 and 504 counted on the back"

rst=$(rst_watch_count)
[ "$rst" = 0 ] || fail "$rst TCP resets seen at the client"
pass "no reset at the client"

# Relays cut short by their clients (a reset with most of 100 MB unsent):
# the pipes they leave hold bytes and must not be kept for the next relay
# (relay.c keeps only empty ones), whose client would get them first.
# After the resets check above: these clients send resets themselves.
kill "$SLOW"; wait "$SLOW" 2>/dev/null
nginx_start 2 127.0.0.1:8080
for k in 1 2 3 4 5; do
	in_client python3 -c '
import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=10)
s.sendall(("GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % sys.argv[2]).encode())
got = 0
while got < 200000:
    b = s.recv(65536)
    if not b: sys.exit("closed after %d bytes" % got)
    got += len(b)
s.close()' "$(addr 1)" "$f100" || fail "aborted download $k: no bytes"
done
for k in $(seq 1 20); do
	fetch 1 "$f1k" "$TMP/out" || fail "1 KB after aborted relays: curl failed"
	cmp -s "$TMP/out" "$TMP/www/$f1k" || fail "1 KB after aborted relays ($k): body differs"
done
fetch 1 "$f1m" "$TMP/out" || fail "1 MB after aborted relays: curl failed"
cmp -s "$TMP/out" "$TMP/www/$f1m" || fail "1 MB after aborted relays: body differs"
pass "five relays cut short by their clients, then 20 x 1 KB and 1 MB byte-exact"
