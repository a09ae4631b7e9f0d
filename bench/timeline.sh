#!/bin/bash
# Benchmark: where a hand-off's time to first byte goes.
#
# A two-node cluster and a client in namespaces (tests/integration/lib.sh).
# N sequential requests (default 200), each on a fresh connection, for a
# 1 KB object owned by n2, in turn through n1 (a hand-off), straight to n2
# (direct) and, with UPSTREAM set, straight to n2's nginx on :8080 (nginx:
# what the daemon's relay to it costs is direct minus nginx).  One
# capture on the switch's ports (one clock for every namespace)
# timestamps, per connection:
#
#   req     the client's request leaves the client's port
#   replay  n1's replay (SYN with the request) leaves n1's port
#   resp    the first response byte leaves the serving node's port
#
# and prints the medians and p90 of req->replay (the front: its wake-up,
# parse, steering, freeze, replay), replay->resp (the back: its capture's
# wake-up, checks, rebuild, response) and req->resp, with the direct
# request's req->resp beside it (and the nginx request's); then, for the
# hand-off and the direct request, the handshake (the client's SYN to
# the SYN-ACK), the SYN-ACK to the request, and the SYN to the first
# response byte, what a client's time to first byte holds.  Figures
# only; exits 0 unless the setup fails.
#
# Then the daemons' own account of the same hand-offs (qtctl stats, its
# step timings): n1's steps from the request's arrival in its kernel to
# the replay sent, n2's from the replay's arrival to the first response
# byte (the direct requests add to n2's front_wake only).
#
# Environment: N=200, QT_BUILD=<repo>/build, LOG_FLOWS (empty: default),
# UPSTREAM=0 (1: each node relays to its own nginx over a unix socket, as
# in bench/compare.sh, instead of its built-in responder; tcp: the same
# over 127.0.0.1:8080; direct requests then go through n2's relay too), PIN=0 (1: the comparison's layout, as
# in bench/compare.sh: n1's daemon on CPU 0, everything else on CPU 1,
# receive packet steering of n1's interface to CPU 0 and of the others to
# CPU 1, so every hop between the front and the rest crosses CPUs),
# CAPTURE=1 (0: no capture on the switch, only the daemons' timings).
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
export QT_BUILD=${QT_BUILD:-$REPO/build}
N=${N:-200}
LOG_FLOWS=${LOG_FLOWS-}
UPSTREAM=${UPSTREAM:-0}
PIN=${PIN:-0}
CAPTURE=${CAPTURE:-1}
source "$REPO/tests/integration/lib.sh"
source "$REPO/bench/lib.sh"
require_root
# Everything started from here runs on CPU 1, but what is moved to CPU 0.
[ "$PIN" = 1 ] && { taskset -p -c 1 $$ >/dev/null || fail "taskset failed"; }
for t in curl tcpdump python3; do
	command -v "$t" >/dev/null || { echo "$t not installed"; exit 1; }
done

make_cluster 2
f=$(name_owned_by 2 tl) || fail "no name hashes to n2"
make_file "$f" 1024
case $UPSTREAM in 0 | 1 | tcp) ;; *) fail "UPSTREAM must be 0, 1 or tcp" ;; esac
if [ "$UPSTREAM" != 0 ]; then
	command -v nginx >/dev/null || fail "nginx not found"
	for i in 1 2; do
		up=127.0.0.1:8080
		[ "$UPSTREAM" = 1 ] && up=unix:$TMP/up$i.sock
		# and on the node's address, :8080, for the requests
		# straight to nginx
		nginx_start "$i" "$up" "server { listen $(addr "$i"):8080;
		    root $TMP/www; add_header X-Served-By n$i; }"
		write_config "$i"
		sed -i "s|^service http port 80 handoff-base 8000\$|& upstream $up|" "$TMP/n$i.conf"
	done
fi
start_cluster
if [ "$PIN" = 1 ]; then
	taskset -a -p -c 0 "${DPID[1]}" >/dev/null || fail "cannot pin n1's daemon"
	for n in "$(ns 1):1" "$(ns 2):2" "$CL:2"; do
		in_ns "${n%:*}" sh -c "echo ${n#*:} > /sys/class/net/eth0/queues/rx-0/rps_cpus" ||
		    fail "cannot set rps_cpus in ${n%:*}"
	done
fi
fetch 1 "$f" "$TMP/out" || fail "curl failed"
[ "$(served_by "$TMP/out.h")" = 2 ] || fail "not handed off to n2"

# Saved to a file with a large buffer (printed as it went, the capture
# lost more than half of the packets), and read back in the switch's
# namespace: a saved -i any capture names interfaces by index, and
# reading it elsewhere gets them wrong.
if [ "$CAPTURE" = 1 ]; then
	ip netns exec "$SW" tcpdump -i any -p -nn -B 16384 -w "$TMP/tl.pcap" \
	    'tcp and (port 80 or port 8080 or portrange 8001-8063)' \
	    2>"$TMP/tl.err" &
	CAP=$!
fi
sleep 1
# One curl process for all requests: no process start between them, each
# on its own connection.
urls=()
to=("$(addr 1)" "$(addr 2)")
[ "$UPSTREAM" != 0 ] && to+=("$(addr 2):8080")
for i in $(seq 0 $((N - 1))); do
	urls+=(-o /dev/null "http://${to[$((i % ${#to[@]}))]}/$f")
done
in_client curl -sS -H "Connection: close" "${urls[@]}" ||
	fail "curl failed"
sleep 1
if [ "$CAPTURE" = 1 ]; then
	kill -INT "$CAP"
	wait "$CAP"
	ip netns exec "$SW" tcpdump -r "$TMP/tl.pcap" -nn -tt >"$TMP/tl.txt" \
	    2>>"$TMP/tl.err" || fail "cannot read the capture"
	grep -H "dropped by kernel" "$TMP/tl.err" | sed 's/^[^:]*:/capture: /'

python3 -c '
import re, statistics, sys
client, n1, n2 = sys.argv[1:4]
pk = re.compile(r"^(\S+) (\S+) +(P|In|Out) +IP (\S+)\.(\d+) > (\S+)\.(\d+): "
                r"Flags \[([^\]]*)\].*length (\d+)")
req, rep, resp, via, syn, synack = {}, {}, {}, {}, {}, {}
for line in sys.stdin:
    m = pk.match(line)
    if not m:
        continue
    ts, dev, d, sa, sp, da, dp, fl, ln = m.groups()
    t, ln = float(ts), int(ln)
    if d == "Out":			# as it enters the switch
        continue
    if dev == "c0" and sa == client and dp in ("80", "8080") and fl == "S":
        syn.setdefault(sp, t)
    elif da == client and sp in ("80", "8080") and fl == "S.":
        synack.setdefault(dp, t)
    elif dev == "c0" and sa == client and dp in ("80", "8080") and ln > 0:
        req.setdefault(sp, t)
        via.setdefault(sp, (da, dp))
    elif dev == "n1" and sa == client and "S" in fl and dp != "80":
        rep.setdefault(sp, t)
    elif da == client and ln > 0 and sp in ("80", "8080"):
        resp.setdefault(dp, t)
def show(name, xs):
    xs = sorted(x * 1e6 for x in xs)
    if not xs:
        print(f"{name:34s} (none)")
        return
    p90 = xs[int(len(xs) * 0.9) - 1] if len(xs) >= 10 else xs[-1]
    print(f"{name:34s} median {statistics.median(xs):7.0f} us  "
          f"p90 {p90:7.0f} us  (n={len(xs)})")
ho = [p for p in req if via[p] == (n1, "80") and p in rep and p in resp]
di = [p for p in req if via[p] == (n2, "80") and p in resp]
ng = [p for p in req if via[p] == (n2, "8080") and p in resp]
show("hand-off: request -> replay (front)", [rep[p] - req[p] for p in ho])
show("hand-off: replay -> response (back)", [resp[p] - rep[p] for p in ho])
show("hand-off: request -> response", [resp[p] - req[p] for p in ho])
show("direct:   request -> response", [resp[p] - req[p] for p in di])
hs = lambda ps: [synack[p] - syn[p] for p in ps if p in syn and p in synack]
sr = lambda ps: [req[p] - synack[p] for p in ps if p in synack]
sf = lambda ps: [resp[p] - syn[p] for p in ps if p in syn]
show("hand-off: SYN -> SYN-ACK", hs(ho))
show("direct:   SYN -> SYN-ACK", hs(di))
show("hand-off: SYN-ACK -> request", sr(ho))
show("direct:   SYN-ACK -> request", sr(di))
show("hand-off: SYN -> response", sf(ho))
show("direct:   SYN -> response", sf(di))
if ng:
    show("nginx:    request -> response", [resp[p] - req[p] for p in ng])
    show("nginx:    SYN -> response", sf(ng))
def med(ps):
    return statistics.median([resp[p] - req[p] for p in ps]) * 1e6
for what, base in (("", di), (" over nginx alone", ng)):
    if ho and base:
        print("extra for the hand-off%s, median: %.0f us" % (
            what, med(ho) - med(base)))
' "$CLIENT_ADDR" "$(addr 1)" "$(addr 2)" <"$TMP/tl.txt"
fi
echo "the daemons' step timings (qtctl stats), the same requests:"
step_timings 1 front_wake steer freeze replay front_handoff confirm
step_timings 2 capture_wake rebuild first_byte back_handoff
