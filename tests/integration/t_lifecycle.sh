#!/bin/bash
# Every flow accounted for, nothing ever leaks.  10,000 hand-offs through
# the three fronts (each to a path another node owns), whose clients
#   (a) close normally: wrk, "Connection: close", every request a new
#       connection; no socket error, no non-2xx, every body right and from
#       its owner,
#   (b) reset mid-transfer: part of a 2 MB body, checked, then SO_LINGER 0,
#   (c) half-close: request, shutdown(SHUT_WR), the whole response, then
#       the server's FIN within 3 s; keep-alive and "Connection: close",
#   (d) vanish: a second client namespace starts 16 MB downloads, stops
#       reading, and its link goes down for good.
# Then a client binds a fixed source port and fetches again right after
# each flow ends, closing first or letting the server close: each
# connection answered at once, handed off, its response complete and right.
# After the load and after the reuses, a busywait (up to 3 min) for the
# daemons to end everything: no flow record (qtctl list-flows), no set
# entry, no steered conntrack entry on any node.  The client namespace
# receives no reset on a live connection, and the port-reuse clients send
# none (a reset there answers a challenge ACK from a socket of the
# previous connection).
source "$(dirname "$0")/lib.sh"
require_root
for t in python3 wrk tcpdump conntrack ipset; do
	command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 4; }
done
[ -x "$QTCTL" ] || fail "$QTCTL not built"

TOTAL=10000		# hand-offs in all
N_RESET=300		# (b)
N_HALF=300		# (c), half keep-alive, half "Connection: close"
N_VANISH=30		# (d)
REUSE_ROUNDS=4		# per front and per closing side
N_REUSE=$((3 * 2 * REUSE_ROUNDS))
N_WRK=$((TOTAL - N_RESET - N_HALF - N_VANISH - N_REUSE))
WRK_QUOTA=$(((N_WRK + 2) / 3))	# per front
WRK_CONNS=16
SWEEP_CAP=180		# s

CL2="$NS_PREFIX-c2"
CLIENT2_ADDR=198.18.0.101

make_cluster 3
link_host "$CL2" "$CLIENT2_ADDR" c1
# Short timeouts, so that what the daemons must end on their own ends
# within the test: a stalled back flow after 5 s idle and 2 s close-wait.
for n in 1 2 3; do
	write_config "$n" "idle-timeout 5000" "close-wait 2000" \
	    "sweep-interval 1000" "flow-timeout 15000"
done

# --- objects
# wrk's: each body starts with its own path, so a response names what it
# is; wrk checks it against the owner and the body, byte for byte
# (handoffcheck.lua).
for k in $(seq 1 90); do
	{ printf '/w%d\n' "$k"; head -c $((1000 + k * 89)) /dev/urandom; } \
	    >"$TMP/www/w$k"
done
declare -A OWN
for k in $(seq 1 90); do OWN[w$k]=$(owner "/w$k"); done
# Per owner: a 2 MB object to reset, 256 KB to half-close, 16 MB to
# vanish from, 64 KB to fetch from a reused port.
declare -A OBJ
for o in 1 2 3; do
	for kind in rst:2097152 half:262144 big:16777216 reuse:65536; do
		f=$(name_owned_by "$o" "${kind%%:*}") || fail "no ${kind%%:*} name hashes to n$o"
		make_file "$f" "${kind#*:}"
		OBJ[${kind%%:*}$o]=$f
	done
done
# jobs_for KIND: "front-address path owner size" for every front and every
# other node: each one a hand-off.
jobs_for() {
	local f o p
	for f in 1 2 3; do
		for o in 1 2 3; do
			[ "$f" = "$o" ] && continue
			p=${OBJ[$1$o]}
			echo "$(addr "$f") /$p n$o $(stat -c %s "$TMP/www/$p")"
		done
	done
}
for kind in rst half big; do jobs_for "$kind" >"$TMP/jobs.$kind"; done

# wrk: one process per front, Connection: close, cycling over the paths
# other nodes own; each stops at its quota and leaves a marker.
for f in 1 2 3; do
	{
		echo "small, big, owner = {}, {}, {}"
		for k in $(seq 1 90); do
			[ "${OWN[w$k]}" = "$f" ] && continue
			echo "table.insert(small, \"/w$k\")"
			echo "owner[\"/w$k\"] = \"n${OWN[w$k]}\""
		done
		cat <<EOF
docroot = "$TMP/www"
big_every = 0
quota = $WRK_QUOTA
marker = "$TMP/wrk$f.done"
front = "n$f"
EOF
		cat "$QT_SRC/tests/integration/handoffcheck.lua"
	} >"$TMP/wrk$f.lua"
	n=$(grep -c 'table.insert(small' "$TMP/wrk$f.lua")
	[ "$n" -ge 20 ] || fail "front n$f: only $n paths owned by other nodes"
done

# The python clients.  Each prints a summary line "ok=N err=M" then up
# to 10 errors, and writes the local ports it used (one a line).
cat >"$TMP/cl.py" <<'EOF'
import errno, os, random, socket, struct, sys, threading, time

mode = sys.argv[1]
docroot = sys.argv[2]
cache = {}

def content(path):
    if path not in cache:
        with open(os.path.join(docroot, path.lstrip("/")), "rb") as f:
            cache[path] = f.read()
    return cache[path]

def read_head(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise Exception(f"EOF after {len(buf)} header bytes")
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    h = {}
    for l in lines[1:]:
        k, v = l.split(":", 1)
        h[k.strip().lower()] = v.strip()
    return status, h, rest

def check_head(status, h, owner, size):
    if status != 200:
        raise Exception(f"status {status}")
    if h.get("x-served-by") != owner:
        raise Exception(f"served by {h.get('x-served-by')}, owner {owner}"
                        " (taken back?)")
    if int(h.get("content-length", -1)) != size:
        raise Exception(f"content-length {h.get('content-length')}, want {size}")

def request(path, close):
    return (f"GET {path} HTTP/1.1\r\nHost: x\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode()

class Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.errs = []
        self.ports = []
    def port(self, p):
        with self.lock:
            self.ports.append(p)
    def good(self):
        with self.lock:
            self.ok += 1
    def bad(self, what):
        with self.lock:
            self.errs.append(what)
    def report(self, out):
        with open(out + ".ports", "w") as f:
            f.write("".join(f"{p}\n" for p in self.ports))
        with open(out, "w") as f:
            f.write(f"ok={self.ok} err={len(self.errs)}\n")
            f.write("".join(f"  {e}\n" for e in self.errs[:10]))

def load_jobs(path):
    with open(path) as f:
        return [(a, p, o, int(n)) for a, p, o, n in
                (l.split() for l in f if l.strip())]

# pool N WORKERS FN: FN(0..N-1) on WORKERS threads; what has not started
# after 120 s is left out (and so missing from the counts).
def pool(n, workers, fn):
    lock = threading.Lock()
    nxt = [0]
    end = time.time() + 120
    def run():
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= n or time.time() > end:
                return
            fn(i)
    ts = [threading.Thread(target=run) for _ in range(workers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()

# (b): read part of the body, check it, reset.
def reset_one(r, jobs, i):
    addr, path, owner, size = jobs[i % len(jobs)]
    rnd = random.Random(i)
    s = socket.socket()
    s.settimeout(10)
    try:
        s.connect((addr, 80))
        r.port(s.getsockname()[1])
        s.sendall(request(path, False))
        status, h, body = read_head(s)
        check_head(status, h, owner, size)
        want = rnd.randint(65536, size // 2)
        while len(body) < want:
            d = s.recv(65536)
            if not d:
                raise Exception(f"EOF after {len(body)} bytes")
            body += d
        if body != content(path)[:len(body)]:
            raise Exception("body differs")
        r.good()
    except Exception as e:
        r.bad(f"{addr} {path} port {s.getsockname()[1]}: {e!r}")
    finally:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
        s.close()

# (c): request, SHUT_WR, the whole response, then the server's FIN.
def half_one(r, jobs, i):
    addr, path, owner, size = jobs[i % len(jobs)]
    close = i % 2 == 1
    s = socket.socket()
    s.settimeout(10)
    try:
        s.connect((addr, 80))
        r.port(s.getsockname()[1])
        s.sendall(request(path, close))
        s.shutdown(socket.SHUT_WR)
        status, h, body = read_head(s)
        check_head(status, h, owner, size)
        while len(body) < size:
            d = s.recv(65536)
            if not d:
                raise Exception(f"EOF after {len(body)} of {size} bytes")
            body += d
        if body != content(path):
            raise Exception("body differs")
        # The client has said it sends nothing more: the server closes
        # once the response is out, keep-alive or not (a local flow does
        # at once), well before the 5 s idle timeout.
        s.settimeout(3)
        t0 = time.time()
        try:
            d = s.recv(65536)
        except socket.timeout:
            raise Exception(f"{'close' if close else 'keep-alive'}: no FIN "
                            "from the server 3 s after the response")
        if d:
            raise Exception(f"{len(d)} bytes past the response")
        r.good()
    except Exception as e:
        r.bad(f"{addr} {path} port {s.getsockname()[1]} "
              f"{'close' if close else 'keep-alive'}: {e!r}")
    finally:
        s.close()

# (d): start a download, stop reading, wait to be killed.
def vanish(out, jobs, n):
    r = Results()
    socks = []
    def one(i):
        addr, path, owner, size = jobs[i % len(jobs)]
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.settimeout(10)
        try:
            s.connect((addr, 80))
            r.port(s.getsockname()[1])
            s.sendall(request(path, False))
            status, h, body = read_head(s)
            check_head(status, h, owner, size)
            while len(body) < 262144:
                d = s.recv(65536)
                if not d:
                    raise Exception(f"EOF after {len(body)} bytes")
                body += d
            if body != content(path)[:len(body)]:
                raise Exception("body differs")
            r.good()
        except Exception as e:
            r.bad(f"{addr} {path} port {s.getsockname()[1]}: {e!r}")
        socks.append(s)		# never read again, never closed
    pool(n, 8, one)
    r.report(out)
    time.sleep(600)

# Source port reuse: the same port, round after round, right after the
# previous flow ended.
def reuse(out, addr, path, owner, size, port, side, rounds):
    lines = []
    ok = handed = 0
    for k in range(rounds):
        t0 = time.time()
        res = "ok"
        by = "-"
        while True:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.settimeout(10)
            tc = time.time()
            try:
                s.bind(("198.18.0.100", port))
                s.connect((addr, 80))
                break
            except OSError as e:
                s.close()
                if e.errno not in (errno.EADDRNOTAVAIL, errno.EADDRINUSE) \
                        or time.time() - t0 > 5:
                    res = f"connect: {e!r}"
                    break
                time.sleep(0.001)
        t1 = time.time()
        # A fresh connection: its SYN answered at once (the first
        # retransmission of a lost SYN comes after 1 s).  A slow one is a
        # failed round, yet the request still goes: every round's flow is
        # handed off, and the next round reuses the port right after it.
        bad = []
        if res != "ok":
            bad.append(res)
        elif t1 - tc > 0.5:
            bad.append(f"connect took {(t1 - tc) * 1000:.0f} ms: the SYN "
                       "was lost and retransmitted")
        try:
            if res != "ok":
                raise Exception("not connected")
            s.sendall(request(path, side == "server"))
            status, h, body = read_head(s)
            by = h.get("x-served-by")
            check_head(status, h, owner, size)
            while True:
                if side == "client" and len(body) >= size:
                    break
                d = s.recv(65536)
                if not d:
                    break
                body += d
            if body != content(path):
                raise Exception(f"body differs ({len(body)} of {size} bytes)")
            handed += 1
        except Exception as e:
            if res == "ok":
                bad.append(repr(e))
        finally:
            s.close()
        t2 = time.time()
        if not bad:
            ok += 1
        lines.append(f"round {k + 1}: port {port}: free after "
                     f"{(tc - t0) * 1000:.0f} ms, connected in "
                     f"{(t1 - tc) * 1000:.0f} ms, response in "
                     f"{(t2 - t1) * 1000:.0f} ms from {by}: "
                     + ("; ".join(bad) if bad else "ok"))
    with open(out, "w") as f:
        f.write(f"ok={ok} err={rounds - ok} handed-off={handed}\n")
        f.write("".join(f"  {l}\n" for l in lines))

if mode in ("reset", "half"):
    jobs, n, out = load_jobs(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    r = Results()
    one = reset_one if mode == "reset" else half_one
    pool(n, 4, lambda i: one(r, jobs, i))
    r.report(out)
elif mode == "vanish":
    vanish(sys.argv[5], load_jobs(sys.argv[3]), int(sys.argv[4]))
elif mode == "reuse":
    a = sys.argv[3:]
    reuse(a[6], a[0], a[1], a[2], int(a[3]), int(a[4]), a[5], int(a[7]))
EOF

# summary FILE: its first line, "ok=N err=M".
summary() { head -n 1 "$1"; }
# port_logs ADDR FILE: the daemons' log lines about the client ports
# named in FILE's error lines ("port N"), the first three.
port_logs() {
	local p m
	for p in $(sed -n 's/.* port \([0-9]*\)[ :].*/\1/p' "$2" | head -n 3); do
		for m in 1 2 3; do
			grep -F " $1:$p " "$TMP/n$m.log" | tail -n 6 |
			    cut -c 1-200 | sed "s/^/#   n$m: /"
		done
	done
}
count_of() {
	local v
	v=$(summary "$2" 2>/dev/null | sed -n "s/.*$1=\([0-9]*\).*/\1/p")
	echo "${v:-0}"
}

start_cluster
rst_watch_received_start
# Every SYN, FIN and RST of the client namespace: the resets it sends
# (the (b) clients') for the record, and the state of each connection a
# received reset hit.
flags_watch_start

log "load: wrk $WRK_QUOTA x 3 fronts ($WRK_CONNS connections each), $N_RESET resets, $N_HALF half-closes, $N_VANISH vanishing, then $N_REUSE port reuses"
T_LOAD=$(now_ms)
ip netns exec "$CL2" python3 "$TMP/cl.py" vanish "$TMP/www" "$TMP/jobs.big" \
    "$N_VANISH" "$TMP/vanish.out" >"$TMP/vanish.log" 2>&1 &
VANISH_PID=$!
declare -A WRK_PID
for f in 1 2 3; do
	ip netns exec "$CL" wrk -t1 -c"$WRK_CONNS" -d300s --timeout 5s \
	    -H 'Connection: close' -s "$TMP/wrk$f.lua" "http://$(addr "$f")/" \
	    >"$TMP/wrk$f.out" 2>&1 &
	WRK_PID[$f]=$!
done
in_client python3 "$TMP/cl.py" reset "$TMP/www" "$TMP/jobs.rst" "$N_RESET" \
    "$TMP/reset.out" >"$TMP/reset.log" 2>&1 &
declare -A PY_PID
PY_PID[reset]=$!
in_client python3 "$TMP/cl.py" half "$TMP/www" "$TMP/jobs.half" "$N_HALF" \
    "$TMP/half.out" >"$TMP/half.log" 2>&1 &
PY_PID[half]=$!

# (d) Once every download has started and stalled, the second client's
# link goes down and never comes back.
busywait 60000 test -s "$TMP/vanish.out" ||
	fail "vanishing clients did not start: $(tail -n 3 "$TMP/vanish.log")"
ip -n "$SW" link set c1 down
T_VANISH=$(now_ms)
kill "$VANISH_PID" 2>/dev/null
wait "$VANISH_PID" 2>/dev/null
n=$(count_of ok "$TMP/vanish.out")
log "(d) vanishing: $(summary "$TMP/vanish.out") downloads started, link down $(((T_VANISH - T_LOAD) / 1000)) s into the load"
[ "$n" = "$N_VANISH" ] || {
	check_fail "(d) $((N_VANISH - n)) of $N_VANISH downloads did not start right:
$(tail -n +2 "$TMP/vanish.out")"
	port_logs "$CLIENT2_ADDR" "$TMP/vanish.out"
}

for w in reset half; do
	wait "${PY_PID[$w]}" || check_fail "($w) client exited $?: $(tail -n 3 "$TMP/$w.log")"
done
n=$(count_of ok "$TMP/reset.out")
log "(b) resets mid-transfer: $(summary "$TMP/reset.out")"
if [ "$n" = "$N_RESET" ]; then
	pass "(b) $N_RESET clients read part of a 2 MB body (right bytes) and reset"
else
	check_fail "(b) $((N_RESET - n)) of $N_RESET reset clients went wrong:
$(tail -n +2 "$TMP/reset.out")"
	port_logs "$CLIENT_ADDR" "$TMP/reset.out"
fi
n=$(count_of ok "$TMP/half.out")
log "(c) half-closes: $(summary "$TMP/half.out")"
if [ "$n" = "$N_HALF" ]; then
	pass "(c) $N_HALF half-closed clients got the whole response and the server's FIN"
else
	check_fail "(c) $((N_HALF - n)) of $N_HALF half-closed clients went wrong:
$(tail -n +2 "$TMP/half.out")"
	port_logs "$CLIENT_ADDR" "$TMP/half.out"
fi

# (a) wrk: stop each at its quota (its duration is only a cap).
cap=150000
for f in 1 2 3; do
	busywait "$cap" test -s "$TMP/wrk$f.done" || {
		check_fail "(a) wrk through n$f did not reach $WRK_QUOTA responses"
		cap=1000
	}
	kill -INT "${WRK_PID[$f]}" 2>/dev/null
	wait "${WRK_PID[$f]}"
done
T_WRK=$(now_ms)
wrk_req=0 wrk_err=0 wrk_bad=0
for f in 1 2 3; do
	o=$TMP/wrk$f.out
	req=$(awk '/requests in/ {print $1}' "$o")
	secs=$(awk '/requests in/ {sub(",", "", $4); print $4}' "$o")
	sock=$(awk '/Socket errors:/ {print $4 + $6 + $8 + $10}' "$o")
	non2xx=$(awk '/Non-2xx/ {print $NF}' "$o")
	lua=$(grep '^lua:' "$o")
	bad=$(awk '/^lua:/ {print $5}' "$o")
	log "(a) wrk through n$f: ${req:-?} requests in ${secs:-?}, socket errors ${sock:-0}, non-2xx ${non2xx:-0}, wrong body/server ${bad:-?}${lua:+ ($lua)}"
	[ -n "$req" ] && [ -n "$bad" ] || {
		check_fail "(a) wrk through n$f: no figures: $(tail -n 5 "$o")"
		continue
	}
	wrk_req=$((wrk_req + req))
	wrk_err=$((wrk_err + ${sock:-0} + ${non2xx:-0}))
	wrk_bad=$((wrk_bad + bad))
done
[ "$wrk_req" -ge $((3 * WRK_QUOTA)) ] ||
	check_fail "(a) wrk completed $wrk_req requests, $((3 * WRK_QUOTA)) expected"
if [ "$wrk_err" = 0 ] && [ "$wrk_bad" = 0 ]; then
	pass "(a) wrk: $wrk_req requests, each a new connection handed off, no error"
else
	check_fail "(a) wrk: $wrk_err errors, $wrk_bad wrong bodies or servers in $wrk_req requests"
fi
log "load done in $(((T_WRK - T_LOAD) / 1000)).$(((T_WRK - T_LOAD) % 1000 / 100)) s"

# --- the sweep: every flow ends, every set entry and steered conntrack
# entry goes, first after the load, then after the port reuses.
LAST_SHOWN=0
all_clean() {
	local n fl st ct clean=1 line=""
	for n in 1 2 3; do
		fl=$(flows_of "$n")
		st=$(sets_of "$n")
		ct=$(ct_of "$n")
		line="$line n$n: $fl flows, $st set entries, $ct conntrack;"
		[ "$fl" = 0 ] && [ "$st" = 0 ] && [ "$ct" = 0 ] || clean=0
	done
	if [ $(($(now_ms) - LAST_SHOWN)) -ge 10000 ]; then
		log "t+$((($(now_ms) - T_SWEEP) / 1000)) s:$line"
		LAST_SHOWN=$(now_ms)
	fi
	[ "$clean" = 1 ]
}
# wait_clean WHAT: busywait until no node has a flow, a set entry or a
# steered conntrack entry; prints how long it took.
wait_clean() {
	local t
	T_SWEEP=$(now_ms)
	LAST_SHOWN=$T_SWEEP
	if busywait $((SWEEP_CAP * 1000)) all_clean; then
		t=$(($(now_ms) - T_SWEEP))
		pass "every node clean $((t / 1000)).$((t % 1000 / 100)) s after $1"
	else
		check_fail "nodes not clean $SWEEP_CAP s after $1"
	fi
}
log "waiting for the sweep; the vanishing link went down $((($(now_ms) - T_VANISH) / 1000)) s ago"
wait_clean "the load"

# --- source port reuse, right after each flow ends: the client closes
# first (its connect() on the explicitly bound port takes over its own
# TIME_WAIT at once: Linux allows that with timestamps) or the server
# does ("Connection: close").
# The reused ports' packets, to show what went wrong in a failed round.
ip netns exec "$CL" tcpdump -i eth0 --immediate-mode -p -nn -U -w "$TMP/reuse.pcap" \
    'tcp portrange 20010-20031' >/dev/null 2>&1 &
REUSE_CAP_PID=$!
busywait 3000 test -s "$TMP/reuse.pcap" || true
reuse_ok=0 reuse_handed=0
for side in client server; do
	for f in 1 2 3; do
		o=$((f % 3 + 1))
		p=${OBJ[reuse$o]}
		port=$((20000 + f * 10))
		[ "$side" = server ] && port=$((port + 1))
		out=$TMP/reuse-$side-$f.out
		echo "$port" >>"$TMP/reuse.ports"
		in_client python3 "$TMP/cl.py" reuse "$TMP/www" "$(addr "$f")" \
		    "/$p" "n$o" "$(stat -c %s "$TMP/www/$p")" "$port" "$side" \
		    "$out" "$REUSE_ROUNDS" >"$TMP/reuse.log" 2>&1 ||
			check_fail "reuse client: $(tail -n 3 "$TMP/reuse.log")"
		n=$(count_of ok "$out")
		reuse_ok=$((reuse_ok + n))
		reuse_handed=$((reuse_handed + $(count_of handed-off "$out")))
		log "reuse, $side closes first, front n$f, back n$o: $(summary "$out")"
		sed 's/^/#/' "$out" | tail -n +2
		[ "${n:-0}" = "$REUSE_ROUNDS" ] || {
			check_fail "port reuse ($side closes first, n$f to n$o): $((REUSE_ROUNDS - ${n:-0})) of $REUSE_ROUNDS rounds failed"
			[ -n "${REUSE_BAD:-}" ] || REUSE_BAD=$port
		}
	done
done
kill -INT "$REUSE_CAP_PID" 2>/dev/null
wait "$REUSE_CAP_PID" 2>/dev/null
if [ -n "${REUSE_BAD:-}" ]; then
	log "port $REUSE_BAD, as the client saw it: SYN, FIN, RST, and the server's packets without payload"
	tcpdump -nn -r "$TMP/reuse.pcap" "tcp port $REUSE_BAD" 2>/dev/null |
	    awk '/Flags \[[^]]*[SFR]/ || (/\.80 > 198\.18\.0\.100/ && / length 0/)' |
	    sed 's/, options \[[^]]*\]//; s/^/#   /' | head -n 16
	echo " port $REUSE_BAD " >"$TMP/reuse.bad"
	port_logs "$CLIENT_ADDR" "$TMP/reuse.bad"
fi
[ "$reuse_ok" = "$N_REUSE" ] &&
	pass "port reuse: $N_REUSE connections on reused ports answered at once, handed off, responses complete and right"

wait_clean "the port reuses"

# Per node, the spec's assertions, and on failure what is left, by the
# kind of client it belonged to.
cat "$TMP"/reset.out.ports >"$TMP/kind.reset" 2>/dev/null
cat "$TMP"/half.out.ports >"$TMP/kind.half" 2>/dev/null
cat >"$TMP/left.py" <<'EOF'
import collections, json, sys
tmp, n = sys.argv[1], sys.argv[2]
kinds = {}
for k in ("reset", "half", "reuse"):
    try:
        for p in open(f"{tmp}/kind.{k}" if k != "reuse" else f"{tmp}/reuse.ports"):
            kinds[int(p)] = k
    except FileNotFoundError:
        pass
flows = json.load(sys.stdin)["flows"]
by = collections.Counter()
for f in flows:
    ip, port = f["client"].split(":")
    kind = "vanish" if ip == "198.18.0.101" else kinds.get(int(port), "wrk")
    by[(f["role"], f["state"], kind, f["peer"])] += 1
for (role, state, kind, peer), c in sorted(by.items()):
    ages = sorted(f["age"] for f in flows if (f["role"], f["state"], f["peer"]) == (role, state, peer))
    print(f"#   {c} {role} {state} (clients: {kind}, peer {peer}), ages {ages[0]}..{ages[-1]} ms")
for f in flows[:3]:
    print(f"#   e.g. {json.dumps(f)}")
    print(f"CLIENT {f['client']}")
EOF
for n in 1 2 3; do
	fl=$(flows_of "$n")
	if [ "$fl" = 0 ]; then
		pass "n$n: no flow record"
		states_agree "$n" && pass "n$n: stats count no flow in any state" ||
			check_fail "n$n: stats' flows by state are not its records'"
	else
		check_fail "n$n: $fl flow records left:"
		qtctl "$n" list-flows --json | python3 "$TMP/left.py" "$TMP" "$n" >"$TMP/left$n"
		grep -v '^CLIENT' "$TMP/left$n"
		for c in $(sed -n 's/^CLIENT //p' "$TMP/left$n"); do
			for m in 1 2 3; do
				grep -F " $c " "$TMP/n$m.log" | tail -n 4 | sed "s/^/#   n$m log: /"
			done
		done
	fi
	if nothing_left "$n"; then
		pass "n$n: no set entry, no steered conntrack entry"
	else
		check_fail "n$n keeps steering state"
		in_node "$n" ipset list 2>/dev/null |
		    awk '/^Name:/ {s=$2} /^Members:/ {m=1; next} /^Name:/ {m=0} m && NF {print "#   set " s ": " $0}' | head -n 5
		in_node "$n" conntrack -L -p tcp --dport 80 2>/dev/null | head -n 5 | sed 's/^/#   ct: /'
	fi
done

# --- figures: the daemons' own count of what happened
for n in 1 2 3; do qtctl "$n" stats --json >"$TMP/s$n.json" || check_fail "n$n stats"; done
python3 - "$TMP" >"$TMP/stats.txt" <<'EOF'
import json, sys
tmp = sys.argv[1]
keys = ["accepted", "handoffs", "handed_off", "back_flows", "taken_back",
        "taken_back_timeout", "taken_back_refused", "taken_back_error",
        "resends", "dup_replays", "refused", "teardown_report",
        "teardown_fin", "teardown_rst", "teardown_sweep"]
tot = {}
for n in (1, 2, 3):
    c = json.load(open(f"{tmp}/s{n}.json"))["counters"]
    print("# n%d: " % n + ", ".join(f"{k} {c[k]}" for k in keys if k in c))
    for k in keys:
        tot[k] = tot.get(k, 0) + c.get(k, 0)
print("TOTAL " + " ".join(f"{k}={v}" for k, v in tot.items()))
EOF
grep -v '^TOTAL' "$TMP/stats.txt"
handed=$(sed -n 's/.*handed_off=\([0-9]*\).*/\1/p' "$TMP/stats.txt")
clients=$((wrk_req + $(count_of ok "$TMP/reset.out") + $(count_of ok "$TMP/half.out") + \
    $(count_of ok "$TMP/vanish.out") + reuse_handed))
log "hand-offs: $clients completed right at the clients, ${handed:-?} confirmed by the fronts"
[ "$clients" -ge "$TOTAL" ] ||
	check_fail "only $clients hand-offs completed right at the clients, $TOTAL expected"
[ "${handed:-0}" -ge "$TOTAL" ] ||
	check_fail "the fronts count ${handed:-0} confirmed hand-offs, $TOTAL expected"
for n in 1 2 3; do
	log "n$n kernel: $(in_node "$n" ss -tanH 2>/dev/null | awk '{print $1}' | sort | uniq -c | tr -s ' \n' ' ')sockets, $(in_node "$n" conntrack -C 2>/dev/null) conntrack entries"
done

flags_watch_stop
rst=$(rst_watch_count)
sent=$(tcpdump -nn -r "$TMP/flags.pcap" "ip src host $CLIENT_ADDR and tcp[tcpflags] & tcp-rst != 0" 2>/dev/null | wc -l)
reuse_rst=$(tcpdump -nn -r "$TMP/flags.pcap" "ip src host $CLIENT_ADDR and tcp[tcpflags] & tcp-rst != 0 and tcp src portrange 20010-20031" 2>/dev/null | wc -l)
log "resets: $sent sent by the client namespace ($reuse_rst of them by the port-reuse clients, the rest by the (b) clients), $rst received"
# A port-reuse client resets only in answer to a challenge ACK: its new
# SYN met the previous connection's socket, still on that tuple in the
# front's kernel, instead of the listener (a reconnect 10 ms later, or no
# answer for a second).  The front closes its frozen socket as soon as
# the replay is out, so none may be left by the time a client is done.
if [ "$reuse_rst" = 0 ]; then
	pass "port reuse: no SYN met the previous connection's socket (no reset from the reusing clients)"
else
	check_fail "port reuse: $reuse_rst resets from the reusing clients: their SYNs met the previous connections' sockets"
fi
# Received resets, on live connections (failures) or after both FINs
# (harmless): see rstclass.py.
# Any reset the SYN/FIN capture missed counts as live.
rst_classify 20 "$rst"
live=$RST_LIVE after=$RST_AFTER
dropped=$(sed -n 's/ packets dropped by kernel//p' "$TMP/flags.err")
log "resets received: $live on live connections, $after after both FINs (the SYN/FIN/RST capture dropped ${dropped:-?} packets)"
grep '^AFTER' "$TMP/rst.class" | head -n 2 | cut -c 1-400 | sed 's/^/#   /'
if [ "$rst" = 0 ] || [ "$live" = 0 ]; then
	pass "no reset received on a live connection by the normal clients"
else
	check_fail "$live TCP resets received on live connections by the client namespace"
	grep '^LIVE' "$TMP/rst.class" | head -n 5 | cut -c 1-400 | sed 's/^/#   /'
	sed -n 's/^LIVE \([0-9]*\) .*/ port \1 /p' "$TMP/rst.class" >"$TMP/rst.ports"
	port_logs "$CLIENT_ADDR" "$TMP/rst.ports"
fi

[ "$FAILS" = 0 ] || fail "$FAILS checks failed"
pass "every flow accounted for, nothing left: $clients hand-offs in $((($(now_ms) - T_LOAD) / 1000)) s"
