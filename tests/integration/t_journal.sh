#!/bin/bash
# The journald path, against a real systemd-journald of the test's own:
# the script runs in a private mount namespace with a tmpfs over /run, so
# the journald it starts there, its sockets and its journal files are seen
# by nothing else and vanish with it.  Nodes 1 and 2 run as systemd runs a
# service (stdout and stderr one stream into journald, JOURNAL_STREAM set);
# node 3 inherits a JOURNAL_STREAM that is not its stderr.  Read back with
# journalctl, the journal must show:
#   - a hand-off's events natively (_TRANSPORT=journal), with QT_FLOW,
#     QT_CLIENT, QT_NODE (the peer), QT_EVENT, QT_REASON on a close, the
#     right PRIORITY and the call site (CODE_FILE, CODE_FUNC);
#   - "journalctl QT_NODE=n2 QT_EVENT=handed-off" finding it;
#   - a config check (-n) error at PRIORITY=3;
#   - 25 identical warnings as 10 entries, then one "(repeated 15 times)"
#     entry with QT_REPEATED=15;
# and node 3's stderr must hold plain lines.
if [ -z "${QT_JOURNAL_PRIVATE:-}" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "SKIP: needs root"
		exit 4
	fi
	exec unshare --mount --propagation private \
	    env QT_JOURNAL_PRIVATE=1 bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
require_root
JOURNALD=/lib/systemd/systemd-journald
if [ ! -x "$JOURNALD" ]; then
	echo "SKIP: $JOURNALD missing (scripts/deps.sh installs systemd)"
	exit $ksft_skip
fi
STREAM="python3 $QT_SRC/tests/integration/journal_stream.py"
JDIR=/run/log/journal

# Only in this mount namespace.
mount -t tmpfs -o mode=0755 qt-run /run || fail "tmpfs over /run"
mkdir -p /run/systemd/journal "$JDIR"
cat > "$TMP/journald.conf" <<'EOF'
[Journal]
Storage=volatile
RuntimeMaxUse=32M
ReadKMsg=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
RateLimitIntervalSec=0
EOF
mount --bind "$TMP/journald.conf" /etc/systemd/journald.conf ||
	fail "cannot put our journald.conf in place"
for d in /etc/systemd/journald.conf.d /run/systemd/journald.conf.d \
    /usr/lib/systemd/journald.conf.d; do
	[ -d "$d" ] && mount -t tmpfs qt-empty "$d"
done
"$JOURNALD" > "$TMP/journald.log" 2>&1 &
JPID=$!
trap 'kill $JPID 2>/dev/null; wait $JPID 2>/dev/null; cleanup' EXIT
busywait 5000 test -S /run/systemd/journal/stdout ||
	fail "journald did not start: $(cat "$TMP/journald.log")"

journal() { journalctl -D "$JDIR" --no-pager "$@" 2>/dev/null; }

# jstart_node N: node N under the journal; ready once it logged so there.
jstart_node() {
	local n=$1
	[ -f "$TMP/n$n.conf" ] || write_config "$n"
	ip netns exec "$(ns "$n")" $STREAM "$QTD" -c "$TMP/n$n.conf" &
	DPID[$n]=$!
	busywait 5000 eval 'journal -o cat _PID=${DPID[$n]} | grep -q " ready:"' ||
		fail "node $n did not start: $(journal -o cat _PID=${DPID[$n]})"
}

make_cluster 3
obj=$(name_owned_by 2 obj)
make_file "$obj" 100k
jstart_node 1
jstart_node 2
P1=${DPID[1]}
P2=${DPID[2]}
JOURNAL_STREAM=0:0 start_node 3
pass "nodes 1 and 2 started under journald, node 3 beside it"

# One hand-off: n1 is asked, n2 serves.
fetch 1 "$obj" "$TMP/out" || fail "fetch through n1 failed"
cmp -s "$TMP/out" "$TMP/www/$obj" || fail "body differs"
[ "$(served_by "$TMP/out.h")" = 2 ] || fail "not served by n2"
busywait 10000 eval 'journal -o cat _PID=$P1 QT_EVENT=closed | grep -q .' ||
	fail "the front logged no close: $(journal -o cat _PID=$P1)"
busywait 5000 eval 'journal -o cat _PID=$P2 QT_EVENT=closed | grep -q .' ||
	fail "the back logged no close"

journal -o json > "$TMP/j.json"
python3 - "$TMP/j.json" "$P1" "$P2" <<'EOF' || fail "journal fields (above)"
import json, re, sys
entries = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
p1, p2 = sys.argv[2], sys.argv[3]
bad = []

def one(pid, event):
    m = [e for e in entries if e.get('_PID') == pid and
         e.get('QT_EVENT') == event]
    if len(m) != 1:
        bad.append('pid %s: %d "%s" entries, want 1' % (pid, len(m), event))
        return {}
    return m[0]

def want(e, field, value):
    got = e.get(field)
    ok = re.fullmatch(value, got or '') is not None
    if not ok:
        bad.append('%s %s: %s=%r, want %s' % (e.get('_PID'),
                   e.get('QT_EVENT'), field, got, value))

ho = one(p1, 'handed-off')
mat = one(p2, 'materialized')
fc = one(p1, 'closed')
bc = one(p2, 'closed')
client = r'198\.18\.0\.100:\d+'
for e, node in ((ho, 'n2'), (mat, 'n1'), (fc, 'n2'), (bc, 'n1')):
    if not e:
        continue
    want(e, '_TRANSPORT', 'journal')
    want(e, 'PRIORITY', '6')
    want(e, 'SYSLOG_IDENTIFIER', 'quicktwitchd')
    want(e, 'QT_FLOW', r'\d+')
    want(e, 'QT_CLIENT', client)
    want(e, 'QT_NODE', node)
    want(e, 'CODE_FILE', r'flow\.c')
    want(e, 'CODE_FUNC', 'flow_log')
    want(e, 'CODE_LINE', r'\d+')
if ho and mat and fc and bc:
    if len({ho['QT_CLIENT'], mat['QT_CLIENT'], fc['QT_CLIENT'],
            bc['QT_CLIENT']}) != 1:
        bad.append('front and back name different clients')
    if ho['QT_FLOW'] != fc['QT_FLOW'] or mat['QT_FLOW'] != bc['QT_FLOW']:
        bad.append('a flow changed its QT_FLOW between events')
    want(ho, 'MESSAGE', r'flow %s front %s handed-off: to n2 .*'
         % (ho['QT_FLOW'], re.escape(ho['QT_CLIENT'])))
    want(mat, 'MESSAGE', r'flow %s back %s materialized: from n1 .*'
         % (mat['QT_FLOW'], re.escape(mat['QT_CLIENT'])))
    want(fc, 'QT_REASON', r'.+')
    want(bc, 'QT_REASON', r'.+')
    if 'QT_REASON' in ho:
        bad.append('handed-off carries a QT_REASON: %r' % ho['QT_REASON'])
for pid in (p1, p2):
    r = [e for e in entries if e.get('_PID') == pid and
         ' ready:' in e.get('MESSAGE', '')]
    if len(r) != 1:
        bad.append('pid %s: %d ready entries' % (pid, len(r)))
        continue
    want(r[0], 'PRIORITY', '5')
    want(r[0], 'CODE_FUNC', 'main')
    want(r[0], '_TRANSPORT', 'journal')
    s = [e for e in entries if e.get('_PID') == pid and
         e.get('_TRANSPORT') != 'journal']
    if s:
        bad.append('pid %s: %d entries not native, first %r' %
                   (pid, len(s), s[0].get('MESSAGE')))
for b in bad:
    print('#', b)
sys.exit(1 if bad else 0)
EOF
pass "hand-off events native, with QT_FLOW, QT_CLIENT, QT_NODE, QT_EVENT, QT_REASON, PRIORITY, CODE_*"

n=$(journal -o cat QT_NODE=n2 QT_EVENT=handed-off | wc -l)
[ "$n" = 1 ] || fail "journalctl QT_NODE=n2 QT_EVENT=handed-off: $n entries"
pass "journalctl QT_NODE=n2 QT_EVENT=handed-off finds the hand-off"

# The config check (ExecStartPre) under the journal: errors at PRIORITY=3.
printf 'bogus 1\n' > "$TMP/bad.conf"
$STREAM "$QTD" -n -c "$TMP/bad.conf" && fail "a bad config passed -n"
busywait 3000 eval 'journal -o cat PRIORITY=3 CODE_FUNC=cf_error | grep -qF "$TMP/bad.conf:1: unknown keyword \"bogus\""' ||
	fail "no PRIORITY=3 entry for the config error: $(journal -o cat | tail -5)"
pass "quicktwitchd -n: config errors in the journal at PRIORITY=3"

# 25 identical warnings: forged replays from the same client port.
for i in $(seq 1 25); do
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$TMP/wrongkey"
	in_client "$QT_BUILD/qtforge" "$TMP/wrongkey" "$CLIENT_ADDR" 40001 \
	    "$(addr 2)" 8001 1 || fail "qtforge could not send"
done
forged() { in_node 2 "$QT_BUILD/qtctl" -s "$TMP/n2.sock" stats --json |
	python3 -c "import json,sys; print(json.load(sys.stdin)['counters']['forged'])"; }
busywait 5000 eval '[ "$(forged)" = 25 ]' || fail "forged=$(forged), want 25"
msg="forged replay for $CLIENT_ADDR:40001 on port 8001 rejected"
n=$(journal -o cat _PID=$P2 PRIORITY=4 | grep -cxF "$msg")
[ "$n" = 10 ] || fail "$n entries of \"$msg\", want 10"
stop_node 2
busywait 3000 eval 'journal -o cat _PID=$P2 PRIORITY=4 QT_REPEATED=15 | grep -qxF "$msg (repeated 15 times)"' ||
	fail "no summary: $(journal -o cat _PID=$P2 | tail -5)"
pass "25 identical warnings: 10 entries and one \"(repeated 15 times)\""

# Node 3's JOURNAL_STREAM was not its stderr: plain lines there, nothing
# sent to the journal.
tr '\0' '\n' < "/proc/${DPID[3]}/environ" | grep -qx 'JOURNAL_STREAM=0:0' ||
	fail "node 3 did not inherit JOURNAL_STREAM"
grep -Eq "^quicktwitchd\[${DPID[3]}\]: notice: node n3 .* ready:" "$TMP/n3.log" ||
	fail "no plain ready line on node 3's stderr"
n=$(journal -o cat _PID="${DPID[3]}" | wc -l)
[ "$n" = 0 ] || fail "node 3 sent $n entries to the journal"
pass "a JOURNAL_STREAM that is not stderr: plain lines on stderr"
