#!/bin/bash
#
# qct_create_dnat() (src/nf_ct.c) against the kernel, through tests/tools/qtnf:
# a steered flow's conntrack entry made at hand-off time with its DNAT
# binding, compared with the current mechanism (set entry, static DNAT rule,
# and an entry that conntrack picks up from the client's next packet).
#
# No daemon runs.  make_cluster 2: client C (198.18.0.100), front F (node 1,
# 198.18.0.1), back B (node 2, 198.18.0.2).  F gets by hand the front rules
# that steer.c installs (raw: flows in the set tracked, the rest NOTRACK;
# nat: flows in the set DNATed to B:8001).  B drops everything to its
# hand-off ports, so its stack never answers; a capture on B shows what F
# forwarded, with the destination port.  A python server on F plays the
# front: it reads the request, hands the flow off one way or the other,
# and closes its socket silently in TCP_REPAIR mode.  Created entries are
# bound to B:8002, not the rule's 8001, so a packet seen at 8002 shows that
# the binding came from the created entry and not from the rule.
#
# Exit 0 pass, 1 fail, 4 skipped.

. "$(dirname "$0")/lib.sh"

require_root
for t in iptables-legacy ipset conntrack tcpdump python3; do
	command -v "$t" >/dev/null ||
		{ echo "SKIP: $t not installed"; exit $ksft_skip; }
done
QTNF=$QT_BUILD/qtnf
[ -x "$QTNF" ] || fail "$QTNF not built"

FA=$(addr 1)
BA=$(addr 2)
CA=$CLIENT_ADDR
SET=qt-0-2
RULE_PORT=8001	# the static DNAT rule's target port on B
CT_PORT=8002	# the created entries' target port on B

inF() { in_node 1 "$@"; }
inB() { in_node 2 "$@"; }

make_cluster 2

# The front's rules, as steer.c builds them for one peer.
inF ipset create "$SET" hash:ip,port,ip || fail "cannot create set"
inF iptables-legacy -t raw -A PREROUTING -d "$FA" -p tcp --dport 80 \
    -m set --match-set "$SET" src,src,dst -j RETURN &&
inF iptables-legacy -t raw -A PREROUTING -d "$FA" -p tcp --dport 80 \
    -j CT --notrack &&
inF iptables-legacy -t raw -A OUTPUT -s "$FA" -p tcp --sport 80 \
    -j CT --notrack &&
inF iptables-legacy -t nat -A PREROUTING -d "$FA" -p tcp --dport 80 \
    -m set --match-set "$SET" src,src,dst \
    -j DNAT --to-destination "$BA:$RULE_PORT" || fail "cannot add F's rules"
inB iptables-legacy -A INPUT -p tcp --dport 8000:8063 -j DROP ||
	fail "cannot add B's rule"

# The front.  For each connection: read "GET /MODE ...", run the hand-off
# command for MODE ({c} {p}: client address and port).  If it succeeds,
# close silently in repair mode (the flow is the back's now); if it fails,
# serve the request ourselves, as the daemon does after a failed hand-off.
# Either way write TMP/go-PORT for the client.
cat >"$TMP/front.py" <<'EOF'
import os, socket, subprocess, sys
fip, tmp = sys.argv[1], sys.argv[2]
cmds = dict(a.split("=", 1) for a in sys.argv[3:])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((fip, 80))
ls.listen(64)
open(os.path.join(tmp, "front-ready"), "w").close()
while True:
    s, (c, p) = ls.accept()
    req = b""
    while b"\r\n\r\n" not in req:
        d = s.recv(4096)
        if not d:
            break
        req += d
    # The request must be acked before the hand-off, so that the client's
    # next packet is the one the test chose, not a retransmission.
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    mode = req.split(b" ")[1].decode().strip("/")
    rc = subprocess.call(cmds[mode].format(c=c, p=p), shell=True)
    if rc == 0:
        s.setsockopt(socket.IPPROTO_TCP, 19, 1)    # TCP_REPAIR
        how = "handed"
    else:
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nfront\n")
        how = "served"
    s.close()
    with open(os.path.join(tmp, "go-%d" % p), "w") as f:
        f.write(how + "\n")
EOF

# The client: connects from CIP:PORT, sends "GET /MODE", waits for the
# front, then does ACTION as the first thing after the hand-off: data (a
# second request), fin (shutdown), rst (abortive close).  Prints what it
# saw next: silent (nothing, as when the back has no socket), reset,
# served:BODY (the front answered itself).
cat >"$TMP/client.py" <<'EOF'
import os, socket, struct, sys, time
cip, port, fip, mode, action, tmp = sys.argv[1:7]
port = int(port)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((cip, port))
s.connect((fip, 80))
s.sendall(("GET /%s HTTP/1.1\r\nHost: f\r\n\r\n" % mode).encode())
go = os.path.join(tmp, "go-%d" % port)
for _ in range(200):
    if os.path.exists(go) and open(go).read().endswith("\n"):
        break
    time.sleep(0.05)
else:
    print("no-handoff")
    sys.exit(1)
s.settimeout(1.5)
if open(go).read().strip() == "served":
    body = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            body += d
    except OSError:
        pass
    print("served:" + body.split(b"\r\n\r\n", 1)[-1].decode().strip())
    sys.exit(0)
time.sleep(0.1)
if action == "rst":
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    print("sent-rst")
    sys.exit(0)
if action == "fin":
    s.shutdown(socket.SHUT_WR)
else:
    s.sendall(b"GET /again HTTP/1.1\r\nHost: f\r\n\r\n")
try:
    d = s.recv(100)
    print("eof" if not d else "data")
except ConnectionResetError:
    print("reset")
except socket.timeout:
    print("silent")
EOF

H="$QTNF ct-del {c} {p} $FA 80"
# Today's hand-off: set entry, exact delete; the entry comes from pickup.
PICKUP="pickup=ipset add $SET {c},tcp:{p},$FA && $H"
# The new one: exact delete, create the entry with its binding, and only
# then the set entry, so no packet can be picked up in between.
CREATE="create=$H && $QTNF ct-create-dnat {c} {p} $FA 80 $BA $CT_PORT 600"
CREATE="$CREATE && ipset add $SET {c},tcp:{p},$FA"
ip netns exec "$(ns 1)" python3 "$TMP/front.py" "$FA" "$TMP" \
    "$PICKUP" "$CREATE" >"$TMP/front.log" 2>&1 &
# It runs until cleanup() kills what is left in the namespaces; disowned,
# so bash does not report that kill.
disown $!
busywait 5000 test -e "$TMP/front-ready" || fail "front did not start"

# On B, everything F forwarded; on C, the RSTs the client receives.
# Immediate mode: without it packets wait in the capture's ring buffer up
# to a second, and the last ones are lost when tcpdump is stopped.
captures_start() {
	rm -f "$TMP/b.pcap" "$TMP/c.pcap"
	ip netns exec "$(ns 2)" tcpdump -i eth0 -nn -U --immediate-mode \
	    -w "$TMP/b.pcap" "tcp and dst host $BA" >/dev/null 2>&1 &
	BCAP=$!
	ip netns exec "$CL" tcpdump -i eth0 -nn -U --immediate-mode \
	    -w "$TMP/c.pcap" \
	    "tcp and dst host $CA and tcp[tcpflags] & tcp-rst != 0" \
	    >/dev/null 2>&1 &
	CCAP=$!
	busywait 3000 test -s "$TMP/b.pcap" || fail "capture on B did not start"
	busywait 3000 test -s "$TMP/c.pcap" || fail "capture on C did not start"
	sleep 0.3
}
captures_stop() {
	sleep 0.3
	kill -INT "$BCAP" "$CCAP" 2>/dev/null
	wait "$BCAP" "$CCAP" 2>/dev/null
}
# What reached B from client port $1: "N x FLAGS to :PORT" for the first
# packet's flags and port, or "nothing".
at_b() {
	local lines n
	lines=$(tcpdump -nn -r "$TMP/b.pcap" "tcp src port $1" 2>/dev/null)
	[ -n "$lines" ] || { echo nothing; return; }
	n=$(echo "$lines" | wc -l)
	echo "$lines" | head -n 1 | sed -n \
	    "s/.* > $BA\.\([0-9]*\): Flags \[\([^]]*\)\].*/$n x [\2] to :\1/p"
}
rst_to() { tcpdump -nn -r "$TMP/c.pcap" "tcp dst port $1" 2>/dev/null | wc -l; }

### 1. The client's first packet after the hand-off: data, FIN, RST ###

captures_start
CASES="41001:pickup:data 41002:pickup:fin 41003:pickup:rst
41011:create:data 41012:create:fin 41013:create:rst"
for c in $CASES; do
	IFS=: read -r port mode action <<<"$c"
	ip netns exec "$CL" python3 "$TMP/client.py" "$CA" "$port" "$FA" \
	    "$mode" "$action" "$TMP" >"$TMP/client-$port" 2>&1 &
done
wait_clients() {
	local c port
	for c in $1; do
		port=${c%%:*}
		busywait 15000 grep -q . "$TMP/client-$port" ||
			fail "client $port did not finish"
	done
	sleep 2	# the silent ones wait 1.5 s; retransmissions keep coming
}
wait_clients "$CASES"

# A pure ACK, and a FIN, hand-crafted, as the first packets of a flow
# whose entry was just created: no connection existed at all.
for p in 41021:ack 41022:fin; do
	in_node 1 "$QTNF" ct-create-dnat "$CA" "${p%:*}" "$FA" 80 "$BA" \
	    "$CT_PORT" 600 || fail "create for ${p%:*}"
	inF ipset add "$SET" "$CA,tcp:${p%:*},$FA"
	in_client python3 "$QT_SRC/tests/integration/rawtcp.py" "$CA" \
	    "${p%:*}" "$FA" 80 "${p#*:}" ||
		fail "cannot send a crafted segment"
done
captures_stop

log "$(printf '%-33s %-12s %-21s %s' "first packet after the hand-off" \
    "client saw" "reached B" "RSTs to client")"
for c in $CASES 41021:create:ack 41022:create:fin; do
	IFS=: read -r port mode action <<<"$c"
	res=$(cat "$TMP/client-$port" 2>/dev/null || echo crafted)
	printf '# %-6s %-6s (port %s)        %-12s %-21s %s\n' "$mode" \
	    "$action" "$port" "$res" "$(at_b "$port")" "$(rst_to "$port")"
done

# The current mechanism: data is picked up and DNATed; a FIN is invalid
# for pickup, stays undNATed, and F's stack (no socket) answers it with an
# RST; an RST is not DNATed either.
at_b 41001 | grep -q "\[P\.\] to :$RULE_PORT" || fail "pickup: data not DNATed"
[ "$(at_b 41002)" = nothing ] || fail "pickup: FIN reached B: $(at_b 41002)"
[ "$(cat "$TMP/client-41002")" = reset ] && [ "$(rst_to 41002)" -ge 1 ] ||
	fail "pickup: FIN was not answered with an RST by F"
[ "$(at_b 41003)" = nothing ] || fail "pickup: RST reached B"
pass "today's pickup: data DNATed, FIN not (F resets the client), RST not"

for c in 41011:P. 41012:F. 41013:R. 41021:. 41022:F.; do
	f=${c#*:}
	at_b "${c%:*}" | grep -q "^[0-9]* x \[${f//./\\.}\] to :$CT_PORT\$" ||
		fail "created entry, port ${c%:*}: at B: $(at_b "${c%:*}")"
	[ "$(rst_to "${c%:*}")" -eq 0 ] ||
		fail "created entry, port ${c%:*}: the client got an RST"
done
[ "$(cat "$TMP/client-41012")" = silent ] || fail "create: FIN answered"
pass "created entry: data, FIN, RST, pure ACK all DNATed to B:$CT_PORT, no RST"

### 2. The created entry is the picked-up one ###

# conntrack(8)'s line for the entry C:$1 -> F:80 (its filter alone would
# also show the table filler's entries that happen to use port $1).
ct_get() {
	inF conntrack -L -p tcp -s "$CA" --sport "$1" -d "$FA" --dport 80 \
	    2>/dev/null | grep "src=$CA dst=$FA sport=$1 dport=80 "
}
# The same, ports and timeout left out, to compare two flows.
ctline() {
	ct_get "$1" | sed -E "s/^(tcp +6) +[0-9]+ /\1 T /;
	    s/=$1\b/=CPORT/g; s/sport=($RULE_PORT|$CT_PORT) /sport=BPORT /"
}
log "picked up: $(ct_get 41001)"
log "created:   $(ct_get 41011)"
[ -n "$(ctline 41001)" ] || fail "no picked-up entry for 41001"
[ "$(ctline 41001)" = "$(ctline 41011)" ] ||
	fail "entries differ: [$(ctline 41001)] [$(ctline 41011)]"
ctline 41011 | grep -q "ESTABLISHED .*\[UNREPLIED\] src=$BA dst=$CA " ||
	fail "created entry: $(ctline 41011)"
ctline 41011 | grep -q ASSURED && fail "created entry is ASSURED"
pass "same state, flags and NATed reply tuple as a picked-up entry"

### 3. Errors: exists, zero timeout ###

expect_err() {
	local want=$1
	shift
	in_node 1 "$QTNF" ct-create-dnat "$@" 2>"$TMP/err" &&
		fail "ct-create-dnat $* succeeded, wanted $want"
	grep -q "($want)" "$TMP/err" || fail "ct-create-dnat $*: $(cat "$TMP/err")"
	log "ct-create-dnat $*: $(cat "$TMP/err")"
}
expect_err EEXIST "$CA" 41011 "$FA" 80 "$BA" "$CT_PORT" 600
# A picked-up entry for the tuple blocks a create just the same.
expect_err EEXIST "$CA" 41001 "$FA" 80 "$BA" "$CT_PORT" 600
# The documented way out: delete the tuple, create again.
in_node 1 "$QTNF" ct-del "$CA" 41001 "$FA" 80 || fail "ct-del 41001"
in_node 1 "$QTNF" ct-create-dnat "$CA" 41001 "$FA" 80 "$BA" 8003 600 ||
	fail "create after delete"
ct_get 41001 | grep -q "src=$BA dst=$CA sport=8003 dport=41001" ||
	fail "re-created entry lacks the new binding"
pass "EEXIST on an existing tuple; delete and create rebinds it"
expect_err EINVAL "$CA" 41099 "$FA" 80 "$BA" "$CT_PORT" 0
# The flows so far leave steering: their retransmissions must not take
# conntrack entries (or a freed slot) in what follows.
inF ipset flush "$SET"

### 4. Cost ###

in_node 1 "$QTNF" ct-bench-create 198.18.0.150 "$FA" 80 "$BA" "$CT_PORT" 5000 \
    >"$TMP/bench" || fail "ct-bench-create failed"
log "ct-bench-create, table almost empty: $(cat "$TMP/bench")"
inF conntrack -L -p tcp -s 198.18.0.150 2>/dev/null |
    grep -q "src=198.18.0.150 " &&
	fail "bench left entries"

### 5. A full table ###

MAX=$(inF cat /proc/sys/net/netfilter/nf_conntrack_max)
if inF sh -c "echo 64 >/proc/sys/net/netfilter/nf_conntrack_max" \
    2>/dev/null; then
	# A kernel that lets a namespace have its own limit: use a small one.
	MAX=$(inF cat /proc/sys/net/netfilter/nf_conntrack_max)
	log "nf_conntrack_max is per namespace here: F's set to $MAX"
else
	log "nf_conntrack_max ($MAX) is read-only in a child namespace (the" \
	    "limit is global, the count per namespace): filling F's table"
fi
if [ "$MAX" -gt 1100000 ]; then
	echo "SKIP: nf_conntrack_max is $MAX; filling F's table would take" \
	    "too long; the rest passed"
	exit $ksft_skip
fi
count() { inF cat /proc/sys/net/netfilter/nf_conntrack_count; }
# The entries of the flows above would expire one by one during the checks
# below (30 s after a FIN, ...), each freeing a slot: remove them now.
inF conntrack -D -p tcp -d "$FA" --dport 80 >/dev/null 2>&1
# Fills what is free again (filler port $1 is a new batch of tuples).
top_up() {
	inF python3 "$QT_SRC/tests/integration/ctfill.py" $((MAX - $(count) + 100)) "$FA" "$1" 240 \
	    >/dev/null || fail "cannot top up F's table"
	[ "$(count)" -ge "$MAX" ] || fail "table not full: $(count) of $MAX"
}
# First fill most of it, to see that the cost does not grow with the table.
n=$((MAX * 3 / 4 - $(count)))
[ "$n" -gt 0 ] && { inF python3 "$QT_SRC/tests/integration/ctfill.py" "$n" "$FA" 82 200 >/dev/null ||
	fail "cannot fill F's table"; }
in_node 1 "$QTNF" ct-bench-create 198.18.0.150 "$FA" 80 "$BA" "$CT_PORT" 5000 \
    >"$TMP/bench" || fail "ct-bench-create failed"
log "ct-bench-create, $(count) entries in the table: $(cat "$TMP/bench")"
refused=$(inF python3 "$QT_SRC/tests/integration/ctfill.py" $((MAX - $(count) + 100)) "$FA" 83 \
    230) ||
	fail "cannot fill F's table"
log "table filled: $(count) of $MAX entries; the filler was refused: $refused"
[ "$(count)" -ge "$MAX" ] || fail "table not full: $(count) of $MAX"

expect_err ENOMEM "$CA" 41031 "$FA" 80 "$BA" "$CT_PORT" 600
left=$(ct_get 41031)
[ -z "$left" ] || fail "a failed create left an entry: $left"
pass "full table: ENOMEM, nothing created"

# The two hand-offs with the table full.  Today's: the set entry is added,
# the client's data is neither picked up nor passed to F's stack, but
# dropped: the flow is wedged.  The new one: the create fails, the front
# keeps the flow and answers itself.
drops() {
	inF conntrack -S | sed -n 's/.* drop=\([0-9]*\) .*/\1/p' |
	    awk '{ s += $1 } END { print s + 0 }'
}
top_up 84
d0=$(drops)
captures_start
FULL="41041:pickup:data 41042:create:data"
for c in $FULL; do
	IFS=: read -r port mode action <<<"$c"
	ip netns exec "$CL" python3 "$TMP/client.py" "$CA" "$port" "$FA" \
	    "$mode" "$action" "$TMP" >"$TMP/client-$port" 2>&1 &
done
wait_clients "$FULL"
captures_stop
d1=$(drops)
for c in $FULL; do
	IFS=: read -r port mode action <<<"$c"
	printf '# full table: %-6s %s (port %s): client saw %s; reached B: %s\n' \
	    "$mode" "$action" "$port" "$(cat "$TMP/client-$port")" "$(at_b "$port")"
done
log "conntrack drops on F during these two flows: $((d1 - d0))"
[ "$(cat "$TMP/client-41041")" = silent ] && [ "$(at_b 41041)" = nothing ] ||
	fail "pickup with a full table: not wedged as expected"
[ $((d1 - d0)) -ge 1 ] || fail "no conntrack drop counted"
[ "$(cat "$TMP/client-41042")" = "served:front" ] ||
	fail "create with a full table: client saw $(cat "$TMP/client-41042")"
[ "$(at_b 41042)" = nothing ] || fail "create with a full table reached B"
inF ipset test "$SET" "$CA,tcp:41042,$FA" 2>/dev/null &&
	fail "failed hand-off left a set entry"
pass "full table: today's hand-off wedges silently, the new one fails" \
    "and F serves"

# Room for one more: the create works again.  The wedged flow leaves its
# set first, or its retransmissions would take the freed slot.
inF ipset del "$SET" "$CA,tcp:41041,$FA"
in_node 1 "$QTNF" ct-del 198.18.0.230 1024 "$FA" 83 || fail "ct-del filler"
in_node 1 "$QTNF" ct-create-dnat "$CA" 41032 "$FA" 80 "$BA" "$CT_PORT" 600 ||
	fail "create after one entry was freed"
pass "one entry freed: create succeeds again"

echo "PASS"
exit 0
