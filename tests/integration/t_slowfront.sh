#!/bin/bash
# A slow front never takes back a connection its back has confirmed.
#
# The front's daemon runs under strace -f, every system call stopped and
# reported: its loop turns get long, and a hand-off's resend timer and the
# back's CONFIRM often land in the same turn.  libev runs that turn's
# callbacks last-queued first, timers after descriptors, so the timer came
# first: it resent, and on the last try took the connection back while the
# back, which had rebuilt it and answered, was told to drop it silently.
# Seen: 207 of 458 hand-offs taken back this way, 667 resends.  The timer
# now reads what the band socket holds before it acts.
source "$(dirname "$0")/lib.sh"
require_root
command -v strace >/dev/null || fail "strace not installed (scripts/deps.sh installs it)"
command -v wrk >/dev/null || fail "wrk not installed (scripts/deps.sh installs it)"
make_cluster 3
pa=$(name_owned_by 2 slow) || fail "no path owned by n2"
pb=$(name_owned_by 3 slow) || fail "no path owned by n3"
make_file "$pa" 4096
make_file "$pb" 4096
start_cluster

strace -f -q -p "${DPID[1]}" -o /dev/null &
SPID=$!
sleep 0.5
kill -0 "$SPID" 2>/dev/null || fail "strace did not attach"
cp "$QT_SRC/bench/paths.lua" "$TMP/wrk.lua"
in_client wrk -t1 -c 8 -d 3s -s "$TMP/wrk.lua" -H 'Connection: close' \
    "http://$(addr 1)/" -- "$pa" "$pb" >"$TMP/wrk.out" 2>&1 ||
	fail "wrk: $(tail -n 3 "$TMP/wrk.out")"
kill -INT "$SPID" 2>/dev/null
wait "$SPID" 2>/dev/null

read -r req errs < <(sed -n 's/^WRKRESULT \([0-9]*\) [0-9]* [0-9]* \([0-9]*\) \([0-9]*\) \([0-9]*\) \([0-9]*\) \([0-9]*\) .*/\1 \2+\3+\4+\5+\6/p' "$TMP/wrk.out")
[ -n "${req:-}" ] || fail "no result from wrk: $(tail -n 3 "$TMP/wrk.out")"
ho=$(counter 1 handoffs)
tb=$(counter 1 taken_back)
rs=$(counter 1 resends)
log "traced front: $req requests, $ho hand-offs, $tb taken back, $rs resends, wrk errors $errs"
[ "$ho" -ge 50 ] || fail "only $ho hand-offs: the test proves nothing"
[ "$tb" = 0 ] || fail "$tb hand-offs taken back by a slow front"
[ $((errs)) = 0 ] || fail "wrk errors: $errs"
pass "a slow front took back none of $ho hand-offs ($rs resends)"
