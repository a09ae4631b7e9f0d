#!/bin/bash
# The front's watch of its steered flows (NFLOG rules in its raw chain):
# with the back's close reports dropped on their way to n1 (a u32 match
# on the band message's type; confirmations and check replies still go
# through), and a sweep-interval of 30 s, nothing but the watch can tell
# n1 in time that a handed-off flow is over:
#   (a) a client's FIN: the flow is asked about at once and torn down
#       within seconds ("client closed, back has no flow");
#   (b) a client's RST: likewise ("client reset, back has no flow");
#   (c) a client reusing its port at once, while n1 still steers the old
#       flow: the old flow's steering goes before the new handshake's
#       last ACK would follow it to n2, or (a race: the ACK came before
#       the daemon's wake-up) on the client's retransmission, within 1 s;
#       the new connection is handed off and served like the first.
# n1's daemon is not woken for anything else: requests it serves itself
# send no packet to the watch.
source "$(dirname "$0")/lib.sh"
require_root
make_cluster 2
for i in 1 2; do write_config "$i" "sweep-interval 30000"; done
f=$(name_owned_by 2 w); make_file "$f" 65536
l=$(name_owned_by 1 l); make_file "$l" 1024
start_cluster
rst_watch_start

# BAND_CLOSED is 3, at byte 5 of the band message: byte 33 of the
# datagram with a 20-byte IP header.
in_node 1 iptables-legacy -I INPUT -p udp -s "$(addr 2)" --dport 7400 \
    -m u32 --u32 "30&0xFF=3" -j DROP || fail "cannot drop close reports"

# get PORT: a Connection: close fetch of $f through n1 from client port
# PORT, read to the server's close (so the server closes first and the
# client keeps no TIME-WAIT on the port); checks the body and that n2
# served it, prints the ms it took.
cat > "$TMP/get.py" <<'PY'
import socket, sys, time
addr, path, port, want = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
t0 = time.time()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.settimeout(5)
s.bind(("", port))
s.connect((addr, 80))
s.sendall(f"GET /{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
got = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    got += d
s.close()
head, _, body = got.partition(b"\r\n\r\n")
if body != open(want, "rb").read() or b"X-Served-By: n2" not in head:
    sys.exit(f"wrong response: {head[:200]!r}, {len(body)} body bytes")
print(round((time.time() - t0) * 1000))
PY
get() { in_client python3 "$TMP/get.py" "$(addr 1)" "$f" "$1" "$TMP/www/$f"; }

# (a) FIN
get 41001 >/dev/null || fail "(a) fetch failed"
busywait 2000 eval '[ "$(sets_of 1)" = 1 ]' || fail "(a) n1 does not steer the finished flow (close reports not dropped?)"
busywait 5000 eval '[ "$(counter 1 teardown_fin)" = 1 ]' ||
	fail "(a) n1 did not tear down the flow after the client's FIN (teardown_fin $(counter 1 teardown_fin))"
busywait 2000 eval '[ "$(sets_of 1)" = 0 ]' || fail "(a) set entry left"
pass "(a) client FIN seen by the watch: flow torn down in seconds, with no close report"

# (b) RST: read the response, then an abortive close (SO_LINGER 0).
in_client python3 - "$(addr 1)" "$f" <<'PY' || fail "(b) resetting client failed"
import socket, struct, sys
s = socket.socket()
s.bind(("", 41002))
s.connect((sys.argv[1], 80))
s.sendall(b"GET /" + sys.argv[2].encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
got = b""
while b"\r\n\r\n" not in got or len(got.split(b"\r\n\r\n", 1)[1]) < 65536:
    d = s.recv(65536)
    if not d:
        sys.exit("closed early")
    got += d
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
PY
busywait 5000 eval '[ "$(counter 1 teardown_rst)" = 1 ]' ||
	fail "(b) n1 did not tear down the flow after the client's RST (teardown_rst $(counter 1 teardown_rst))"
pass "(b) client RST seen by the watch: flow torn down in seconds"

# (c) the same port twice in a row
get 41003 >/dev/null || fail "(c) first fetch failed"
ms=$(get 41003) || fail "(c) second fetch on the reused port failed"
[ "$ms" -lt 1000 ] || fail "(c) the fetch on the reused port took $ms ms"
[ "$(counter 1 teardown_reuse)" = 1 ] || fail "(c) teardown_reuse $(counter 1 teardown_reuse), want 1"
[ "$(counter 1 handed_off)" = 4 ] || fail "(c) n1 confirmed $(counter 1 handed_off) hand-offs, want 4"
pass "(c) port reused at once: the old steering dropped, the new connection handed off and served in $ms ms"

# Connections n1 serves itself never reach the watch: its NFLOG rules
# count no packet for them.
nflogged() {
	in_node 1 iptables-legacy -t raw -nvxL QT-RAW-PRE |
	    awk '$3 == "NFLOG" {s += $1} END {print s + 0}'
}
n0=$(nflogged)
for k in $(seq 1 20); do fetch 1 "$l" "$TMP/out" || fail "local fetch failed"; done
[ "$(served_by "$TMP/out.h")" = 1 ] || fail "local object not served by n1"
n1=$(nflogged)
log "packets n1's NFLOG rules logged: $n0 before 20 local requests, $n1 after"
[ "$n0" -ge 3 ] || fail "the watch's rules logged only $n0 packets for (a)-(c)"
[ "$n1" = "$n0" ] || fail "the watch logged $((n1 - n0)) packets of connections n1 served itself"
pass "20 requests n1 served itself: not one packet to the watch"

rst=$(rst_watch_count)
log "resets seen at the client: $rst (b's own)"
[ "$rst" -le 1 ] || fail "$rst resets at the client, only (b)'s own expected"
in_node 1 iptables-legacy -D INPUT -p udp -s "$(addr 2)" --dport 7400 \
    -m u32 --u32 "30&0xFF=3" -j DROP
pass "no other reset at the client"
