#!/bin/bash
# The control socket and qtctl on a 3-node cluster: after requests
# through n1, qtctl's counters match what happened, every output form
# carries the same data (JSON, "name value", Prometheus, tables), the
# flow list names real held connections on both ends, 1,000 malformed
# messages and a crowd of silent clients leave the daemon serving, and
# a stopped, a killed and a duplicate daemon are each reported clearly.
source "$(dirname "$0")/lib.sh"
require_root
for t in python3 curl; do
	command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 4; }
done
[ -x "$QTCTL" ] || fail "$QTCTL not built"

make_cluster 3
for i in 1 2 3; do write_config "$i"; done

# qtctl N ARGS...: qtctl on node N's socket.

# daemon_pid N: the quicktwitchd running in node N's namespace.
daemon_pid() {
	local p
	for p in $(ip netns pids "$(ns "$1")" 2>/dev/null); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = quicktwitchd ] &&
		    echo "$p"
	done
}

# kill_daemon N SIGNAL: signal node N's daemon itself (DPID holds the
# subshell that started it) and wait until it is gone.
kill_daemon() {
	local n=$1 sig=$2 p
	p=$(daemon_pid "$n")
	[ -n "$p" ] || fail "node $n: no daemon to stop"
	kill "-$sig" "$p"
	busywait 5000 test ! -e "/proc/$p" || fail "node $n: daemon $p did not exit"
	wait "${DPID[$n]}" 2>/dev/null
	unset "DPID[$n]"
}

# restart_node N: start node N again and wait until its socket answers
# (its log already holds an earlier " ready:").
restart_node() {
	local n=$1
	in_node "$n" "$QTD" -c "$TMP/n$n.conf" >>"$TMP/n$n.log" 2>&1 &
	DPID[$n]=$!
	busywait 5000 qtctl "$n" stats >/dev/null 2>&1 ||
		fail "node $n did not come back"
}

# Objects with known owners: four each.
declare -A OWNER
for n in 1 2 3; do
	for k in 1 2 3 4; do
		f=$(name_owned_by "$n" "o$n$k") || fail "no name hashes to n$n"
		make_file "$f" 2000
		OWNER[$f]=$n
	done
done
start_cluster

# --- the socket itself
for n in 1 2 3; do
	[ "$(stat -c '%a %G' "$TMP/n$n.sock")" = "660 root" ] ||
		fail "n$n.sock: $(stat -c '%a %G' "$TMP/n$n.sock"), want 660 root"
done
pass "sockets are mode 0660, group root"

# --- counters after requests through n1
local_n=0 remote_n=0
for f in "${!OWNER[@]}"; do
	fetch 1 "$f" "$TMP/out" || fail "fetch $f failed"
	cmp -s "$TMP/out" "$TMP/www/$f" || fail "$f: body differs"
	[ "$(served_by "$TMP/out.h")" = "${OWNER[$f]}" ] ||
		fail "$f served by n$(served_by "$TMP/out.h"), owner n${OWNER[$f]}"
	if [ "${OWNER[$f]}" = 1 ]; then
		local_n=$((local_n + 1))
	else
		remote_n=$((remote_n + 1))
	fi
done
log "12 requests through n1: $local_n local, $remote_n handed off"
# Counters move until every flow has ended (close reports, grace): the
# forms below are compared with each other, so read them once all is still.
settled() {
	local n
	for n in 1 2 3; do
		[ "$(qtctl "$n" stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["flows_total"])')" = 0 ] || return 1
	done
}
busywait 10000 settled || fail "flows did not end"

qtctl 1 stats --json >"$TMP/s1.json" || fail "qtctl stats --json: exit $?"
python3 -m json.tool "$TMP/s1.json" >/dev/null || fail "stats --json is not JSON"
qtctl 1 stats >"$TMP/s1.txt" || fail "qtctl stats: exit $?"
qtctl 1 stats --prometheus >"$TMP/s1.prom" || fail "qtctl stats --prometheus: exit $?"
for n in 2 3; do qtctl "$n" stats --json >"$TMP/s$n.json" || fail "n$n stats"; done
python3 - "$TMP" "$local_n" "$remote_n" <<'EOF' || fail "stats disagree with the requests"
import json, re, sys
tmp, local, remote = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = [None] + [json.load(open(f"{tmp}/s{n}.json")) for n in (1, 2, 3)]
c = s[1]["counters"]
want = {"accepted": 12, "local": local, "handoffs": remote,
        "handed_off": remote, "taken_back": 0, "refused": 0,
        "bytes_served": 2000 * local, "bad_requests": 0, "forged": 0}
for k, v in want.items():
    assert c[k] == v, f"n1 {k} = {c[k]}, want {v}"
assert sum(s[n]["counters"]["back_flows"] for n in (2, 3)) == remote
assert sum(s[n]["counters"]["bytes_served"] for n in (1, 2, 3)) == 12 * 2000
for n in (1, 2, 3):
    f = s[n]["flows"]
    assert sum(f.values()) == s[n]["flows_total"], f"n{n} flows {f}"
    assert s[n]["node"] == f"n{n}" and s[n]["uptime"] >= 0
# "name value" lines: the same counters
txt = dict(l.split(" ", 1) for l in open(f"{tmp}/s1.txt").read().splitlines())
for k, v in c.items():
    assert txt[k] == str(v), f"text {k} = {txt[k]}, json {v}"
assert txt["node"] == "n1"
# Prometheus text format
prom = open(f"{tmp}/s1.prom").read().splitlines()
types = {}
for l in prom:
    m = re.match(r"# TYPE (\S+) (counter|gauge|histogram)$", l)
    if m:
        types[m[1]] = m[2]
        continue
    if l.startswith("# HELP "):
        continue
    m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{state="[a-z-]+"\}|'
                 r'\{step="[a-z_]+"(,le="(\+Inf|[0-9.]+)")?\}|'
                 r'\{(le="(\+Inf|[0-9.]+)")\})? ([0-9.]+)$', l)
    assert m, f"not Prometheus text: {l!r}"
    # A histogram's samples are its name with _bucket (le), _sum, _count.
    h = re.match(r"(.*)_(bucket|sum|count)$", m[1])
    fam = h[1] if h and types.get(h[1]) == "histogram" else m[1]
    assert fam in types, f"{m[1]} has no TYPE line"
    assert (types[fam] == "histogram") == (m[1] != fam), f"{m[1]}: {types[fam]}"
    assert (m[3] is not None or m[5] is not None) == \
        (m[1].endswith("_bucket") and fam != m[1]), f"le label on {m[1]}"
for k, v in c.items():
    assert f"quicktwitch_{k}_total {v}" in prom, f"prometheus lacks {k}"
    assert types[f"quicktwitch_{k}_total"] == "counter"
assert types["quicktwitch_flows"] == "gauge"
assert types["quicktwitch_loop_busy_seconds"] == "histogram"
assert f'quicktwitch_loop_busy_seconds_bucket{{le="+Inf"}} ' in "\n".join(prom)
for st, v in s[1]["flows"].items():
    assert f'quicktwitch_flows{{state="{st}"}} {v}' in prom
EOF
pass "stats: accepted 12, local $local_n, handed_off $remote_n; text and Prometheus agree with JSON"

# --- held connections: one handed off to n2 and kept alive, one still
# sending its first request.
f2=$(for f in "${!OWNER[@]}"; do [ "${OWNER[$f]}" = 2 ] && echo "$f"; done | head -n 1)
cat >"$TMP/hold.py" <<'EOF'
import os, socket, sys, time
addr, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
a = socket.create_connection((addr, 80), timeout=10)
a.sendall(f"GET /{path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
buf = b""
while b"\r\n\r\n" not in buf:
    buf += a.recv(4096)
head, body = buf.split(b"\r\n\r\n", 1)
clen = int([l.split(b":")[1] for l in head.split(b"\r\n")
            if l.lower().startswith(b"content-length:")][0])
while len(body) < clen:
    body += a.recv(65536)
b = socket.create_connection((addr, 80), timeout=10)
b.sendall(b"GET /partial HTTP/1.1\r\n")
with open(out, "w") as f:
    f.write(f"{a.getsockname()[1]} {b.getsockname()[1]}\n")
t0 = time.time()
while not os.path.exists(out + ".done") and time.time() < t0 + 60:
    time.sleep(0.05)
EOF
in_client python3 "$TMP/hold.py" "$(addr 1)" "$f2" "$TMP/ports.tmp" &
holder=$!
busywait 5000 test -s "$TMP/ports.tmp" || fail "held connections not made"
read -r port_ho port_rd <"$TMP/ports.tmp"
# Earlier flows linger a moment in grace: wait until only ours are left.
no_grace() {
	[ "$(qtctl 1 list-flows --state grace --json | python3 -c \
	    'import json, sys; print(len(json.load(sys.stdin)["flows"]))')" = 0 ]
}
busywait 5000 no_grace || fail "grace flows did not end"

qtctl 1 list-flows --json >"$TMP/f1.json" || fail "list-flows --json: exit $?"
qtctl 1 list-flows >"$TMP/f1.txt" || fail "list-flows: exit $?"
qtctl 2 list-flows --json >"$TMP/f2.json" || fail "n2 list-flows --json"
qtctl 1 list-flows --json --node n2 >"$TMP/f1n2.json" || fail "--node n2"
qtctl 1 list-flows --json --node n3 >"$TMP/f1n3.json" || fail "--node n3"
qtctl 1 list-flows --json --state reading >"$TMP/f1rd.json" || fail "--state reading"
python3 - "$TMP" "$port_ho" "$port_rd" "$f2" <<'EOF' || fail "list-flows wrong"
import json, sys
tmp, pho, prd, f2 = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
ld = lambda n: json.load(open(f"{tmp}/{n}.json"))["flows"]
f1 = {f["id"]: f for f in ld("f1")}
by_client = {f["client"]: f for f in f1.values()}
ho = by_client[f"198.18.0.100:{pho}"]
assert (ho["role"], ho["state"], ho["peer"], ho["service"]) == \
    ("front", "handed-off", "n2", "http"), ho
assert ho["request"] == f"GET /{f2} HTTP/1.1", ho
rd = by_client[f"198.18.0.100:{prd}"]
assert (rd["role"], rd["state"], rd["peer"], rd["request"]) == \
    ("front", "reading", "-", ""), rd
assert len(f1) == 2, f"n1 has other flows: {f1}"
back = [f for f in ld("f2") if f["client"] == f"198.18.0.100:{pho}"]
assert len(back) == 1, back
b = back[0]
assert (b["role"], b["state"], b["peer"]) == ("back", "back", "n1"), b
assert b["requests"] >= 1 and b["bytes"] == 2000, b
assert [f["id"] for f in ld("f1n2")] == [ho["id"]]
assert ld("f1n3") == []
assert [f["id"] for f in ld("f1rd")] == [rd["id"]]
# The table: the same rows, the same values (age moves on).
lines = open(f"{tmp}/f1.txt").read().splitlines()
cols = ["id", "role", "state", "client", "service", "peer", "age", "bytes",
        "requests", "request"]
assert lines[0].split() == ["ID", "ROLE", "STATE", "CLIENT", "SERVICE",
                            "PEER", "AGE", "BYTES", "REQS", "REQUEST"], lines[0]
rows = {}
for l in lines[1:]:
    v = l.split(None, 9)
    if len(v) == 9:
        v.append("")
    rows[int(v[0])] = dict(zip(cols, v))
assert sorted(rows) == sorted(f1), (rows, f1)
for i, f in f1.items():
    for k in cols:
        if k != "age":
            assert rows[i][k] == str(f[k]), (k, rows[i][k], f[k])
EOF
pass "list-flows: handed-off front on n1, back on n2, reading flow; table matches JSON; filters work"
touch "$TMP/ports.tmp.done"
wait "$holder"

qtctl 1 list-flows --state bogus >/dev/null 2>"$TMP/err"
rc=$?
[ "$rc" = 1 ] && grep -q "no such state" "$TMP/err" ||
	fail "list-flows --state bogus: exit $rc, $(cat "$TMP/err")"
qtctl 1 list-flows --bogus >/dev/null 2>&1
[ $? = 2 ] || fail "an unknown option is not a usage error"
in_node 1 "$QTCTL" -s "$TMP/n1.sock" >/dev/null 2>&1
[ $? = 2 ] || fail "no command is not a usage error"
pass "an unknown state is the daemon's error (1), a bad command line is usage (2)"

# --- configuration and nodes, read through -c
in_node 1 "$QTCTL" -c "$TMP/n1.conf" show config --json >"$TMP/c1.json" ||
	fail "show config --json: exit $?"
in_node 1 "$QTCTL" -c "$TMP/n1.conf" show config >"$TMP/c1.txt" ||
	fail "show config: exit $?"
qtctl 1 nodes --json >"$TMP/nodes.json" || fail "nodes --json: exit $?"
qtctl 1 nodes >"$TMP/nodes.txt" || fail "nodes: exit $?"
python3 - "$TMP" <<'EOF' || fail "show config / nodes wrong"
import json, sys
tmp = sys.argv[1]
c = json.load(open(f"{tmp}/c1.json"))
o = c["options"]
assert c["path"] == f"{tmp}/n1.conf"
assert o["self"] == "n1" and o["control-socket"] == f"{tmp}/n1.sock"
assert o["handoff-timeout"] == 200 and o["conntrack-grace"] == 500
assert o["control-group"] == "root" and o["set-sysctls"] is False
assert [n["name"] for n in c["nodes"]] == ["n1", "n2", "n3"]
assert c["services"] == [{"name": "http", "port": 80, "handoff-base": 8000}]
assert "key" not in o
txt = open(f"{tmp}/c1.txt").read().splitlines()
for k, v in o.items():
    v = {True: "yes", False: "no"}.get(v, v) if isinstance(v, bool) else v
    assert f"{k} {v if v != '' else chr(34) * 2}" in txt, k
assert "node n2 id 2 address 198.18.0.2 weight 100" in txt
assert "service http port 80 handoff-base 8000" in txt
nodes = json.load(open(f"{tmp}/nodes.json"))["nodes"]
assert [(n["name"], n["id"], n["address"], n["up"], n["self"]) for n in nodes] == \
    [("n1", 1, "198.18.0.1", True, True), ("n2", 2, "198.18.0.2", True, False),
     ("n3", 3, "198.18.0.3", True, False)], nodes
rows = [l.split() for l in open(f"{tmp}/nodes.txt").read().splitlines()]
assert rows[0] == ["NAME", "ID", "ADDRESS", "WEIGHT", "UP", "SELF", "STATE",
                   "LOAD", "HEARD-MS"]
assert [n["state"] for n in nodes] == ["up", "up", "up"], nodes
# every column but the last two, which move with time (load, last heard)
assert [r[:7] for r in rows[1:]] == [[n["name"], str(n["id"]), n["address"],
                     str(n["weight"]), "yes" if n["up"] else "no",
                     "yes" if n["self"] else "no", n["state"]]
                    for n in nodes]
assert all(r[7].isdigit() and r[8].isdigit() for r in rows[1:]), rows
EOF
pass "show config and nodes: JSON parses, text carries the same data"

# --- garbage: 1,000 malformed or hostile messages, then silent clients
cat >"$TMP/garbage.py" <<'EOF'
import json, os, random, socket, struct, sys, time
path = sys.argv[1]
MAGIC, OK, ERROR = b"QTC1", 100, 101
random.seed(4)

def hdr(t, n, magic=MAGIC, ver=1):
    return magic + struct.pack("!HHI", ver, t, n)

def reply(s):
    buf = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            buf += d
    except ConnectionResetError:
        pass
    if not buf:
        return None
    assert buf[:4] == MAGIC and len(buf) >= 12, buf[:40]
    ver, t, n = struct.unpack("!HHI", buf[4:12])
    assert ver == 1 and len(buf) == 12 + n, (ver, n, len(buf))
    return t, json.loads(buf[12:])

def one(data, expect, shut=True, trickle=False):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    try:
        if trickle:
            for b in data:
                s.send(bytes([b]))
                time.sleep(0.001)
        elif data:
            s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        pass
    if expect == "none":
        s.close()
        return "none"
    r = reply(s)
    s.close()
    got = "eof" if r is None else ("ok" if r[0] == OK else "error")
    if got == "error":
        assert isinstance(r[1]["error"], str) and r[1]["error"]
    assert expect in (got, "any"), (data[:40], expect, got, r)
    return got

cases = [
    lambda: (os.urandom(random.randint(1, 200)), "error"),
    lambda: (b"", "eof"),
    lambda: (b"GET / HTTP/1.1\r\n\r\n", "error"),
    lambda: (hdr(1, 0, magic=b"QTC2"), "error"),
    lambda: (hdr(1, 0, ver=2), "error"),
    lambda: (hdr(2, 0xffffffff), "error"),
    lambda: (hdr(2, 4097) + b"x" * 100, "error"),
    lambda: (hdr(2, 64)[:random.randint(1, 11)], "error"),
    lambda: (hdr(2, 64) + b"\0" * random.randint(0, 63), "error"),
    lambda: (hdr(random.choice([0, 5, 99, 100, 101, 65535]), 0), "error"),
    lambda: (hdr(1, 5) + b"hello", "error"),
    lambda: (hdr(2, 64) + b"x" * 64, "error"),
    lambda: (hdr(2, 63) + b"\0" * 63, "error"),
    lambda: (hdr(2, 64) + b"n9".ljust(32, b"\0") + b"\0" * 32, "error"),
    lambda: (hdr(random.choice([1, 3, 4]), 0), "ok"),
    lambda: (hdr(2, 64) + b"\0" * 64, "ok"),
    lambda: (hdr(1, 0) + os.urandom(50), "ok"),
    lambda: (hdr(1, 0), "none"),
]
count = {}
for i in range(1000):
    data, expect = random.choice(cases)()
    # A short frame is only known to be short at the end of the
    # stream: without shutdown it would wait out the 2 s timeout.
    shut = expect not in ("ok", "none") or random.random() < 0.5
    got = one(data, expect, shut=shut, trickle=(i % 100 == 0))
    count[got] = count.get(got, 0) + 1
# Connections that close at once, and one that never sends.
for i in range(20):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.close()
print(" ".join(f"{k}={v}" for k, v in sorted(count.items())))
EOF
in_node 1 python3 "$TMP/garbage.py" "$TMP/n1.sock" >"$TMP/garbage.out" 2>&1 ||
	fail "garbage run: $(tail -n 5 "$TMP/garbage.out")"
log "1000 messages: $(cat "$TMP/garbage.out")"
[ -n "$(daemon_pid 1)" ] || fail "n1 died under garbage"
pass "1000 malformed messages: each answered with an error (or closed), daemon alive"

# 70 clients that never send: more than the 64 served at once.  Each
# must get the timeout error, the last ones after waiting their turn.
cat >"$TMP/silent.py" <<'EOF'
import json, socket, struct, sys, time
path, n = sys.argv[1], int(sys.argv[2])
t0 = time.time()
socks = []
for i in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)		# blocking: waits for room in the backlog
    s.settimeout(10)
    socks.append(s)
worst = 0
for s in socks:
    buf = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        buf += d
    assert buf[:4] == b"QTC1", buf
    t = struct.unpack("!H", buf[6:8])[0]
    assert t == 101 and "timed out" in json.loads(buf[12:])["error"], buf
    worst = max(worst, time.time() - t0)
assert 1.5 < worst < 8, worst
print(f"{worst:.1f}")
EOF
in_node 1 python3 "$TMP/silent.py" "$TMP/n1.sock" 70 >"$TMP/silent.out" 2>&1 ||
	fail "silent clients: $(tail -n 5 "$TMP/silent.out")"
pass "70 silent clients timed out with an error, the last after $(cat "$TMP/silent.out") s"

fetch 1 "$f2" "$TMP/out" && cmp -s "$TMP/out" "$TMP/www/$f2" ||
	fail "n1 no longer serves after the garbage"
qtctl 1 stats >/dev/null || fail "qtctl stats after the garbage: exit $?"
pass "after all that, n1 still serves HTTP and qtctl"

# --- a daemon that is gone
kill_daemon 3 TERM
[ ! -e "$TMP/n3.sock" ] || fail "n3 left its socket behind on a clean stop"
qtctl 3 stats >/dev/null 2>"$TMP/err"
rc=$?
[ "$rc" = 3 ] && grep -q "cannot reach quicktwitchd on $TMP/n3.sock: No such file or directory" "$TMP/err" ||
	fail "stopped daemon: exit $rc, $(cat "$TMP/err")"
pass "stopped daemon: exit 3, \"$(cat "$TMP/err")\""

# A second daemon pointed at a live daemon's socket refuses to start and
# leaves that socket alone.
sed "s|^control-socket .*|control-socket $TMP/n1.sock|" "$TMP/n3.conf" >"$TMP/dup.conf"
in_node 3 timeout 10 "$QTD" -c "$TMP/dup.conf" >"$TMP/dup.log" 2>&1
rc=$?
[ "$rc" = 1 ] && grep -q "another quicktwitchd answers on it" "$TMP/dup.log" ||
	fail "duplicate daemon: exit $rc, $(tail -n 3 "$TMP/dup.log")"
qtctl 1 stats >/dev/null || fail "n1's socket was disturbed by the duplicate"
pass "a daemon finding a live socket refuses to start: $(grep -o 'control socket.*' "$TMP/dup.log")"

# A killed daemon leaves a stale socket: qtctl says so, a new daemon
# removes it.
restart_node 3
kill_daemon 3 KILL
[ -S "$TMP/n3.sock" ] || fail "no stale socket after SIGKILL"
qtctl 3 stats >/dev/null 2>"$TMP/err"
rc=$?
[ "$rc" = 3 ] && grep -q "Connection refused" "$TMP/err" ||
	fail "killed daemon: exit $rc, $(cat "$TMP/err")"
restart_node 3
grep -q "removed a stale socket" "$TMP/n3.log" || fail "stale socket not reported"
qtctl 3 nodes >/dev/null || fail "n3's control socket after restart"
pass "stale socket: qtctl exit 3 (refused); the restarted daemon replaced it"
