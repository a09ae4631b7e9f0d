#!/usr/bin/env python3
"""Fills a namespace's conntrack table over ctnetlink, for tests of a full
table: N entries 198.18.0.(BASE+k):port -> DST:DPORT, ESTABLISHED,
ASSURED, 3600 s.  ASSURED, so the kernel cannot make room by evicting one
(early drop): only then is the table really full for every newcomer.  Sent
in batches without acks: a create per process would take minutes.  With
"delete", removes those entries.  Prints how many requests the kernel
refused, by errno ("none").

    ctfill.py N DST DPORT BASE [delete]
"""
import errno, socket, struct, sys
n, dst, dport, base = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
delete = len(sys.argv) > 5 and sys.argv[5] == "delete"
def attr(t, payload):
    l = 4 + len(payload)
    return struct.pack("=HH", l, t) + payload + b"\0" * ((4 - l % 4) % 4)
def nest(t, *parts):
    return attr(t | 0x8000, b"".join(parts))
def tup(t, s, d, sp, dp):
    return nest(t, nest(1, attr(1, socket.inet_aton(s)), attr(2, socket.inet_aton(d))),
                nest(2, attr(1, bytes([6])), attr(2, struct.pack("!H", sp)),
                     attr(3, struct.pack("!H", dp))))
if delete:
    MSG, FLAGS = (1 << 8) | 2, 0x1                  # IPCTNL_MSG_CT_DELETE
else:
    MSG, FLAGS = (1 << 8) | 0, 0x1 | 0x400 | 0x200  # CT_NEW, CREATE | EXCL
STATUS = 0x4 | 0x8                  # ASSURED | CONFIRMED
sk = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
sk.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
sk.bind((0, 0))
errs = {}
def drain():
    while True:
        try:
            d = sk.recv(1 << 16, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError as e:
            errs[e.errno] = errs.get(e.errno, 0) + 1
            continue
        off = 0
        while off + 20 <= len(d):
            l, t = struct.unpack_from("=IH", d, off)
            if t == 2:
                e = -struct.unpack_from("=i", d, off + 16)[0]
                if e:
                    errs[e] = errs.get(e, 0) + 1
            off += (l + 3) & ~3
batch = []
for i in range(n):
    src = "198.18.0.%d" % (base + i // 60000)
    sp = 1024 + i % 60000
    body = struct.pack("=BBH", socket.AF_INET, 0, 0) + tup(1, src, dst, sp, dport)
    if not delete:
        body += (tup(2, dst, src, dport, sp) +
                 attr(3, struct.pack("!I", STATUS)) + attr(7, struct.pack("!I", 3600)) +
                 nest(4, nest(1, attr(1, bytes([3])))))
    batch.append(struct.pack("=IHHII", 16 + len(body), MSG, FLAGS, i + 1, 0) + body)
    if len(batch) == 256 or i == n - 1:
        sk.send(b"".join(batch))
        batch = []
        drain()
drain()
print(" ".join("%s=%d" % (errno.errorcode.get(k, k), v)
               for k, v in sorted(errs.items())) or "none")
