#!/bin/bash
# A back holds its confirmations while a relay's request is with its
# server, so that their send (whose path to the front runs in the back's
# context) does not come before the client's first byte; the hold is
# bounded (1 ms), so a slow server never makes the front resend.
#   (a) n2 relays to its nginx over a unix socket; 30 sequential
#       hand-offs through n1, captured on n2's eth0: each CONFIRMS
#       datagram leaves once the hand-offs replayed to n2 have their
#       first response byte out (a few may go on the bound, if nginx took
#       longer than 1 ms on this shared machine), all 30 confirmed, none
#       resent or taken back
#   (b) n2's server answers only after 600 ms (3 times n1's
#       handoff-timeout): the confirmation still arrives in time, no
#       resend, no take-back, the body intact
source "$(dirname "$0")/lib.sh"
require_root
command -v nginx >/dev/null || fail "nginx is not installed (scripts/deps.sh installs it)"
command -v tcpdump >/dev/null || fail "tcpdump is not installed"
make_cluster 2
f=$(name_owned_by 2 ch) || fail "no name hashes to n2"
make_file "$f" 1024
nginx_start 2 "unix:$TMP/up2.sock"
write_config 1
write_config 2
sed -i "s|^service http port 80 handoff-base 8000\$|& upstream unix:$TMP/up2.sock|" "$TMP/n2.conf"
grep -q upstream "$TMP/n2.conf" || fail "config not edited"
start_cluster
# n2 must have heard n1's heartbeat (every 200 ms): CONFIRMS only then.
sleep 0.5

# Replays in, first response bytes and CONFIRMS (band type 8, the UDP
# payload's sixth byte) out.
# Not through in_node: $! must be tcpdump itself (ip execs it).
ip netns exec "$(ns 2)" tcpdump -i eth0 -p -nn -tt -l --immediate-mode \
    "(tcp and (dst portrange 8001-8063 or src port 80)) or (udp dst port 7400 and udp[13] = 8)" \
    >"$TMP/cap.txt" 2>"$TMP/cap.err" &
CAP=$!
sleep 1
N=30
: >"$TMP/urls"
for i in $(seq 1 $N); do
	echo "url = \"http://$(addr 1)/$f\"" >>"$TMP/urls"
	echo "output = \"/dev/null\"" >>"$TMP/urls"
done
in_client curl -sS -H "Connection: close" -K "$TMP/urls" || fail "(a) curl failed"
capture_stop "$CAP" 0.5

read -r nrep nconf early <<<"$(python3 -c '
import re, sys
client, n2 = sys.argv[1:3]
pk = re.compile(r"^(\S+) IP (\S+)\.(\d+) > (\S+)\.(\d+): (.*)$")
pending, nrep, nconf, early = set(), 0, 0, 0
for line in open(sys.argv[3]):
    m = pk.match(line)
    if not m:
        continue
    ts, sa, sp, da, dp, rest = m.groups()
    ln = re.search(r"length (\d+)", rest)
    ln = int(ln.group(1)) if ln else 0
    if rest.startswith("UDP"):
        nconf += 1
        early += bool(pending)
    elif sa == client and da == n2 and "Flags [S" in rest:
        if sp not in pending:
            nrep += 1
        pending.add(sp)
    elif da == client and sp == "80" and ln > 0:
        pending.discard(dp)
print(nrep, nconf, early)
' "$CLIENT_ADDR" "$(addr 2)" "$TMP/cap.txt")"
[ "$nrep" = "$N" ] || fail "(a) $nrep replays captured on n2, want $N"
[ "$(counter 2 confirm_batched)" = "$N" ] ||
	fail "(a) n2 confirmed $(counter 2 confirm_batched) of $N in CONFIRMS"
[ "$nconf" -ge 1 ] || fail "(a) no CONFIRMS datagram captured"
[ "$early" -le $((N / 5)) ] ||
	fail "(a) $early of $nconf CONFIRMS left before a replayed flow's first response byte"
[ "$(counter 1 resends)" = 0 ] || fail "(a) n1 resent $(counter 1 resends) replays"
[ "$(counter 1 taken_back)" = 0 ] || fail "(a) n1 took $(counter 1 taken_back) back"
pass "(a) $N hand-offs to n2's nginx: $nconf CONFIRMS, $early of them before a first response byte"

# (b) a server that thinks for 600 ms before it answers.
stop_node 2
cat >"$TMP/slow.py" <<'PY'
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(0.6)
        body = b"slow answer\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", 8081), H).serve_forever()
PY
in_node 2 python3 "$TMP/slow.py" &
busywait 3000 eval 'in_node 2 ss -Htln "( sport = :8081 )" | grep -q .' ||
	fail "(b) the slow server did not start"
sed -i "s|upstream unix:$TMP/up2.sock|upstream 127.0.0.1:8081|" "$TMP/n2.conf"
start_node 2
sleep 0.5
tb0=$(counter 1 taken_back)
rs0=$(counter 1 resends)
fetch 1 "$f" "$TMP/out" || fail "(b) curl failed"
grep -q '^slow answer$' "$TMP/out" || fail "(b) body: $(head -c 200 "$TMP/out")"
[ "$(counter 2 back_flows)" = 1 ] || fail "(b) n2 rebuilt $(counter 2 back_flows) flows, want 1"
[ "$(counter 1 resends)" = "$rs0" ] ||
	fail "(b) n1 resent the replay: the confirmation waited for the server"
[ "$(counter 1 taken_back)" = "$tb0" ] || fail "(b) n1 took the hand-off back"
pass "(b) a server 600 ms slow: confirmed in time, no resend, no take-back"
