#!/bin/bash
# defer-accept: with yes (the default) the kernel holds a connection until
# its first bytes arrive, so the daemon accepts it with the request there;
# a client that never speaks is still accepted once the kernel stops
# waiting, and closed after header-timeout, never held for ever; with no
# (switched by a reload, on the running listener) a connection is
# accepted at its handshake.  Requests are answered either way.
source "$(dirname "$0")/lib.sh"
require_root
make_cluster 2
for i in 1 2; do write_config "$i" "header-timeout 2000"; done
loc=$(name_owned_by 1 loc)
make_file "$loc" 3000
start_cluster

# silent.py ADDR HOLD_S [REQUEST]: connects, says nothing for HOLD_S s,
# then sends REQUEST (if given; backslash escapes as in rawhttp.py) and prints the status line, or prints how
# the server ended the silent connection and after how long.
cat >"$TMP/silent.py" <<'PY'
import socket, sys, time
addr, hold = sys.argv[1], float(sys.argv[2])
req = sys.argv[3] if len(sys.argv) > 3 else None
s = socket.create_connection((addr, 80), timeout=10)
t0 = time.monotonic()
if req is None:
    try:
        data = s.recv(4096)
        how = data.split(b"\r\n")[0].decode() if data else "closed"
    except socket.timeout:
        how = "open"
    except ConnectionResetError:
        how = "reset"
    print("%s after %.1f s" % (how, time.monotonic() - t0))
    sys.exit(0)
time.sleep(hold)
open(sys.argv[4], "w").write("slept\n")
s.sendall(req.encode().decode("unicode_escape").encode("latin-1"))
print(s.recv(4096).split(b"\r\n")[0].decode())
PY
req="GET /$loc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
silent() { in_client python3 "$TMP/silent.py" "$(addr 1)" "$@"; }

a0=$(counter 1 accepted)
silent 1.5 "$req" "$TMP/slept" >"$TMP/out1" &
sp=$!
sleep 1
[ -e "$TMP/slept" ] && fail "the client slept less than a second"
a1=$(counter 1 accepted)
[ "$a1" = "$a0" ] || fail "defer-accept yes: a silent connection was accepted ($a0 -> $a1)"
wait "$sp" || fail "the client failed"
grep -q '^HTTP/1.1 200 ' "$TMP/out1" || fail "deferred request: $(cat "$TMP/out1")"
[ "$(counter 1 accepted)" = $((a0 + 1)) ] || fail "the request's connection was not accepted once"
pass "defer-accept yes: a connection is accepted when its request comes, and answered"

# The kernel waits for data about 2 s (header-timeout in seconds: its
# SYN-ACK again at 1 s and 3 s, the client's ACK of the second taken),
# then the daemon gives header-timeout for a request: about 5 s.
out=$(silent 0)
case "$out" in
"HTTP/1.1 408 "*" after "* | "closed after "*) ;;
*) fail "a silent client: $out, want a 408 or a close" ;;
esac
t=${out##* after }; t=${t% s}
python3 -c "import sys; sys.exit(not 1.9 <= float(sys.argv[1]) <= 12)" "$t" ||
	fail "a silent client was ended after $t s, want 2-12"
pass "a client that never speaks is accepted, then ended ($out)"

sed -i 's/^header-timeout 2000$/&\ndefer-accept no/' "$TMP/n1.conf"
qtctl 1 reload >/dev/null || fail "reload failed"
a0=$(counter 1 accepted)
rm -f "$TMP/slept"
# The client speaks after 1.8 s (under header-timeout); what matters is
# that the accept comes before (checked below), with room for python's
# start and qtctl's polls on a slow machine (700 ms of 1 s missed 1 run
# in 7 here).
silent 1.8 "$req" "$TMP/slept" >"$TMP/out2" &
sp=$!
busywait 1500 eval '[ "$(counter 1 accepted)" = $((a0 + 1)) ]' ||
	fail "defer-accept no: the connection was not accepted at its handshake"
[ -e "$TMP/slept" ] && fail "the client sent its request before the check"
wait "$sp" || fail "the client failed"
grep -q '^HTTP/1.1 200 ' "$TMP/out2" || fail "request after the handshake: $(cat "$TMP/out2")"
pass "defer-accept no, after a reload: accepted at the handshake, answered"
