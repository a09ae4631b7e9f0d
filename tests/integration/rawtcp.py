#!/usr/bin/env python3
"""Hand-crafted TCP segments for raw sockets (the kernel adds the IP
header), for tests whose client has no socket behind its packets.

As a program, sends one segment with no connection behind it:
    rawtcp.py SRC SPORT DST DPORT ack|fin|rst
"""
import socket, struct, sys

M = 0xffffffff
FLAGS = {"ack": 0x10, "fin": 0x11, "rst": 0x14}


def segment(src, sport, dst, dport, seq, ack, flags, payload=b"",
            opts=b"", window=64240):
    """A TCP header (with opts) and payload, its checksum set; sequence
    numbers wrap at 2**32."""
    h = struct.pack("!HHIIBBHHH", sport, dport, seq & M, ack & M,
                    (20 + len(opts)) // 4 << 4, flags, window, 0, 0) + opts
    data = (socket.inet_aton(src) + socket.inet_aton(dst) +
            struct.pack("!BBH", 0, 6, len(h) + len(payload)) + h + payload)
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return h[:16] + struct.pack("!H", ~s & 0xffff) + h[18:] + payload


if __name__ == "__main__":
    src, sport, dst, dport, fl = sys.argv[1:6]
    r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    r.bind((src, 0))
    r.sendto(segment(src, int(sport), dst, int(dport), 1000, 2000,
                     FLAGS[fl], window=502), (dst, 0))
