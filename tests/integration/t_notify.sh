#!/bin/bash
# systemd's notify protocol, against a listener of our own on a private
# NOTIFY_SOCKET: READY=1 once everything is in place (the service answers
# then), RELOADING=1 then READY=1 around a reload, WATCHDOG=1 from the
# event loop at the rate WATCHDOG_USEC asks, STOPPING=1 on SIGTERM.
source "$(dirname "$0")/lib.sh"
require_root
make_cluster 1
write_config 1
make_file f 1000
cat > "$TMP/listen.py" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
out = open(sys.argv[2], "a", buffering=1)
while True:
    m = s.recv(4096).decode()
    for line in m.split("\n"):
        if line:
            out.write(f"{time.time():.3f} {line}\n")
PY
python3 "$TMP/listen.py" "$TMP/notify.sock" "$TMP/notify.log" &
lp=$!
busywait 3000 test -S "$TMP/notify.sock" || fail "listener did not start"
NOTIFY_SOCKET=$TMP/notify.sock WATCHDOG_USEC=400000 \
    ip netns exec "$(ns 1)" "$QTD" -c "$TMP/n1.conf" \
    >>"$TMP/n1.log" 2>&1 &
DPID[1]=$!
busywait 5000 grep -q 'READY=1' "$TMP/notify.log" || fail "no READY=1"
fetch 1 f "$TMP/o" || fail "not serving once READY=1 was sent"
pass "READY=1 sent, and the service answers"
sleep 1.2
w=$(grep -c 'WATCHDOG=1' "$TMP/notify.log")
[ "$w" -ge 4 ] || fail "only $w WATCHDOG=1 in 1.2 s with WATCHDOG_USEC=400000"
pass "WATCHDOG=1 every 0.2 s ($w in 1.2 s)"
kill -HUP "${DPID[1]}"
busywait 3000 eval '[ "$(grep -c "READY=1" "$TMP/notify.log")" = 2 ]' || fail "no READY=1 after the reload"
after=$(grep -v WATCHDOG "$TMP/notify.log" | grep -A1 'RELOADING=1' | awk 'NR == 2 {print $2}')
[ "$after" = READY=1 ] || fail "RELOADING=1 not followed by READY=1 (got '$after')"
pass "RELOADING=1, then READY=1 around a reload"
kill -TERM "${DPID[1]}"; wait "${DPID[1]}"; unset "DPID[1]"
grep -q 'STOPPING=1' "$TMP/notify.log" || fail "no STOPPING=1"
pass "STOPPING=1 on SIGTERM"
kill "$lp"
