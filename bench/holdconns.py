#!/usr/bin/env python3
"""Hold N live keep-alive connections open, for bench/compare.sh.

    holdconns.py HOST PORT N STATUS PATH[,PATH...] SRC [SRC...]

Opens N connections to HOST:PORT, their source addresses taken from the
SRC list in turn, sends one keep-alive GET on each (the paths in turn),
reads the whole response (Content-Length) and then leaves the connection
idle.  At most 64 connections are being opened at a time.  When all have
been tried it writes "OK FAILED SECONDS" to the file STATUS (and stdout),
then sleeps, holding them, until it is killed (SIGTERM or SIGINT), when it
closes them all.  A connection the server closes is counted in the
status file's lost count, which the file gets again each 5 s.
"""
import asyncio
import os
import resource
import signal
import sys
import time


async def one(i, host, port, paths, srcs, sem, held, stats):
    async with sem:
        src = srcs[i % len(srcs)]
        path = paths[i % len(paths)]
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection(host, port, local_addr=(src, 0)), 10)
        except Exception:
            stats['failed'] += 1
            return
        try:
            w.write(('GET %s HTTP/1.1\r\nHost: %s\r\n\r\n'
                     % (path, host)).encode())
            head = await asyncio.wait_for(r.readuntil(b'\r\n\r\n'), 10)
            lines = head.decode('latin-1').split('\r\n')
            if not lines[0].startswith('HTTP/1.1 200'):
                raise ValueError(lines[0])
            length = 0
            for line in lines[1:]:
                k, _, v = line.partition(':')
                if k.strip().lower() == 'content-length':
                    length = int(v)
            await asyncio.wait_for(r.readexactly(length), 10)
        except Exception:
            stats['failed'] += 1
            w.close()
            return
        held.append((r, w))
        stats['ok'] += 1


async def watch(held, stats, status, t):
    while True:
        await asyncio.sleep(5)
        stats['lost'] = sum(1 for r, _ in held if r.at_eof())
        write_status(status, stats, t)


def write_status(status, stats, t):
    line = '%d %d %.1f %d\n' % (stats['ok'], stats['failed'], t,
                                stats.get('lost', 0))
    with open(status + '.tmp', 'w') as f:
        f.write(line)
    os.replace(status + '.tmp', status)
    return line


async def main():
    host, port, n, status = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    paths = sys.argv[5].split(',')
    srcs = sys.argv[6:] or ['0.0.0.0']
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    held, stats = [], {'ok': 0, 'failed': 0}
    sem = asyncio.Semaphore(64)
    t0 = time.monotonic()
    await asyncio.gather(*(one(i, host, port, paths, srcs, sem, held, stats)
                           for i in range(n)))
    t = time.monotonic() - t0
    sys.stdout.write(write_status(status, stats, t))
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    w = asyncio.ensure_future(watch(held, stats, status, t))
    await stop.wait()
    w.cancel()
    for _, wr in held:
        wr.close()


if __name__ == '__main__':
    asyncio.run(main())
