#!/bin/bash
# The replayed SYN carries the client's own ISN, for clients that keep
# their side open and for clients that half-close right after the request
# (their FIN is then counted in the front's rcv_nxt).  The front's SYN
# watch relies on that ISN to tell the client's original SYN, captured
# late under load, from a new connection on the same port: a wrong ISN
# there tears down a live hand-off.
source "$(dirname "$0")/lib.sh"
require_root
make_cluster 2
obj=$(name_owned_by 2 isn) || fail "no path owned by n2"
make_file "$obj" 65536
start_cluster

# Every pure SYN the client sends, and every SYN that reaches the back
# from the client's address (the replays), with absolute sequence numbers.
ip netns exec "$CL" tcpdump -i eth0 --immediate-mode -p -nn -S -U -w "$TMP/client.pcap" \
    'tcp[tcpflags] == tcp-syn' >/dev/null 2>&1 &
CAP1=$!
ip netns exec "$(ns 2)" tcpdump -i eth0 --immediate-mode -p -nn -S -U -w "$TMP/back.pcap" \
    "src host $CLIENT_ADDR and tcp[tcpflags] == tcp-syn" >/dev/null 2>&1 &
CAP2=$!
# What the client receives from the front's address: the front's segments,
# then the back's as the front.
ip netns exec "$CL" tcpdump -i eth0 -p -nn -S -U --immediate-mode \
    -w "$TMP/from.pcap" "tcp and src host $(addr 1) and src port 80" \
    >/dev/null 2>&1 &
CAP3=$!
busywait 3000 test -s "$TMP/client.pcap" || true
busywait 3000 test -s "$TMP/back.pcap" || true
busywait 3000 test -s "$TMP/from.pcap" || true
sleep 0.3

N=20
in_client python3 - "$(addr 1)" "/$obj" "$N" >"$TMP/clients" <<'EOF' ||
import socket, sys
host, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
req = f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()
bad = 0
for half in (False, True):
    for i in range(n):
        s = socket.create_connection((host, 80), timeout=10)
        # One write, then the FIN at once: it is in the front's socket
        # before the front freezes it.
        s.sendall(req)
        if half:
            s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
        s.close()
        ok = got.startswith(b"HTTP/1.1 200") and \
            len(got.split(b"\r\n\r\n", 1)[-1]) == 65536
        if not ok:
            bad += 1
            print("half-closed" if half else "open", "client: bad response",
                  file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
	fail "a client did not get its whole response"
pass "$((2 * N)) clients (half of them half-closing) got their whole response"

sleep 0.3
kill -INT "$CAP1" "$CAP2" "$CAP3" 2>/dev/null
wait "$CAP1" "$CAP2" "$CAP3" 2>/dev/null

# client port -> ISN, on each side
tcpdump -nn -S -r "$TMP/client.pcap" 2>/dev/null |
    sed -n "s/.* IP $CLIENT_ADDR\.\([0-9]*\) > $(addr 1)\.80: Flags \[S\], seq \([0-9]*\)[:,].*/\1 \2/p" |
    sort -u >"$TMP/isn.client"
tcpdump -nn -S -r "$TMP/back.pcap" 2>/dev/null |
    sed -n "s/.* IP $CLIENT_ADDR\.\([0-9]*\) > $(addr 2)\.[0-9]*: Flags \[S\], seq \([0-9]*\)[:,].*/\1 \2/p" |
    sort -u >"$TMP/isn.back"
nc=$(wc -l <"$TMP/isn.client")
nb=$(wc -l <"$TMP/isn.back")
[ "$nc" = $((2 * N)) ] || fail "$nc client SYNs captured, $((2 * N)) expected"
[ "$nb" = $((2 * N)) ] || fail "$nb replayed SYNs captured on the back, $((2 * N)) expected"
if ! diff "$TMP/isn.client" "$TMP/isn.back" >"$TMP/isn.diff"; then
	sed 's/^/# /' "$TMP/isn.diff"
	fail "$(grep -c '^>' "$TMP/isn.diff") replayed SYNs carry another ISN than the client's"
fi
pass "each of the $nb replayed SYNs carries its client's ISN"

# The timestamp clock the client sees never goes back across the hand-off:
# PAWS drops a segment more than one tick older than the newest seen (the
# back restores the front's clock; a read of it can lag a tick).  The
# front's segments are those before the first with data (its SYN-ACK, an
# ACK), the back's the rest: the back's oldest stamp must not be below the
# front's newest.  (Within the back's own stream the veths may reorder.)
tcpdump -nn -r "$TMP/from.pcap" 2>/dev/null | python3 -c '
import re, sys
front, back, n = {}, {}, 0
for l in sys.stdin:
    m = re.search(r" > [0-9.]+\.(\d+): .*TS val (\d+).*length (\d+)", l)
    if not m:
        continue
    port, ts, ln = m.group(1), int(m.group(2)), int(m.group(3))
    n += 1
    if ln > 0 or port in back:
        back[port] = min(ts, back.get(port, ts))
    else:
        front[port] = max(ts, front.get(port, 0))
bad = 0
for port in back:
    if port in front and back[port] < front[port]:
        bad += 1
        print(f"# port {port}: the back stamps from {back[port]}, the front was at {front[port]}")
print(f"{n} {len(back)} {bad}")' >"$TMP/ts.out"
read -r nts nconn tsback < <(tail -n 1 "$TMP/ts.out")
if [ "${nconn:-0}" != $((2 * N)) ]; then
	tcpdump -nn -r "$TMP/from.pcap" 2>/dev/null | sed -n 's/.* > [0-9.]*\.\([0-9]*\): .*/\1/p' | sort -u >"$TMP/from.ports"
	for p in $(cut -d' ' -f1 "$TMP/isn.client" | sort | comm -23 - "$TMP/from.ports"); do
		log "port $p: nothing from the front's address; the client's side:"
		tcpdump -nn -r "$TMP/client.pcap" "port $p" 2>/dev/null | cut -c 1-150 | sed 's/^/#   /'
		grep -h ":$p " "$TMP"/n*.log | cut -c 1-200 | sed 's/^/#   /'
	done
	fail "timestamps of ${nconn:-0} connections seen, $((2 * N)) expected"
fi
[ "${tsback:-1}" = 0 ] || { head -n 5 "$TMP/ts.out"; p=$(sed -n "s/^# port \([0-9]*\):.*/\1/p" "$TMP/ts.out" | head -n 1); tcpdump -nn -r "$TMP/from.pcap" "dst port $p" 2>/dev/null | cut -c 1-160 | sed "s/^/# /"; fail "$tsback segments went back in time for the client"; }
pass "the client's view of the timestamp clock never went back ($nts segments)"

# The FIN was in the front's socket when it froze it, for some of them
# at least (else this test proves nothing): the back knew it.
half=$(grep -c 'closed: client half-closed' "$TMP/n2.log")
[ "$half" -gt 0 ] || fail "no hand-off carried the client's FIN"
log "$half hand-offs carried the client's FIN"
no_steering_left 1 2
pass "nothing left"
