#!/usr/bin/env python3
"""A client without a socket, on raw IP: SYN, the handshake's ACK, one
request, then its FIN sent again and again for SECS seconds, so that one
copy reaches the back while it rebuilds the connection.  Its namespace must
drop the resets its kernel would send to the server's packets.
Usage: rebuildfin.py SRC DST SPORT PATH SECS"""
import random, socket, struct, sys, time
from rawtcp import M, segment		# beside this file: on sys.path
src, dst, sport, path, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])

def seg(seq, ack, flags, payload=b"", opts=b""):
    return segment(src, sport, dst, 80, seq, ack, flags, payload, opts)

tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
rx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
rx.settimeout(2)
isn = random.getrandbits(32)
# MSS 1460, no other options: the hand-off copes with any option set.
tx.sendto(seg(isn, 0, 0x02, opts=struct.pack("!BBH", 2, 4, 1460)), (dst, 0))
while True:
    p = rx.recv(65535)
    ihl = (p[0] & 15) * 4
    t = p[ihl:]
    sp, dp, seq, ack, offf, fl = struct.unpack("!HHIIBB", t[:14])
    if sp == 80 and dp == sport and fl & 0x12 == 0x12:
        break
srv = seq + 1
req = f"GET /{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
tx.sendto(seg(isn + 1, srv, 0x10), (dst, 0))
tx.sendto(seg(isn + 1, srv, 0x18, req), (dst, 0))
fin = seg(isn + 1 + len(req), srv, 0x11)
n = 0
end = time.time() + secs
while time.time() < end:
    tx.sendto(fin, (dst, 0))
    n += 1
# Then the response, acknowledged once its FIN is in: the flow can end.
got = {}
fin_at = None
rx.settimeout(3)
while fin_at is None or sum(len(d) for d in got.values()) < (fin_at - srv) & M:
    p = rx.recv(65535)
    ihl = (p[0] & 15) * 4
    t = p[ihl:]
    sp, dp, seq, ack, offf, fl = struct.unpack("!HHIIBB", t[:14])
    if sp != 80 or dp != sport:
        continue
    data = t[(offf >> 4) * 4:]
    if data:
        got[seq] = data
    if fl & 0x01:
        fin_at = seq + len(data)
resp = b"".join(got[k] for k in sorted(got, key=lambda k: (k - srv) & M))
tx.sendto(seg(isn + 2 + len(req), fin_at + 1, 0x10), (dst, 0))
if not resp.startswith(b"HTTP/1.1 200 "):
    sys.exit(f"response: {resp[:40]!r}")
print(f"sent {n} FINs; response {len(resp)} bytes, closed")
