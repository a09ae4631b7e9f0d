#!/bin/bash
# Faults, with real traffic through the fronts (issue 8, "Faults"):
#   (a) the back's daemon SIGKILLed during hand-offs: a request loop runs
#       through n1 for n2's paths; n2's daemon is frozen (SIGSTOP) between
#       two hand-offs, the loop goes on, and 300 ms later, while the
#       hand-offs begun since wait for its confirmation, n2 is killed
#       (SIGKILL).  Every client gets its right response (taken back by
#       n1, or, once n2 is down, served by another node), none gets a
#       reset or waits more than 2 s; n1 keeps no steering state; n2
#       restarted gets hand-offs again.
#   (b) the back's link cut mid-transfer: a rate-limited 16 MB download of
#       n2's through n1, then n2's switch port down.  The download fails
#       (unavoidable), but n1 tears its flow down within flow-timeout and
#       a sweep, while every new request for n2's paths (through n1 and
#       n3) is served right elsewhere.  Link back: n2 gets hand-offs
#       again, and no node keeps a flow, a set entry or a steered
#       conntrack entry.
#   (c) the front's link flapping: n1's link down and up four times, 0.5 s
#       each (twice its switch port: carrier lost; twice its own eth0:
#       administratively down), while a request loop runs through n1 for
#       every node's paths.  The daemon keeps running and does not spin,
#       no client gets a reset or a wrong response, requests after the
#       flaps are handed off to and from n1 again, nothing leaks.
#   (d) the conntrack table full on the front: n1's table filled over
#       ctnetlink (nf_conntrack_max is read-only in a child namespace) to
#       no free slot.  48 requests through n1 for n2's and n3's paths are
#       served by n1 at once (right bodies, X-Served-By n1, no error, no
#       hang), steer_failed and taken_back_error count every one, and the
#       log says so in at most one message per peer, each shown at most
#       LOG_RL_BURST times (src/log.c) and then once with "(repeated N
#       times)" for the rest: not a line per request.  Table emptied:
#       hand-offs resume.
# PARTS="b d" runs some of them only.
source "$(dirname "$0")/lib.sh"
require_root
for t in python3 curl tcpdump conntrack ipset; do
	command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit $ksft_skip; }
done
[ -x "$QTCTL" ] || fail "$QTCTL not built"

PARTS=${PARTS:-a b c d}	# the parts to run, for debugging one
FLOW_TIMEOUT=3000
SWEEP=1000
GRACE=500
DEAD_AFTER=600
RL_BURST=10		# LOG_RL_BURST in src/log.c

# flows N [FILTER]: node N's flow records, or those whose JSON matches
# the python expression FILTER on f.
flows() {
	qtctl "$1" list-flows --json | python3 -c '
import json, sys
fl = json.load(sys.stdin)["flows"]
print(sum(1 for f in fl if eval(sys.argv[1])))' "${2:-True}"
}
all_clean() {
	local n
	for n in "${!DPID[@]}"; do
		[ "$(flows "$n")" = 0 ] || { log "n$n: $(flows "$n") flows left"; return 1; }
		nothing_left "$n" || return 1
	done
}
# wait_clean WHAT: within flow-timeout and a few sweeps, no node whose
# daemon runs keeps a flow, a set entry or a steered conntrack entry.
wait_clean() {
	local t0
	t0=$(now_ms)
	busywait $((FLOW_TIMEOUT + 4 * SWEEP + GRACE + 3000)) all_clean >/dev/null ||
		{ all_clean; fail "$1: steering state left"; }
	pass "$1: no flow, set entry or steered conntrack entry left on n$(echo "${!DPID[@]}" | tr " " "\n" | sort | paste -sd,) ($(($(now_ms) - t0)) ms)"
}
# cpu_ms N: node N's daemon's CPU time so far (utime + stime), in ms.
cpu_ms() {
	awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 1000 / hz)}' \
	    "/proc/${DPID[$1]}/stat"
}
# idle_cpu WHAT: with no traffic, no daemon burns CPU (a capture left in
# an error state would spin the event loop).
idle_cpu() {
	local n c0=() c1
	for n in 1 2 3; do c0[n]=$(cpu_ms "$n"); done
	sleep 2
	for n in 1 2 3; do
		c1=$(cpu_ms "$n")
		[ $((c1 - c0[n])) -lt 200 ] ||
			fail "$1: n$n's daemon used $((c1 - c0[n])) ms of CPU in 2 s without traffic"
	done
}
alive() {
	kill -0 "${DPID[$1]}" 2>/dev/null && qtctl "$1" stats --json >/dev/null
}

make_cluster 3
for n in 1 2 3; do
	write_config "$n" "heartbeat-interval 100" "dead-after $DEAD_AFTER" \
	    "flow-timeout $FLOW_TIMEOUT" "sweep-interval $SWEEP" \
	    "conntrack-grace $GRACE" "idle-timeout 3000" "close-wait 2000"
done
# Per node, 6 small objects (1-4 KB) and, for n2, a 16 MB one.
declare -A SMALL
for o in 1 2 3; do
	SMALL[$o]=""
	for k in $(seq 1 300); do
		[ "$(owner "/s$k")" = "$o" ] || continue
		make_file "s$k" $((1000 + k * 10))
		SMALL[$o]="${SMALL[$o]} s$k"
		[ "$(wc -w <<<"${SMALL[$o]}")" -ge 6 ] && break
	done
	[ "$(wc -w <<<"${SMALL[$o]}")" = 6 ] || fail "too few names hash to n$o"
done
BIG=$(name_owned_by 2 big) || fail "no big name hashes to n2"
make_file "$BIG" 16777216

first() { set -- ${SMALL[$1]}; echo "$1"; }
# joblist FRONT... -- OWNER...: "front-address path" lines, every small
# path of each OWNER through each FRONT.
joblist() {
	local fronts=() f o p
	while [ "$1" != -- ]; do fronts+=("$1"); shift; done
	shift
	for o in "$@"; do
		for p in ${SMALL[$o]}; do
			for f in "${fronts[@]}"; do echo "$(addr "$f") /$p"; done
		done
	done
}

# The request loop: THREADS threads cycle over JOBS, each request a new
# connection ("Connection: close") PACE ms after the last, until STOP
# exists (or, with STOP "once", each thread once over JOBS); while
# STOP.pause exists they start none.  One line per request:
# start-ms end-ms front path local-port result served-by, where result is
# ok (status 200, whole body right, then the server's FIN), reset, hang
# (nothing for 10 s), or what else went wrong.
cat >"$TMP/req.py" <<'EOF'
import os, socket, sys, threading, time
jobs_file, docroot, out, stop, threads, pace = sys.argv[1:7]
pace = int(pace) / 1000
jobs = [l.split() for l in open(jobs_file) if l.strip()]
cache = {}
def content(p):
    if p not in cache:
        cache[p] = open(os.path.join(docroot, p.lstrip("/")), "rb").read()
    return cache[p]
lock = threading.Lock()
lines = []
def one(addr, path):
    t0 = time.time()
    s = socket.socket()
    s.settimeout(10)
    port, res, by = 0, "ok", "-"
    try:
        s.connect((addr, 80))
        port = s.getsockname()[1]
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        buf = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            buf += d
        head, sep, body = buf.partition(b"\r\n\r\n")
        hl = head.decode("latin-1").split("\r\n")
        h = dict((k.strip().lower(), v.strip()) for k, _, v in
                 (l.partition(":") for l in hl[1:]))
        by = h.get("x-served-by", "-")
        if not sep:
            res = f"short:{len(buf)}"
        elif hl[0].split()[1] != "200":
            res = "status:" + hl[0].split()[1]
        elif body != content(path):
            res = f"body:{len(body)}/{len(content(path))}"
    except ConnectionResetError:
        res = "reset"
    except socket.timeout:
        res = "hang"
    except Exception as e:
        res = "error:" + type(e).__name__
    finally:
        s.close()
    t1 = time.time()
    with lock:
        lines.append(f"{int(t0 * 1000)} {int(t1 * 1000)} {addr} {path} {port} {res} {by}")
def run(i):
    k = i
    while k < i + len(jobs) if stop == "once" else not os.path.exists(stop):
        if os.path.exists(stop + ".pause"):
            time.sleep(0.005)
            continue
        one(*jobs[k % len(jobs)])
        k += 1
        time.sleep(pace)
ts = [threading.Thread(target=run, args=(i,)) for i in range(int(threads))]
for t in ts:
    t.start()
for t in ts:
    t.join()
with open(out, "w") as f:
    f.write("\n".join(sorted(lines)) + "\n")
EOF
# slow.py ADDR PATH RATE PROGRESS: a download read at RATE bytes/s
# through a small receive buffer; prints its local port first, then
# "complete|reset|stalled BYTES" (stalled: nothing for 5 s); the bytes
# read so far are in PROGRESS.
cat >"$TMP/slow.py" <<'EOF'
import os, socket, sys, time
addr, path, rate, progress = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.settimeout(5)
s.connect((addr, 80))
print(s.getsockname()[1], flush=True)
s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
got, res, t0 = 0, "complete", time.time()
try:
    while True:
        d = s.recv(16384)
        if not d:
            break
        got += len(d)
        with open(progress + ".new", "w") as f:
            f.write(str(got))
        os.replace(progress + ".new", progress)
        time.sleep(max(0, got / rate - (time.time() - t0)))
except ConnectionResetError:
    res = "reset"
except socket.timeout:
    res = "stalled"
print(res, got)
EOF
# loop_start NAME THREADS PACE: the loop over $TMP/NAME.jobs, to
# $TMP/NAME.out.
loop_start() {
	rm -f "$TMP/$1.stop" "$TMP/$1.stop.pause" "$TMP/$1.out"
	ip netns exec "$CL" python3 "$TMP/req.py" "$TMP/$1.jobs" "$TMP/www" \
	    "$TMP/$1.out" "$TMP/$1.stop" "$2" "$3" >"$TMP/$1.err" 2>&1 &
	LOOP_PID=$!
}
loop_stop() {
	touch "$TMP/$1.stop"
	wait "$LOOP_PID" || fail "$1: request loop failed: $(tail -n 3 "$TMP/$1.err")"
	[ -s "$TMP/$1.out" ] || fail "$1: request loop wrote nothing"
}
# loop_report NAME: a summary of the requests; any not ok fails the test,
# with what the daemons logged about the first ones' client ports.
loop_report() {
	local total bad
	total=$(wc -l <"$TMP/$1.out")
	bad=$(awk '$6 != "ok"' "$TMP/$1.out" | wc -l)
	log "$1: $total requests, $bad not ok, slowest $(awk '{d = $2 - $1; if (d > m) m = d} END {print m + 0}' "$TMP/$1.out") ms; by result and server: $(awk '{print $6 "/" $7}' "$TMP/$1.out" | sort | uniq -c | tr -s ' \n' ' ')"
	if [ "$bad" != 0 ]; then
		awk '$6 != "ok"' "$TMP/$1.out" | head -n 10 | sed 's/^/#   /'
		for p in $(awk '$6 != "ok" {print $5}' "$TMP/$1.out" | head -n 3); do
			for m in 1 2 3; do
				grep -F " $CLIENT_ADDR:$p " "$TMP/n$m.log" | tail -n 6 |
				    cut -c 1-200 | sed "s/^/#   n$m: /"
			done
		done
		fail "$1: $bad of $total requests failed"
	fi
}

start_cluster

###########################################################################
part_a() {
	local t_stop tb0 tb1 late slow n rst
	log "(a) n2's daemon frozen, then SIGKILLed, during hand-offs"
	joblist 1 -- 2 >"$TMP/a.jobs"
	tb0=$(counter 1 taken_back_timeout)
	rst_watch_received_start
	loop_start a 4 10
	busywait 5000 eval '[ "$(counter 2 back_flows)" -ge 20 ]' ||
		fail "(a) no hand-offs to n2 before the fault"
	# n2 is frozen between hand-offs: one frozen after its confirmation
	# but before its response would leave the client an empty reply when
	# killed, as any server killed in the middle of a response does.
	# Every hand-off begun from here on is under way when n2 dies.
	touch "$TMP/a.stop.pause"
	busywait 3000 eval '[ "$(flows 1 "f[\"state\"] in (\"reading\", \"replaying\")")" = 0 ]' ||
		fail "(a) the loop does not pause"
	sleep 0.2
	kill -STOP "${DPID[2]}"
	t_stop=$(now_ms)
	rm "$TMP/a.stop.pause"
	sleep 0.3	# half the take-back time: replays captured, unanswered
	n=$(flows 1 "f[\"state\"] == \"replaying\"")
	kill -KILL "${DPID[2]}"
	wait "${DPID[2]}" 2>/dev/null
	unset "DPID[2]"
	log "(a) n2 frozen, then killed 300 ms later with $n hand-offs to it under way"
	[ "$n" -ge 1 ] || fail "(a) no hand-off under way when n2 was killed"
	busywait 3000 grep -q "node n2 .* is down" "$TMP/n1.log" ||
		fail "(a) n1 never saw n2 down"
	sleep 1.5
	loop_stop a
	loop_report a
	tb1=$(counter 1 taken_back_timeout)
	[ $((tb1 - tb0)) -ge "$n" ] ||
		fail "(a) n1 took back $((tb1 - tb0)) connections, $n or more expected"
	late=$(awk -v t="$t_stop" '$1 >= t && $7 == "n2"' "$TMP/a.out" | wc -l)
	[ "$late" = 0 ] || fail "(a) $late requests begun after the freeze were served by n2"
	# Taken back after 3 tries of 200 ms, plus a small response: no hang.
	slow=$(awk '$2 - $1 > 2000' "$TMP/a.out" | wc -l)
	[ "$slow" = 0 ] || fail "(a) $slow requests took more than 2 s"
	pass "(a) every response right, none reset or slower than 2 s; n1 took back $((tb1 - tb0)) hand-offs to the dead n2 and served $(awk -v t="$t_stop" '$1 >= t && $7 == "n1"' "$TMP/a.out" | wc -l) of the requests begun after the freeze itself"
	rst=$(rst_watch_count)
	[ "$rst" = 0 ] || fail "(a) the client received $rst resets"
	pass "(a) no reset at the client"
	wait_clean "(a) n2 killed"

	start_node 2
	busywait 5000 eval 'fetch 1 "$(first 2)" "$TMP/a1" >/dev/null 2>&1 && [ "$(served_by "$TMP/a1.h")" = 2 ]' ||
		fail "(a) n2 restarted gets no hand-off from n1"
	pass "(a) n2 restarted: hand-offs to it resume"
}

###########################################################################
# rst_count_but_cut: stops the reset watch; the resets the client received
# but those on (b)'s cut download: n2's socket for it times out minutes
# later (tcp_orphan_retries) and may end in a reset to that port while a
# later part watches.
CUT_PORT=""
rst_count_but_cut() {
	rst_watch_count >/dev/null
	if [ -n "$CUT_PORT" ]; then
		tcpdump -nn -r "$TMP/rst.pcap" "not port $CUT_PORT" 2>/dev/null | wc -l
	else
		tcpdump -nn -r "$TMP/rst.pcap" 2>/dev/null | wc -l
	fi
}

part_b() {
	local t_cut t_gone port res td0 td1 tail ups late rst got cpid
	log "(b) n2's link cut while it serves a handed-off download"
	td0=$(counter 1 teardown_sweep)
	# shellcheck disable=SC2034  # in an eval below
	ups=$(grep -c "node n2 .* is up" "$TMP/n1.log")
	rst_watch_received_start
	ip netns exec "$CL" python3 "$TMP/slow.py" "$(addr 1)" "/$BIG" 1048576 \
	    "$TMP/b.got" >"$TMP/b.slow" 2>&1 &
	cpid=$!
	busywait 5000 test -s "$TMP/b.slow" || fail "(b) the download did not start"
	port=$(head -n 1 "$TMP/b.slow")
	CUT_PORT=$port
	busywait 5000 eval '[ "$(flows 1 "f[\"client\"].endswith(\":$port\") and f[\"state\"] == \"handed-off\" and f[\"peer\"] == \"n2\"")" = 1 ]' ||
		fail "(b) the download was not handed off to n2"
	busywait 5000 eval '[ "$(cat "$TMP/b.got" 2>/dev/null || echo 0)" -ge 1048576 ]' ||
		fail "(b) the download does not progress"
	joblist 1 3 -- 2 >"$TMP/b.jobs"
	loop_start b 2 20
	sleep 0.5
	ip -n "$SW" link set n2 down
	t_cut=$(now_ms)
	got=$(cat "$TMP/b.got")
	log "(b) n2's link down with $got bytes received, client port $port"
	[ "$got" -lt 16777216 ] || fail "(b) the download was over before the cut"
	busywait 15000 eval '[ "$(flows 1 "f[\"client\"].endswith(\":$port\")")" = 0 ]' ||
		fail "(b) n1 still has the flow of port $port 15 s after the cut"
	t_gone=$(($(now_ms) - t_cut))
	[ "$t_gone" -le $((FLOW_TIMEOUT + 2 * SWEEP + GRACE + 1000)) ] ||
		fail "(b) n1 dropped the flow $t_gone ms after the cut, more than flow-timeout $FLOW_TIMEOUT + 2 sweeps + grace"
	in_node 1 ipset list | grep -q ",tcp:$port," &&
		fail "(b) n1 keeps the flow's set entry"
	in_node 1 conntrack -L -p tcp --sport "$port" --dport 80 2>/dev/null | grep -q "sport=$port " &&
		fail "(b) n1 keeps the flow's conntrack entry"
	td1=$(counter 1 teardown_sweep)
	[ $((td1 - td0)) -ge 1 ] || fail "(b) teardown_sweep did not count it"
	grep -q " $CLIENT_ADDR:$port .*swept: back silent" "$TMP/n1.log" ||
		fail "(b) no sweep log line for port $port"
	pass "(b) n1 tore the dead back's flow down $t_gone ms after the cut (flow-timeout $FLOW_TIMEOUT ms)"

	wait "$cpid" || fail "(b) the download client failed: $(tail -n 3 "$TMP/b.slow")"
	read -r res got < <(tail -n 1 "$TMP/b.slow")
	[ "$res" != complete ] || fail "(b) the download completed through a cut link"
	log "(b) the download failed, as it must: $res after $got of 16777216 bytes"
	sleep 1
	loop_stop b
	loop_report b
	late=$(awk -v t="$t_cut" '$1 >= t && $7 == "n2"' "$TMP/b.out" | wc -l)
	[ "$late" = 0 ] || fail "(b) $late requests were served by n2 through a cut link"
	pass "(b) every request for n2's paths during the cut served right by $(awk -v t="$t_cut" '$1 >= t {print $7}' "$TMP/b.out" | sort -u | tr '\n' ' ')"

	ip -n "$SW" link set n2 up
	busywait 5000 eval '[ "$(grep -c "node n2 .* is up" "$TMP/n1.log")" -gt "$ups" ]' ||
		fail "(b) n1 does not see n2 up again"
	busywait 5000 eval 'fetch 1 "$(first 2)" "$TMP/b1" >/dev/null 2>&1 && [ "$(served_by "$TMP/b1.h")" = 2 ]' ||
		fail "(b) n2 gets no hand-off after its link came back"
	pass "(b) link back: hand-offs to n2 resume"
	wait_clean "(b) link back"
	# What n2's kernel still holds of the download: once n1 stops steering
	# it, the client's answers (an RST from its closed socket) reach n1,
	# not n2, so n2's socket can only time out (tcp_orphan_retries).
	log "(b) n2's kernel, hand-off sockets other than TIME-WAIT: $(in_node 2 ss -tanH "( sport >= :8001 and sport <= :8063 )" | grep -v "^TIME-WAIT" | awk '{print $1, $3, "bytes unsent to", $5}' | tr '\n' ';')"
	# The client's port is excluded: its failed transfer may end in one.
	rst=$(tcpdump -nn -r "$TMP/rst.pcap" "not port $port" 2>/dev/null | wc -l)
	tail=$(rst_watch_count)
	[ "$rst" = 0 ] || fail "(b) other clients received $rst resets"
	pass "(b) no reset to any other client ($((tail - rst)) on the cut download's port)"
}

###########################################################################
part_c() {
	local i f t_last after bad rst
	log "(c) n1's link flapping while clients use it"
	joblist 1 -- 1 2 3 >"$TMP/c.jobs"
	rst_watch_received_start
	loop_start c 3 20
	sleep 1
	# Odd flaps: n1's switch port (n1 loses carrier, as when a cable or
	# a switch fails).  Even flaps: n1's own eth0 (administratively down:
	# its routes go, its packet sockets get ENETDOWN).
	for i in 1 2 3 4; do
		if [ $((i % 2)) = 1 ]; then
			ip -n "$SW" link set n1 down
			sleep 0.5
			ip -n "$SW" link set n1 up
		else
			ip -n "$(ns 1)" link set eth0 down
			sleep 0.5
			ip -n "$(ns 1)" link set eth0 up
		fi
		sleep 0.7
	done
	t_last=$(now_ms)
	alive 1 || fail "(c) n1's daemon is gone"
	sleep 3
	loop_stop c
	loop_report c
	after=$(awk -v t=$((t_last + 1000)) '$1 >= t' "$TMP/c.out" | wc -l)
	[ "$after" -ge 10 ] || fail "(c) only $after requests after the flaps"
	# After the flaps, each path through n1 is served by its owner: n1
	# hands off again.
	bad=$(awk -v t=$((t_last + 1000)) '$1 >= t' "$TMP/c.out" | while read -r _ _ _ p _ _ by; do
		[ "n$(owner "$p")" = "$by" ] || echo x; done | wc -l)
	[ "$bad" = 0 ] || fail "(c) $bad of $after requests after the flaps not served by their owner"
	pass "(c) n1 alive, $after requests after the flaps all right and served by their owners"
	# n1 as a back, too.
	for f in 2 3; do
		fetch "$f" "$(first 1)" "$TMP/c1" || fail "(c) fetch through n$f failed"
		[ "$(served_by "$TMP/c1.h")" = 1 ] || fail "(c) n$f no longer hands off to n1"
	done
	pass "(c) n2 and n3 hand off to n1 again"
	idle_cpu "(c)"
	pass "(c) no daemon busy without traffic"
	rst=$(rst_count_but_cut)
	[ "$rst" = 0 ] || {
		tcpdump -nn -tt -r "$TMP/rst.pcap" 2>/dev/null | head -n 10 | sed 's/^/# /'
		for p in $(tcpdump -nn -r "$TMP/rst.pcap" 2>/dev/null |
		    sed -n "s/.* > $CLIENT_ADDR\.\([0-9]*\):.*/\1/p" | sort -u | head -n 3); do
			grep -h " $CLIENT_ADDR:$p " "$TMP"/n*.log | cut -c 1-200 | sed 's/^/#   /'
		done
		fail "(c) the client received $rst resets"
	}
	pass "(c) no reset at the client"
	wait_clean "(c) flaps"
}

###########################################################################

part_d() {
	local max sf0 tb0 sf1 tb1 lines0 n k bad slow p t0 rep shown total msgs
	local most rst FILLED
	log "(d) n1's conntrack table full"
	max=$(in_node 1 cat /proc/sys/net/netfilter/nf_conntrack_max)
	[ "$max" -le 1100000 ] || { log "(d) SKIPPED: nf_conntrack_max is $max, too many to fill"; return; }
	count() { in_node 1 cat /proc/sys/net/netfilter/nf_conntrack_count; }
	# Entries of earlier flows would expire and free slots: no flow is
	# left (wait_clean), but n1's finished connections as a back keep
	# entries for seconds (CLOSE, TIME_WAIT: its responses are SNATed, so
	# tracked); expiring during the burst below, they let hand-offs
	# through (seen: 45 of 48).  They go now; the band's entries stay,
	# refreshed by the heartbeats.
	in_node 1 conntrack -D -p tcp >/dev/null 2>&1 || true
	t0=$(now_ms)
	FILLED=()	# entries added with filler port 9+k
	for k in 0 1 2 3; do
		[ "$(count)" -ge "$max" ] && break
		FILLED[$k]=$((max - $(count) + 200))
		in_node 1 python3 "$QT_SRC/tests/integration/ctfill.py" "${FILLED[$k]}" "$(addr 1)" \
		    $((9 + k)) 200 >"$TMP/fill" || fail "(d) cannot fill n1's table"
	done
	[ "$(count)" -ge "$max" ] || fail "(d) table not full: $(count) of $max"
	in_node 1 "$QT_BUILD/qtnf" ct-create-dnat "$CLIENT_ADDR" 9999 "$(addr 1)" 80 \
	    "$(addr 2)" 8001 60 2>"$TMP/d.err" &&
		fail "(d) the table still takes an entry"
	grep -q ENOMEM "$TMP/d.err" || fail "(d) a create fails with: $(cat "$TMP/d.err")"
	log "(d) n1's table filled in $(($(now_ms) - t0)) ms: $(count) of $max entries, a create fails with ENOMEM"

	rst_watch_received_start
	sf0=$(counter 1 steer_failed)
	tb0=$(counter 1 taken_back_error)
	lines0=$(wc -l <"$TMP/n1.log")
	# 48 requests in a burst (one rate-limit window), one at a time.
	for k in 1 2 3 4; do joblist 1 -- 2 3; done >"$TMP/d.jobs"
	n=$(wc -l <"$TMP/d.jobs")
	ip netns exec "$CL" python3 "$TMP/req.py" "$TMP/d.jobs" "$TMP/www" \
	    "$TMP/d.out" once 1 0 >"$TMP/d.err" 2>&1 ||
		fail "(d) request client failed: $(tail -n 3 "$TMP/d.err")"
	[ "$(wc -l <"$TMP/d.out")" = "$n" ] || fail "(d) $(wc -l <"$TMP/d.out") of $n requests made"
	loop_report d
	bad=$(awk '$7 != "n1"' "$TMP/d.out" | wc -l)
	[ "$bad" = 0 ] || fail "(d) $bad of $n requests not served by n1"
	slow=$(awk '$2 - $1 >= 1000' "$TMP/d.out" | wc -l)
	[ "$slow" = 0 ] || fail "(d) $slow of $n requests took 1 s or more"
	pass "(d) table full: $n requests for n2's and n3's paths served right by n1 itself, slowest in $(awk '{d = $2 - $1; if (d > m) m = d} END {print m + 0}' "$TMP/d.out") ms"
	sf1=$(counter 1 steer_failed)
	tb1=$(counter 1 taken_back_error)
	[ $((sf1 - sf0)) = "$n" ] || fail "(d) steer_failed counted $((sf1 - sf0)) of $n failed hand-offs"
	[ $((tb1 - tb0)) = "$n" ] || fail "(d) taken_back_error counted $((tb1 - tb0)) of $n"
	pass "(d) steer_failed and taken_back_error count all $n"

	# The log: each message about it at most RL_BURST times, then once with
	# "(repeated N times)" for the rest (src/log.c), once the rate-limit
	# window (10 s) is over and the daemon logs anything else (a request of
	# n1's own); not a line per flow.
	full_log() {
		tail -n +$((lines0 + 1)) "$TMP/n1.log" | grep -i "conntrack table.*full"
	}
	counted() {
		full_log | awk -v n="$n" '
		    /\(repeated [0-9]+ times\)/ { sub(/.*\(repeated /, ""); r += $1; next }
		    { s++ }
		    END { exit !(s + r >= n) }'
	}
	if [ "$(full_log | wc -l)" -lt "$n" ]; then
		busywait 20000 eval 'fetch 1 "$(first 1)" "$TMP/d2" >/dev/null 2>&1
		    sleep 0.5; counted' || true
	fi
	full_log >"$TMP/d.log"
	# Each distinct message (its text without the summary's suffix): how
	# often shown, how many left out.
	sed 's/^[^:]*: [a-z]*: //' "$TMP/d.log" | awk '
	    { rep = 0 }
	    /\(repeated [0-9]+ times\)$/ {
		rep = $0; sub(/.*\(repeated /, "", rep); rep += 0
		sub(/ \(repeated [0-9]+ times\)$/, "")
	    }
	    { if (rep) r[$0] += rep; else s[$0]++; seen[$0] = 1 }
	    END { for (m in seen) printf "%d %d %s\n", s[m], r[m], m }' >"$TMP/d.msgs"
	total=$(wc -l <"$TMP/d.log")
	shown=$(awk '{s += $1} END {print s + 0}' "$TMP/d.msgs")
	rep=$(awk '{s += $2} END {print s + 0}' "$TMP/d.msgs")
	msgs=$(wc -l <"$TMP/d.msgs")
	most=$(awk '$1 > m {m = $1} END {print m + 0}' "$TMP/d.msgs")
	log "(d) n1's log about the full table: $total lines, $msgs distinct messages (shown, left out, text):"
	sort -rn "$TMP/d.msgs" | head -n 4 | cut -c 1-200 | sed 's/^/#   /'
	if [ "$shown" -lt 1 ]; then
		check_fail "(d) the failed hand-offs are not logged"
	elif [ "$most" -gt "$RL_BURST" ] || [ "$msgs" -gt 2 ]; then
		check_fail "(d) the full table is logged once per request ($shown lines in $msgs distinct messages for $n requests), not rate-limited with a count"
	elif [ $((shown + rep)) != "$n" ]; then
		check_fail "(d) $shown lines and $rep counted repeats for $n failed hand-offs"
	else
		pass "(d) logged $shown times, the other $rep counted in \"(repeated N times)\" lines"
	fi

	# Room again: hand-offs resume.
	t0=$(now_ms)
	for k in "${!FILLED[@]}"; do
		in_node 1 python3 "$QT_SRC/tests/integration/ctfill.py" "${FILLED[$k]}" "$(addr 1)" \
		    $((9 + k)) 200 delete >/dev/null
	done
	[ "$(count)" -lt 1000 ] || fail "(d) n1's table still holds $(count) entries"
	log "(d) table emptied in $(($(now_ms) - t0)) ms: $(count) entries left"
	for p in ${SMALL[2]} ${SMALL[3]}; do
		fetch 1 "$p" "$TMP/d1" || fail "(d) /$p failed after the table was emptied"
		cmp -s "$TMP/d1" "$TMP/www/$p" || fail "(d) /$p: wrong body"
		[ "n$(served_by "$TMP/d1.h")" = "n$(owner "/$p")" ] ||
			fail "(d) /$p served by n$(served_by "$TMP/d1.h"), not by its owner n$(owner "/$p")"
	done
	[ "$(counter 1 steer_failed)" = "$sf1" ] || fail "(d) steering still fails"
	pass "(d) table emptied: hand-offs resume"
	rst=$(rst_count_but_cut)
	[ "$rst" = 0 ] || fail "(d) the client received $rst resets"
	pass "(d) no reset at the client"
	wait_clean "(d) full table"
}

for p in $PARTS; do
	"part_$p"
	for n in 1 2 3; do alive "$n" || fail "after ($p): n$n's daemon is gone"; done
done
[ "$FAILS" = 0 ] || fail "$FAILS checks failed"
echo PASS
