#!/bin/bash
# A rebuilt connection sends full-sized segments from its first byte: the
# MSS the client announced (less its timestamp option), not the kernel's
# 536-byte default.  connect() in repair mode sizes segments from the MSS
# clamp as it is at that moment; restoring the clamp afterwards resized
# nothing, and a back sent 524-byte segments (a short response whole, a
# long one for its first 100 KB or so): nearly three times the packets on
# a real link, and the client's ACKs, each crossing the front, with them.
#
# GSO and TSO are off on the back's port so that what leaves it is what a
# wire would carry; two clients, one announcing the link's MSS (1460) and
# one a smaller one (1000), so the size must come from the client.
source "$(dirname "$0")/lib.sh"
require_root
command -v ethtool >/dev/null || fail "ethtool not installed"
make_cluster 2
obj=$(name_owned_by 2 mss) || fail "no path owned by n2"
make_file "$obj" 65536
start_cluster
in_node 2 ethtool -K eth0 tso off gso off >/dev/null || fail "cannot turn GSO off on n2"

# The back's segments as they leave its port, as the front's address.
ip netns exec "$(ns 2)" tcpdump -i eth0 -Q out -p -nn -U --immediate-mode -w "$TMP/back.pcap" \
    "tcp and src host $(addr 1) and src port 80" >/dev/null 2>&1 &
CAP=$!
busywait 3000 test -s "$TMP/back.pcap" || true
sleep 0.3

in_client python3 - "$(addr 1)" "/$obj" >"$TMP/ports" <<'EOF' ||
import socket, sys
host, path = sys.argv[1], sys.argv[2]
req = f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()
for mss in (0, 1000):
    s = socket.socket()
    if mss:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
    s.connect((host, 80))
    s.sendall(req)
    got = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
    head, _, body = got.partition(b"\r\n\r\n")
    if not got.startswith(b"HTTP/1.1 200") or len(body) != 65536:
        sys.exit(f"client with MSS {mss or 'default'}: bad response")
    if b"X-Served-By: n2" not in head:
        sys.exit(f"client with MSS {mss or 'default'}: not served by n2")
    print(s.getsockname()[1], mss or 1460)
    s.close()
EOF
	fail "a client did not get its whole response"
pass "both clients got their whole response"
capture_stop "$CAP"

while read -r port mss; do
	want=$((mss - 12))	# the timestamp option, 12 bytes in every segment
	tcpdump -nn -r "$TMP/back.pcap" "dst port $port" 2>/dev/null |
	    sed -n 's/.* length \([0-9]*\).*/\1/p' | sort -n | uniq -c >"$TMP/len.$port"
	max=$(awk '{ m = $2 } END { print m + 0 }' "$TMP/len.$port")
	full=$(awk -v w="$want" '$2 == w { n += $1 } END { print n + 0 }' "$TMP/len.$port")
	[ "$max" -gt 0 ] || fail "client MSS $mss: no data segment from the back captured"
	if [ "$max" != "$want" ] || [ "$full" -lt 40 ]; then
		sed 's/^/# segments, length: /' "$TMP/len.$port"
		fail "client MSS $mss: the back's largest segment is $max bytes ($full of $want), $want expected"
	fi
	pass "client MSS $mss: the back sent $full segments of $want bytes, none larger"
done <"$TMP/ports"
[ "$(wc -l <"$TMP/ports")" = 2 ] || fail "two clients expected"
