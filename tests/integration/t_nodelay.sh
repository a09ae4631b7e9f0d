#!/bin/bash
# A relay forwards its server's writes as they come: no Nagle on the
# client's socket.  A server that writes a response's header and body
# apart (nginx does: writev, then sendfile) had its body held by Nagle
# until the client acknowledged the header, and a client in delayed-ACK
# mode holds that ACK 40 ms: each sequential keep-alive request after the
# first took 44 ms, on a handed-off connection and on one the node served
# itself alike.
#
# The server here is a small one that writes the header, waits 3 ms and
# writes a 300-byte body, so every response is split, into segments
# short of any MSS.  The check is Nagle's own
# rule, on n2's port: a segment short of the MSS may leave while an
# earlier short one is unacknowledged only without Nagle.  With Nagle it
# never happens; without it, every response the client acknowledges late
# (all once its quick-ACK start is over) shows it.
source "$(dirname "$0")/lib.sh"
require_root
make_cluster 2
write_config 2
sed -i "s|^service http port 80 handoff-base 8000\$|& upstream unix:$TMP/up2.sock|" "$TMP/n2.conf"
grep -q upstream "$TMP/n2.conf" || fail "config not edited"
obj=$(name_owned_by 2 nd) || fail "no path owned by n2"

ip netns exec "$(ns 2)" python3 - "$TMP/up2.sock" >"$TMP/up.log" 2>&1 <<'EOF' &
import os, socket, sys, threading, time
path = sys.argv[1]
body = b"x" * 300
head = (b"HTTP/1.1 200 OK\r\nContent-Length: 300\r\n"
        b"X-Served-By: n2\r\nContent-Type: text/plain\r\n\r\n")
def serve(c):
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            b = c.recv(65536)
            if not b:
                c.close()
                return
            buf += b
        buf = buf.split(b"\r\n\r\n", 1)[1]
        c.sendall(head)
        time.sleep(0.003)
        c.sendall(body)
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(64)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
UP=$!
busywait 3000 test -S "$TMP/up2.sock" || fail "test server did not start"
start_cluster

ip netns exec "$(ns 2)" tcpdump -i eth0 -p -nn -S -U --immediate-mode -w "$TMP/n2.pcap" \
    "tcp and host $CLIENT_ADDR" >/dev/null 2>&1 &
CAP=$!
busywait 3000 test -s "$TMP/n2.pcap" || true
sleep 0.3

N=40
in_client python3 - "$(addr 1)" "$(addr 2)" "/$obj" "$N" >"$TMP/ports" <<'EOF' ||
import socket, sys
front, back, path, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
req = f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
for host in (front, back):
    s = socket.create_connection((host, 80), timeout=10)
    buf = b""
    for i in range(n):
        s.sendall(req)
        while b"\r\n\r\n" not in buf:
            b = s.recv(65536)
            if not b:
                sys.exit(f"{host}: connection closed at request {i + 1}")
            buf += b
        head, buf = buf.split(b"\r\n\r\n", 1)
        while len(buf) < 300:
            b = s.recv(65536)
            if not b:
                sys.exit(f"{host}: connection closed in body {i + 1}")
            buf += b
        if not head.startswith(b"HTTP/1.1 200") or b"X-Served-By: n2" not in head \
                or buf[:300] != b"x" * 300:
            sys.exit(f"{host}: bad response {i + 1}")
        buf = buf[300:]
    print("handoff" if host == front else "local", s.getsockname()[1])
    s.close()
EOF
	fail "a keep-alive client did not get its responses"
pass "$N keep-alive requests on a handed-off connection and $N on a local one answered"
capture_stop "$CAP"
kill "$UP" 2>/dev/null
grep -q "handed-off: to n2" "$TMP/n1.log" || fail "the first connection was not handed off"

while read -r what port; do
	tcpdump -nn -S -tt -r "$TMP/n2.pcap" "port $port" 2>/dev/null | python3 -c '
import re, sys
port, mss = sys.argv[1], 1448
acked, last_short, early, short = 0, None, 0, 0
for l in sys.stdin:
    m = re.search(r"IP \S+\.(\d+) > \S+\.(\d+): Flags \[[^\]]*\](?:, seq (\d+):(\d+))?(?:, ack (\d+))?.*length (\d+)", l)
    if not m:
        continue
    sp, dp, s0, s1, ack, ln = m.groups()
    if sp == port:			# from the client
        if ack:
            acked = max(acked, int(ack))
        continue
    ln = int(ln)
    if ln == 0 or ln >= mss:
        continue
    short += 1
    if last_short is not None and acked < last_short:
        early += 1
    last_short = int(s1)
print(short, early)' "$port" >"$TMP/nagle.$port"
	read -r short early <"$TMP/nagle.$port"
	[ "${short:-0}" -ge "$N" ] || fail "$what connection: ${short:-0} short segments from n2 captured, at least $N expected"
	[ "${early:-0}" -ge 5 ] ||
	    fail "$what connection: ${early:-0} of $short short segments left n2 while an earlier one was unacknowledged: Nagle holds the relay's writes"
	pass "$what connection: $early of $short short segments left n2 with an earlier one unacknowledged (no Nagle)"
done <"$TMP/ports"
[ "$(wc -l <"$TMP/ports")" = 2 ] || fail "two connections expected"
