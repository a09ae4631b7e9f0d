#!/bin/bash
# Spare upstream connections (upstream-spare): n2 relays to its own
# server on 127.0.0.1:8080; n1 hands every request off to it.
#   (a) n2 opens its spares at start, and sequential requests through n1
#       each start on one: byte-exact, each once in nginx's access log;
#   (b) nginx closes idle spares after its client_header_timeout (1 s
#       here, below our upstream-spare-age): they are found closed (by
#       the request or the once-a-second check) and dropped, and the
#       next request is served without a retry;
#   (c) a server that closes a connection as the request arrives (the
#       race (b) cannot always catch): on a spare the request goes again
#       on a fresh connection and the client gets 200, counted once as a
#       retry; without spares the client gets the 502 a proxy would give,
#       not a bare close;
#   (d) the server gone: 502, and no storm of refused spares (the
#       daemon's CPU stays low while the pool cannot fill).
# No reset at the client, nothing left.
source "$(dirname "$0")/lib.sh"
require_root
command -v nginx >/dev/null || fail "nginx is not installed (scripts/deps.sh installs it)"
make_cluster 2

write_config 1
write_config 2 "upstream-spare 4" "upstream-spare-age 60000"
sed -i 's/^service http port 80 handoff-base 8000$/& upstream 127.0.0.1:8080/' "$TMP/n2.conf"
grep -q upstream "$TMP/n2.conf" || fail "config not edited"
nginx_start 2 127.0.0.1:8080 "client_header_timeout 1s;"
f=$(name_owned_by 2 a); make_file "$f" 1024
start_cluster
rst_watch_start

# established connections to n2's server, seen from the daemon's side
up_conns() { in_node 2 ss -Htn state "$1" '( dport = :8080 )' | wc -l; }

busywait 3000 eval '[ "$(up_conns established)" = 4 ]' ||
	fail "n2 has $(up_conns established) spare connections, want 4"
pass "(a) n2 opened 4 spare connections at start"

for k in $(seq 1 20); do
	fetch 1 "$f" "$TMP/out" || fail "request $k: curl failed"
	cmp -s "$TMP/out" "$TMP/www/$f" || fail "request $k: body differs"
	grep -qi '^X-Served-By: n2' "$TMP/out.h" || fail "request $k: not from n2's nginx"
done
used=$(counter 2 upstream_spare)
[ "$used" = 20 ] || fail "(a) $used of 20 relays began on a spare"
c=$(grep -c "GET /$f " "$TMP/nginx-n2/access.log")
[ "$c" = 20 ] || fail "(a) $c lines in nginx's access log, want 20"
pass "(a) 20 sequential requests through n1, each on a spare: byte-exact, each logged once"

# (b) nginx drops the spares it has held for a second without a request.
# The last spares were made a request or more apart, so nginx closes
# them as far apart; when the once-a-second check falls in between, it
# drops the closed ones and makes new ones together, which nginx then
# closes together a second later: wait long enough for that generation.
busywait 8000 eval '[ "$(up_conns close-wait)" = 4 ]' ||
	fail "(b) nginx did not close the idle spares ($(up_conns close-wait) in CLOSE-WAIT)"
# Whether the request or the once-a-second check finds them first, none
# may be written to: that would take a retry.
fetch 1 "$f" "$TMP/out" || fail "(b) curl failed"
cmp -s "$TMP/out" "$TMP/www/$f" || fail "(b) body differs"
[ "$(counter 2 upstream_retries)" = 0 ] || fail "(b) a closed spare was written to (a retry)"
[ "$(up_conns close-wait)" = 0 ] || fail "(b) $(up_conns close-wait) closed spares kept"
pass "(b) spares nginx had closed were found closed and dropped; the next request served without a retry"

# (c) A server that closes the first connection carrying a given
# X-Drop-Once token as soon as it has read the request, and answers
# every other request.
nginx_stop 2
# A worker of nginx's that is quitting still answers the spares it had
# accepted: wait for the whole of it to be gone.
busywait 5000 eval '! pgrep -f "$TMP/nginx-n2/nginx.conf" >/dev/null' ||
	fail "nginx on n2 did not stop"
cat > "$TMP/dropper.py" <<'PY'
import socket, threading
seen, lock = set(), threading.Lock()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8080)); s.listen(64)
def serve(c):
    data = b""
    while b"\r\n\r\n" not in data:
        d = c.recv(65536)
        if not d:
            c.close(); return
        data += d
    tok = None
    for line in data.split(b"\r\n"):
        if line.lower().startswith(b"x-drop-once:"):
            tok = line.split(b":", 1)[1].strip()
    if tok is not None:
        with lock:
            first = tok not in seen
            seen.add(tok)
        if first:
            c.close(); return
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
ip netns exec "$(ns 2)" python3 "$TMP/dropper.py" &
DROPPER=$!
busywait 3000 eval 'in_node 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/8080" 2>/dev/null' ||
	fail "dropping server did not start"
busywait 3000 eval '[ "$(up_conns established)" -ge 4 ]' ||
	fail "(c) no spares to the dropping server"
out=$(in_client curl -sS --max-time 10 -H 'X-Drop-Once: c1' -w ' %{http_code}' "http://$(addr 1)/$f")
[ "$out" = "ok 200" ] || fail "(c) a spare closed under the request: got \"$out\", want \"ok 200\""
[ "$(counter 2 upstream_retries)" = 1 ] || fail "(c) upstream_retries $(counter 2 upstream_retries), want 1"
pass "(c) a spare closed as the request arrived: sent again on a fresh connection, 200, one retry"

sed -i 's/^upstream-spare 4$/upstream-spare 0/' "$TMP/n2.conf"
qtctl 2 reload >/dev/null || fail "(c) reload failed"
busywait 3000 eval '[ "$(up_conns established)" = 0 ]' ||
	fail "(c) spares kept after upstream-spare 0 ($(up_conns established))"
s502=$(counter 2 upstream_502)
out=$(in_client curl -sS --max-time 10 -H 'X-Drop-Once: c2' -o /dev/null -w '%{http_code}' "http://$(addr 1)/$f" 2>&1)
[ "$out" = 502 ] || fail "(c) no spares, server closed without answering: got \"$out\", want 502"
[ "$(counter 2 upstream_502)" = $((s502 + 1)) ] || fail "(c) 502 not counted"
[ "$(counter 2 upstream_retries)" = 1 ] || fail "(c) a fresh connection was retried"
pass "(c) without spares, a server that closes without answering gives 502"

# (d) The server gone, spares on again: refused, and retried no more
# than once a second.
sed -i 's/^upstream-spare 0$/upstream-spare 4/' "$TMP/n2.conf"
qtctl 2 reload >/dev/null || fail "(d) reload failed"
kill "$DROPPER"; wait "$DROPPER" 2>/dev/null
busywait 3000 eval '! in_node 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/8080" 2>/dev/null' ||
	fail "dropping server did not stop"
code=$(in_client curl -s --max-time 10 -o /dev/null -w '%{http_code}' "http://$(addr 1)/$f")
[ "$code" = 502 ] || fail "(d) server gone: got $code, want 502"
c0=$(awk '{print $14 + $15}' /proc/"${DPID[2]}"/stat)
sleep 2
c1=$(awk '{print $14 + $15}' /proc/"${DPID[2]}"/stat)
hz=$(getconf CLK_TCK)
log "n2's daemon used $((c1 - c0)) ticks of $((2 * hz)) in 2 s with its upstream down"
[ $(((c1 - c0) * 10)) -le $((2 * hz)) ] ||
	fail "(d) n2's daemon busy $((c1 - c0)) of $((2 * hz)) ticks while its spares are refused"
pass "(d) server gone: 502, and the daemon idle while no spare can be made"

rst=$(rst_watch_count)
[ "$rst" = 0 ] || fail "$rst TCP resets seen at the client"
no_steering_left 1 2
pass "no reset at the client, no steering left"
