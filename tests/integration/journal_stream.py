#!/usr/bin/env python3
"""journal_stream.py PROGRAM [ARGS...]: run PROGRAM the way systemd runs a
service with StandardOutput=journal: stdout and stderr are one stream
socket connected to journald's /run/systemd/journal/stdout (with the
stream header systemd sends), and JOURNAL_STREAM names that socket's
device and inode.  The program is exec'd: it keeps this process's pid."""
import os
import socket
import sys

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect('/run/systemd/journal/stdout')
s.shutdown(socket.SHUT_RD)
# identifier, unit id, priority, level prefix, forward to syslog, kmsg,
# console: what systemd's exec code writes before handing the stream over.
name = os.path.basename(sys.argv[1])
s.sendall(('%s\n\n6\n1\n0\n0\n0\n' % name).encode())
os.dup2(s.fileno(), 1)
os.dup2(s.fileno(), 2)
st = os.fstat(2)
os.environ['JOURNAL_STREAM'] = '%d:%d' % (st.st_dev, st.st_ino)
os.execv(sys.argv[1], sys.argv[1:])
