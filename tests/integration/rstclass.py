#!/usr/bin/env python3
"""Classify the resets a client host received, from `tcpdump -nn -tt -r`
of its SYN/FIN/RST capture on stdin.

A received reset either hits a live connection (a failure), or comes after
both ends' FINs, when the client has closed and had the server's whole
stream: seen when the veths deliver a server's ACK after its FIN, the
client re-ACKs it from TIME_WAIT and the server, its socket gone, answers
with a reset.  That harms no connection: counted apart.

Only packets from or to ME count: on a bridge, frames for another host
(whose port is down, so flooded) can reach a capture.

Prints up to MAXSHOW "AFTER" and "LIVE" lines (the connection's recent
history), then "COUNT sent live after".
"""
import collections
import re
import sys

me = sys.argv[1]
maxshow = int(sys.argv[2]) if len(sys.argv) > 2 else 5
pk = re.compile(r"^(\S+) IP (\S+)\.(\d+) > (\S+)\.(\d+): Flags \[([^\]]*)\]")
hist = collections.defaultdict(list)
live = after = sent = 0
for line in sys.stdin:
    m = pk.match(line)
    if not m:
        continue
    ts, sa, sp, da, dp, fl = m.groups()
    if me not in (sa, da):
        continue
    out = sa == me
    key = (sp, da, dp) if out else (dp, sa, sp)
    if out and "R" in fl:
        sent += 1
    if not out and "R" in fl:
        h = hist[key]
        syn = max([i for i, (o, f, _) in enumerate(h) if o and f == "S"],
                  default=-1)
        fins = {o for o, f, _ in h[syn + 1:] if "F" in f} if syn >= 0 else set()
        if fins == {True, False}:
            after += 1
            kind, shown = "AFTER", after
        else:
            live += 1
            kind, shown = "LIVE", live
        if shown <= maxshow:
            past = "; ".join(f"{t} {'out' if o else 'in'} [{f}]"
                             for o, f, t in h[-8:])
            print(f"{kind} {key[0]} {key[1]}.{key[2]}: {past}; {ts} in [{fl}]")
    hist[key].append((out, fl, ts))
print(f"COUNT {sent} {live} {after}")
