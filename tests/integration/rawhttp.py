#!/usr/bin/env python3
"""Send raw bytes to HOST:PORT, read until the server closes (or a timeout),
print each response's status line, then 'CLOSED' or 'OPEN', and the total
bytes read.  Used by the request-handling test."""
import socket
import sys

host, port, data = sys.argv[1], int(sys.argv[2]), sys.argv[3]
wait = float(sys.argv[4]) if len(sys.argv) > 4 else 3.0
payload = data.encode().decode('unicode_escape').encode('latin-1')
s = socket.create_connection((host, port), timeout=wait)
s.sendall(payload)
buf = b''
state = 'OPEN'
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            state = 'CLOSED'
            break
        buf += chunk
except socket.timeout:
    pass
except ConnectionResetError:
    state = 'RESET'
# Walk the responses: status line, headers, Content-Length bytes of body
# (none for HEAD: a HEAD request's response is printed by its headers).
head_only = payload.startswith(b'HEAD ')
pos = 0
while pos < len(buf):
    end = buf.find(b'\r\n\r\n', pos)
    if end < 0:
        print('TRUNCATED')
        break
    lines = buf[pos:end].split(b'\r\n')
    print(lines[0].decode('latin-1'))
    clen = 0
    for h in lines[1:]:
        k, _, v = h.partition(b':')
        if k.strip().lower() == b'content-length':
            clen = int(v)
    pos = end + 4 + (0 if head_only else clen)
print(state)
print(len(buf))
