#!/bin/bash
# Soak: N hand-offs (default 100,000) through the three fronts of a
# three-node cluster, then nothing may be left behind.
#
#   wrk      one process per front, 64 connections in all, each request a
#            new connection ("Connection: close") for a path another node
#            owns, so that each one is a hand-off; bodies of 1 KB, and one
#            request in BIG_EVERY of 1 MB.  The Lua script checks every
#            response: status 200, X-Served-By the path's owner (a response
#            the front took back counts as a failure: it was no hand-off),
#            and the body byte for byte.
#   resets   RESETS python clients (4 at a time, during the wrk load) read
#            part of a 1 MB body, check it, and reset (SO_LINGER 0): the
#            only resets allowed.
#
# Then, within SWEEP_CAP seconds, no node may keep a flow record (qtctl
# list-flows), a set entry or a steered conntrack entry.  It prints the
# figures: requests, errors by kind, time, hand-offs per second, per-node
# counters, and how long the nodes took to be clean.  Unlike the other
# benchmarks it asserts: it exits 1 on any client error other than the
# resets it caused, a reset received on a live connection, fewer than N
# hand-offs, or anything left behind; 2 if its setup fails.
#
# tests/integration/t_lifecycle.sh is the shorter version CI runs (10,000
# hand-offs with half-closes, vanishing clients and port reuse as well).
#
# Environment:
#   N=100000       hand-offs in all (wrk's and the resetting clients')
#   CONNS=64       wrk connections, over the three fronts
#   BIG_EVERY=8    one wrk request in BIG_EVERY is for a 1 MB body
#   RESETS=N/100   clients that reset mid-transfer
#   SWEEP_CAP=180  seconds the nodes have to be clean after the load
#   KEEP=/tmp/qt-soak.PID  where the logs and captures go when it fails
#   QT_BUILD=<repo>/build

set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
QT_BUILD=${QT_BUILD:-$REPO/build}
N=${N:-100000}
CONNS=${CONNS:-64}
BIG_EVERY=${BIG_EVERY:-8}
RESETS=${RESETS:-$((N / 100))}
SWEEP_CAP=${SWEEP_CAP:-180}

die() { echo "bench/soak.sh: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root: it builds network namespaces"
for v in N CONNS BIG_EVERY RESETS SWEEP_CAP; do
	case ${!v} in '' | *[!0-9]*) die "$v must be a non-negative integer" ;; esac
done
[ "$CONNS" -ge 3 ] || die "CONNS must be at least 3"
[ "$BIG_EVERY" -ge 1 ] || die "BIG_EVERY must be at least 1"
[ "$RESETS" -lt "$N" ] || die "RESETS must be less than N"
for t in wrk python3 tcpdump conntrack ipset ip awk; do
	command -v "$t" >/dev/null || die "$t not found"
done
if [ ! -x "$QT_BUILD/quicktwitchd" ] || [ ! -x "$QT_BUILD/qtctl" ] ||
    [ ! -x "$QT_BUILD/qtpick" ]; then
	echo "# building in $QT_BUILD"
	if ! cmake -S "$REPO" -B "$QT_BUILD" >/dev/null ||
	    ! cmake --build "$QT_BUILD" -j"$(nproc)" --target quicktwitchd \
	    qtctl qtpick >/dev/null; then
		die "build failed"
	fi
fi

export QT_BUILD
# shellcheck source=tests/integration/lib.sh
source "$REPO/tests/integration/lib.sh"
require_root
# lib.sh's fail() exits 1: a setup failure here is 2.
fail() {
	printf 'FAIL: %s\n' "$*"
	dump_logs
	exit 2
}

N_WRK=$((N - RESETS))
QUOTA=$(((N_WRK + 2) / 3))	# per front
secs() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); }

make_cluster 3
for n in 1 2 3; do
	write_config "$n" "idle-timeout 5000" "close-wait 2000" \
	    "sweep-interval 1000" "flow-timeout 15000"
done

# --- objects: per owner, 8 of 1 KB and 2 of 1 MB, each starting with its
# own path so that a response names what it is.
declare -A OWN
for kind in k:1024:8 m:1048576:2; do
	IFS=: read -r pre size want <<<"$kind"
	declare -A got=([1]=0 [2]=0 [3]=0)
	for i in $(seq 1 400); do
		o=$(owner "/$pre$i")
		[ "${got[$o]}" -lt "$want" ] || continue
		got[$o]=$((got[$o] + 1))
		p="/$pre$i"
		{ printf '%s\n' "$p"; head -c $((size - ${#p} - 1)) /dev/urandom; } \
		    >"$TMP/www/$pre$i"
		OWN[$pre$i]=$o
		[ $((got[1] + got[2] + got[3])) = $((3 * want)) ] && break
	done
	[ $((got[1] + got[2] + got[3])) = $((3 * want)) ] ||
		fail "too few $pre names for every node"
	unset got
done

# --- wrk: one process per front, stopped at its quota.
for f in 1 2 3; do
	{
		echo "small, big, owner = {}, {}, {}"
		for p in "${!OWN[@]}"; do
			[ "${OWN[$p]}" = "$f" ] && continue
			case $p in
			k*) echo "table.insert(small, \"/$p\")" ;;
			m*) echo "table.insert(big, \"/$p\")" ;;
			esac
			echo "owner[\"/$p\"] = \"n${OWN[$p]}\""
		done
		cat <<EOF
docroot = "$TMP/www"
quota = $QUOTA
big_every = $BIG_EVERY
marker = "$TMP/wrk$f.done"
front = "n$f"
EOF
		cat "$REPO/tests/integration/handoffcheck.lua"
	} >"$TMP/wrk$f.lua"
done

# --- the resetting clients: "front-address path owner size" jobs, every
# 1 MB object through every other front.
for p in "${!OWN[@]}"; do
	case $p in m*) ;; *) continue ;; esac
	for f in 1 2 3; do
		[ "${OWN[$p]}" = "$f" ] && continue
		echo "$(addr "$f") /$p n${OWN[$p]} $(stat -c %s "$TMP/www/$p")"
	done
done >"$TMP/jobs.rst"
cat >"$TMP/reset.py" <<'EOF'
import os, random, socket, struct, sys, threading
jobs = [(a, p, o, int(n)) for a, p, o, n in
        (l.split() for l in open(sys.argv[1]) if l.strip())]
docroot, n, out = sys.argv[2], int(sys.argv[3]), sys.argv[4]
content = {p: open(os.path.join(docroot, p.lstrip("/")), "rb").read()
           for _, p, _, _ in jobs}
lock = threading.Lock()
ok, errs, nxt = [0], [], [0]
def one(i):
    addr, path, owner, size = jobs[i % len(jobs)]
    want = random.Random(i).randint(65536, size // 2)
    s = socket.socket()
    s.settimeout(10)
    try:
        s.connect((addr, 80))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                raise Exception(f"EOF after {len(buf)} header bytes")
            buf += d
        head, body = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        h = {k.strip().lower(): v.strip() for k, v in
             (l.split(":", 1) for l in lines[1:])}
        if lines[0].split()[1] != "200":
            raise Exception(lines[0])
        if h.get("x-served-by") != owner:
            raise Exception(f"served by {h.get('x-served-by')}, owner {owner}")
        while len(body) < want:
            d = s.recv(65536)
            if not d:
                raise Exception(f"EOF after {len(body)} bytes")
            body += d
        if body != content[path][:len(body)]:
            raise Exception("body differs")
        with lock:
            ok[0] += 1
    except Exception as e:
        with lock:
            errs.append(f"{addr} {path}: {e!r}")
    finally:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
def run():
    while True:
        with lock:
            i = nxt[0]
            nxt[0] += 1
        if i >= n:
            return
        one(i)
ts = [threading.Thread(target=run) for _ in range(4)]
for t in ts:
    t.start()
for t in ts:
    t.join()
with open(out, "w") as f:
    f.write(f"ok={ok[0]} err={len(errs)}\n")
    f.write("".join(f"  {e}\n" for e in errs[:10]))
EOF

start_cluster
for n in 1 2 3; do qtctl "$n" stats --json >"$TMP/s0-$n.json" || fail "n$n stats"; done
# Every SYN, FIN and RST of the client namespace (headers only): the resets
# it sends, and the state of each connection a received reset hit.
flags_watch_start -s 96 -B 16384

echo "# soak: $N hand-offs: wrk $QUOTA x 3 fronts ($CONNS connections in all, 1 KB bodies and one in $BIG_EVERY of 1 MB), $RESETS clients resetting mid-transfer"
T0=$(now_ms)
declare -A WRK_PID
for f in 1 2 3; do
	c=$((CONNS / 3 + (f <= CONNS % 3 ? 1 : 0)))
	ip netns exec "$CL" wrk -t1 -c"$c" -d3600s --timeout 10s \
	    -H 'Connection: close' -s "$TMP/wrk$f.lua" "http://$(addr "$f")/" \
	    >"$TMP/wrk$f.out" 2>&1 &
	WRK_PID[$f]=$!
done
in_client python3 "$TMP/reset.py" "$TMP/jobs.rst" "$TMP/www" "$RESETS" \
    "$TMP/reset.out" >"$TMP/reset.log" 2>&1 &
RESET_PID=$!

# Progress every 30 s from the fronts' counters; wrk stops at its quota.
last=$T0
while :; do
	left=0
	for f in 1 2 3; do [ -s "$TMP/wrk$f.done" ] || left=1; done
	[ "$left" = 0 ] && break
	for f in 1 2 3; do
		kill -0 "${WRK_PID[$f]}" 2>/dev/null || [ -s "$TMP/wrk$f.done" ] || {
			check_fail "wrk through n$f ended before its quota: $(tail -n 3 "$TMP/wrk$f.out")"
			touch "$TMP/wrk$f.done"
		}
	done
	if [ $(($(now_ms) - last)) -ge 30000 ]; then
		last=$(now_ms)
		h=0
		for n in 1 2 3; do
			h=$((h + $(qtctl "$n" stats --json | python3 -c \
			    'import json, sys; print(json.load(sys.stdin)["counters"]["handed_off"])')))
		done
		echo "# t+$(((last - T0) / 1000)) s: $h hand-offs confirmed"
	fi
	sleep 1
done
for f in 1 2 3; do
	kill -INT "${WRK_PID[$f]}" 2>/dev/null
	wait "${WRK_PID[$f]}"
done
wait "$RESET_PID" || check_fail "resetting clients exited $?: $(tail -n 3 "$TMP/reset.log")"
T_LOAD=$(now_ms)
LOAD_MS=$((T_LOAD - T0))

# --- the clients' view
echo
echo "# clients"
printf '# %-6s %8s %7s %9s %8s %8s %8s %8s %8s %7s %7s %7s %5s\n' front requests time \
    "req/s" connect read write timeout non-2xx status server body "t-b"
wrk_req=0 wrk_err=0 wrk_bad=0
declare -A ERR=([connect]=0 [read]=0 [write]=0 [timeout]=0 [non2xx]=0 [status]=0 [server]=0 [body]=0 [taken_back]=0)
for f in 1 2 3; do
	o=$TMP/wrk$f.out
	req=$(awk '/requests in/ {print $1}' "$o")
	secs=$(awk '/requests in/ {sub(",", "", $4); print $4}' "$o")
	rps=$(awk '/^Requests\/sec/ {print $2}' "$o")
	read -r sc sr sw st < <(awk '/Socket errors:/ {gsub(",", ""); print $4, $6, $8, $10}' "$o")
	non2xx=$(awk '/Non-2xx/ {print $NF}' "$o")
	read -r _ _ _ _ bad _ bst _ bsv _ bbd _ btb msg < <(grep '^lua:' "$o")
	printf '# n%-5s %8s %7s %9s %8s %8s %8s %8s %8s %7s %7s %7s %5s\n' "$f" \
	    "${req:-?}" "${secs:-?}" "${rps:-?}" "${sc:-0}" "${sr:-0}" "${sw:-0}" \
	    "${st:-0}" "${non2xx:-0}" "${bst:-?}" "${bsv:-?}" "${bbd:-?}" "${btb:-?}"
	[ -n "${msg:-}" ] && echo "#   n$f, first bad response: $msg"
	if [ -z "$req" ] || [ -z "${bad:-}" ]; then
		check_fail "wrk through n$f: no figures: $(tail -n 5 "$o")"
		continue
	fi
	wrk_req=$((wrk_req + req))
	for pair in connect:sc read:sr write:sw timeout:st non2xx:non2xx \
	    status:bst server:bsv body:bbd taken_back:btb; do
		var=${pair#*:}
		ERR[${pair%%:*}]=$((ERR[${pair%%:*}] + ${!var:-0}))
	done
	wrk_err=$((wrk_err + ${sc:-0} + ${sr:-0} + ${sw:-0} + ${st:-0} + ${non2xx:-0}))
	wrk_bad=$((wrk_bad + bad))
done
grep -h '^    Latency' "$TMP"/wrk?.out | sed 's/^ */# wrk latency (avg, stdev, max): /' | head -n 3
rst_ok=$(sed -n 's/^ok=\([0-9]*\).*/\1/p' "$TMP/reset.out" 2>/dev/null)
rst_err=$(sed -n 's/.* err=\([0-9]*\).*/\1/p' "$TMP/reset.out" 2>/dev/null)
echo "# resetting clients: ${rst_ok:-?} read part of a 1 MB body (checked) and reset, ${rst_err:-?} failed"
[ "${rst_err:-1}" = 0 ] && [ "${rst_ok:-0}" = "$RESETS" ] || {
	check_fail "resetting clients: ${rst_ok:-?} of $RESETS right:"
	tail -n +2 "$TMP/reset.out" 2>/dev/null | sed 's/^/#  /'
}
clients=$((wrk_req - wrk_bad + ${rst_ok:-0}))
echo "# errors by kind: $(for k in connect read write timeout non2xx status server body; do printf '%s %d, ' "$k" "${ERR[$k]}"; done | sed 's/, $//') (of which taken back by the front: ${ERR[taken_back]})"
[ "$wrk_err" = 0 ] && [ "$wrk_bad" = 0 ] ||
	check_fail "wrk: $wrk_err socket errors or non-2xx, $wrk_bad wrong statuses, servers or bodies in $wrk_req requests"

# --- the nodes' view
for n in 1 2 3; do qtctl "$n" stats --json >"$TMP/s1-$n.json" || check_fail "n$n stats"; done
python3 - "$TMP" >"$TMP/stats.txt" <<'EOF'
import json, sys
tmp = sys.argv[1]
keys = ["accepted", "handoffs", "handed_off", "back_flows", "taken_back",
        "taken_back_timeout", "taken_back_refused", "taken_back_error",
        "steer_failed", "resends", "dup_replays", "refused",
        "teardown_report", "teardown_fin", "teardown_rst",
        "teardown_sweep", "teardown_reuse"]
rows, tot = [], {}
for n in (1, 2, 3):
    a = json.load(open(f"{tmp}/s0-{n}.json"))["counters"]
    b = json.load(open(f"{tmp}/s1-{n}.json"))["counters"]
    d = {k: b.get(k, 0) - a.get(k, 0) for k in keys}
    rows.append(d)
    for k in keys:
        tot[k] = tot.get(k, 0) + d[k]
print("# %-20s %10s %10s %10s %10s" % ("counter", "n1", "n2", "n3", "total"))
for k in keys:
    print("# %-20s %10d %10d %10d %10d" % (k, rows[0][k], rows[1][k], rows[2][k], tot[k]))
print("TOTAL " + " ".join(f"{k}={v}" for k, v in tot.items()))
EOF
echo
echo "# node counters during the soak"
grep -v '^TOTAL' "$TMP/stats.txt"
handed=$(sed -n 's/.* handed_off=\([0-9]*\).*/\1/p' "$TMP/stats.txt")
echo
echo "# hand-offs: $clients completed right at the clients, ${handed:-?} confirmed by the fronts, in $(secs "$LOAD_MS") s: $((clients * 1000 / (LOAD_MS > 0 ? LOAD_MS : 1))) hand-offs/s"
[ "$clients" -ge "$N" ] ||
	check_fail "only $clients hand-offs completed right at the clients, $N expected"
[ "${handed:-0}" -ge "$N" ] ||
	check_fail "the fronts count ${handed:-0} confirmed hand-offs, $N expected"

# --- nothing left: flows, set entries, steered conntrack entries
STATE=""
all_clean() {
	local n fl st ct clean=1
	STATE=""
	for n in 1 2 3; do
		fl=$(flows_of "$n")
		st=$(sets_of "$n")
		ct=$(ct_of "$n")
		STATE="$STATE n$n: $fl flows, $st set entries, $ct steered conntrack;"
		[ "$fl" = 0 ] && [ "$st" = 0 ] && [ "$ct" = 0 ] || clean=0
	done
	[ "$clean" = 1 ]
}
echo
all_clean
echo "# right after the load:$STATE"
if busywait $((SWEEP_CAP * 1000)) all_clean; then
	echo "# every node clean $(secs $(($(now_ms) - T_LOAD))) s after the load:$STATE"
else
	check_fail "nodes not clean $SWEEP_CAP s after the load:$STATE"
	for n in 1 2 3; do
		qtctl "$n" list-flows --json 2>/dev/null | python3 -c '
import collections, json, sys
fl = json.load(sys.stdin)["flows"]
c = collections.Counter((f["role"], f["state"], f["peer"]) for f in fl)
for (r, s, p), k in sorted(c.items()):
    print(f"#   n'"$n"': {k} {r} {s} peer {p}")
for f in fl[:3]:
    print("#   n'"$n"': e.g. " + json.dumps(f))'
	done
fi
for n in 1 2 3; do
	echo "# n$n kernel: $(in_node "$n" ss -tanH 2>/dev/null | awk '{print $1}' | sort | uniq -c | tr -s ' \n' ' ')sockets, $(in_node "$n" conntrack -C 2>/dev/null) conntrack entries (all kinds, expiring on their own)"
done

# --- resets: sent by the resetting clients; received ones must not hit a
# live connection.  One that comes after both FINs, when the client has
# had the whole response and closed, harms nothing (a server's late ACK
# re-ACKed from TIME_WAIT, answered by a socket already gone).
rst_classify
sent=$RST_SENT live=$RST_LIVE after=$RST_AFTER
dropped=$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$TMP/flags.err")
echo "# resets: ${sent:-?} sent by the client namespace (the resetting clients, and wrk's connections under way when it stops at its quota), ${live:-?} received on live connections, ${after:-?} after both FINs; the capture dropped ${dropped:-?} packets"
if [ "${live:-1}" != 0 ]; then
	check_fail "${live:-?} resets received on live connections"
	grep '^LIVE' "$TMP/rst.class" | cut -c 1-400 | sed 's/^/#   /'
	# What the daemons logged about those client ports, last lines.
	for p in $(sed -n 's/^LIVE \([0-9]*\) .*/\1/p' "$TMP/rst.class"); do
		for n in 1 2 3; do
			grep -F " $CLIENT_ADDR:$p " "$TMP/n$n.log" | tail -n 4 |
			    cut -c 1-200 | sed "s/^/#   n$n: /"
		done
	done
fi
[ "${dropped:-0}" = 0 ] ||
	echo "# (the capture missed packets: a reset among them would not be counted)"

echo
if [ "$FAILS" != 0 ]; then
	# The evidence outlives the namespaces.
	keep=${KEEP:-/tmp/qt-soak.$$}
	mkdir -p "$keep" && cp "$TMP"/n?.log "$TMP"/n?.conf "$TMP"/wrk?.out \
	    "$TMP"/reset.out "$TMP"/flags.pcap "$TMP"/rst.class "$keep"/ 2>/dev/null
	echo "# logs, wrk output and the SYN/FIN/RST capture kept in $keep"
	echo "FAIL: $FAILS checks failed"
	exit 1
fi
echo "PASS: $N hand-offs in $(secs "$LOAD_MS") s, no client error but the $RESETS resets it caused, nothing left behind"
