# Shared helpers for the namespace tests.  Source it; each test builds its
# own cluster:
#
#   client (198.18.0.100) --+
#   node 1 (198.18.0.1)   --+-- bridge br0 in namespace "sw"
#   node 2 (198.18.0.2)   --+
#   node 3 (198.18.0.3)   --+
#
# Every namespace name carries this shell's pid, every name is removed by
# cleanup() on exit, and nothing touches the root namespace.

set -u

QT_BUILD=${QT_BUILD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}
QT_SRC=${QT_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
QTD=$QT_BUILD/quicktwitchd
QTCTL=$QT_BUILD/qtctl
NS_PREFIX="qt$$"
SW="$NS_PREFIX-sw"
CL="$NS_PREFIX-c"
CLIENT_ADDR=198.18.0.100
TMP=$(mktemp -d /tmp/qt-test.XXXXXX)
NODES=()
declare -A DPID

ksft_skip=4

log() { printf '# %s\n' "$*"; }
now_ms() { date +%s%3N; }
# qtctl N ARGS...: qtctl against node N's daemon.
qtctl() { local n=$1; shift; in_node "$n" "$QTCTL" -s "$TMP/n$n.sock" "$@"; }
# counter N NAME: one of node N's counters (qtctl stats --json).
counter() {
	qtctl "$1" stats --json | python3 -c \
	    'import json, sys; print(json.load(sys.stdin)["counters"][sys.argv[1]])' "$2"
}
# check_fail MSG: a failed check after which a test can go on to report
# the others; it fails at the end ([ "$FAILS" = 0 ]).
FAILS=0
check_fail() {
	printf 'FAIL: %s\n' "$*"
	FAILS=$((FAILS + 1))
}
fail() {
	printf 'FAIL: %s\n' "$*"
	dump_logs
	exit 1
}
pass() { printf 'ok: %s\n' "$*"; }

require_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "SKIP: needs root"
		exit $ksft_skip
	fi
	[ -x "$QTD" ] || { echo "FAIL: $QTD not built"; exit 1; }
}

ns() { echo "$NS_PREFIX-n$1"; }
addr() { echo "198.18.0.$1"; }
in_ns() { local n=$1; shift; ip netns exec "$n" "$@"; }
in_node() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }
in_client() { ip netns exec "$CL" "$@"; }

dump_logs() {
	local n
	for n in "${NODES[@]}"; do
		if [ -f "$TMP/n$n.log" ]; then
			echo "--- log of node $n (last 40 lines)"
			tail -n 40 "$TMP/n$n.log"
		fi
	done
}

cleanup() {
	local n
	# SIGCONT first: a test may have left a daemon stopped, which would
	# never act on the SIGTERM and hold the wait below forever.
	for n in "${!DPID[@]}"; do
		kill -CONT "${DPID[$n]}" 2>/dev/null
		kill "${DPID[$n]}" 2>/dev/null
	done
	for n in "${!DPID[@]}"; do
		wait "${DPID[$n]}" 2>/dev/null
	done
	for n in $(ip netns list | awk '{print $1}' | grep "^$NS_PREFIX-"); do
		# Kill anything still running inside (clients, servers).
		ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$n" 2>/dev/null
	done
	rm -rf "$TMP"
}
trap cleanup EXIT

# busywait TIMEOUT_MS CMD...: run CMD until it succeeds or time runs out.
busywait() {
	local timeout=$1 start
	shift
	start=$(date +%s%3N)
	while true; do
		"$@" && return 0
		[ $(($(date +%s%3N) - start)) -gt "$timeout" ] && return 1
		sleep 0.05
	done
}

# link_host NAME ADDR IFNAME: a namespace with a veth into the bridge.
link_host() {
	local name=$1 a=$2 peer=$3
	ip netns add "$name"
	ip -n "$SW" link add "$peer" type veth peer name eth0 netns "$name"
	ip -n "$SW" link set "$peer" master br0 up
	ip -n "$name" link set lo up
	ip -n "$name" addr add "$a/24" dev eth0
	ip -n "$name" link set eth0 up
}

# make_cluster N [MTU]: client and nodes 1..N on one bridge.
make_cluster() {
	local count=$1 mtu=${2:-1500} i
	ip netns add "$SW"
	# The switch is a plain L2 switch: where br_netfilter is loaded, a
	# new namespace still passes bridged frames through its iptables
	# hooks and conntrack, work charged to whichever node sent the
	# frame (a front's core, in bench/compare.sh).  Per namespace.
	for i in iptables ip6tables arptables; do
		[ -e /proc/sys/net/bridge/bridge-nf-call-$i ] &&
		    ip netns exec "$SW" sh -c "echo 0 > /proc/sys/net/bridge/bridge-nf-call-$i"
	done
	ip -n "$SW" link add br0 type bridge
	ip -n "$SW" link set br0 up
	link_host "$CL" "$CLIENT_ADDR" c0
	for i in $(seq 1 "$count"); do
		link_host "$(ns "$i")" "$(addr "$i")" "n$i"
		NODES+=("$i")
		in_node "$i" sysctl -qw net.ipv4.ip_forward=1 \
		    net.ipv4.conf.all.send_redirects=0 \
		    net.ipv4.conf.eth0.send_redirects=0 \
		    net.netfilter.nf_conntrack_tcp_loose=1
	done
	if [ "$mtu" != 1500 ]; then
		for i in $(ip -n "$SW" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1); do
			ip -n "$SW" link set "$i" mtu "$mtu"
		done
		in_client ip link set eth0 mtu "$mtu"
		for i in "${NODES[@]}"; do in_node "$i" ip link set eth0 mtu "$mtu"; done
	fi
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$TMP/key"
	mkdir -p "$TMP/www"
}

# write_config N [extra lines...]: the config of node N.
write_config() {
	local n=$1 i
	shift
	{
		echo "self n$n"
		for i in "${NODES[@]}"; do
			echo "node n$i id $i address $(addr "$i") weight 100"
		done
		echo "service http port 80 handoff-base 8000"
		echo "key-file $TMP/key"
		echo "docroot $TMP/www"
		echo "control-socket $TMP/n$n.sock"
		echo "handoff-timeout 200"
		echo "handoff-tries 3"
		echo "conntrack-grace 500"
		# Every flow step logged: the tests read them.  LOG_FLOWS=""
		# leaves the default (one line per flow, at its end).
		[ -n "${LOG_FLOWS-all}" ] && echo "log-flows ${LOG_FLOWS-all}"
		for l in "$@"; do echo "$l"; done
	} > "$TMP/n$n.conf"
}

start_node() {
	local n=$1
	local before
	[ -f "$TMP/n$n.conf" ] || write_config "$n"
	before=$(grep -c ' ready:' "$TMP/n$n.log" 2>/dev/null)
	# Started directly (not through a shell function) so that $! is the
	# daemon itself: "ip netns exec" execs it.
	ip netns exec "$(ns "$n")" "$QTD" -c "$TMP/n$n.conf" \
	    >>"$TMP/n$n.log" 2>&1 &
	DPID[$n]=$!
	busywait 5000 eval '[ "$(grep -c " ready:" "$TMP/n$n.log")" -gt "${before:-0}" ]' ||
		fail "node $n did not start"
}

stop_node() {
	local n=$1
	[ -n "${DPID[$n]:-}" ] || return 0
	kill "${DPID[$n]}" 2>/dev/null
	wait "${DPID[$n]}" 2>/dev/null
	unset "DPID[$n]"
}

start_cluster() {
	local i
	for i in "${NODES[@]}"; do start_node "$i"; done
}

# served_by HEADERFILE: the node number in a response's X-Served-By.
served_by() {
	sed -n 's/^X-Served-By: n\([0-9]*\).*/\1/p' "$1" | tr -d '\r' | tail -n 1
}

# make_file NAME SIZE: a file of SIZE bytes (dd-style suffixes) of random data.
make_file() {
	head -c "$2" /dev/urandom > "$TMP/www/$1"
}


# owner PATH: the node number the consistent hash names for PATH.
owner() {
	local spec="" i
	for i in "${NODES[@]}"; do spec="$spec${spec:+,}$i:100"; done
	"$QT_BUILD/qtpick" "$spec" "$1"
}

# name_owned_by N PREFIX: the first "PREFIX-K" path owned by node N.
name_owned_by() {
	local n=$1 prefix=$2 k
	for k in $(seq 1 200); do
		if [ "$(owner "/$prefix-$k")" = "$n" ]; then
			echo "$prefix-$k"
			return 0
		fi
	done
	return 1
}

# RST watch: a capture in the client namespace of every TCP reset that
# reaches or leaves the client.  The client's captures get 16 MB buffers:
# with the default 2 MB, one under the whole suite's load (a fresh-clone
# CI run) dropped 7,494 packets, and a reset whose FINs are missing looks
# like one on a live connection.
rst_watch_start() {
	ip netns exec "$CL" tcpdump -i eth0 --immediate-mode -p -nn -U -B 16384 \
	    -w "$TMP/rst.pcap" 'tcp[tcpflags] & tcp-rst != 0' >/dev/null 2>&1 &
	RST_PID=$!
	busywait 3000 test -s "$TMP/rst.pcap" || true
	sleep 0.3
}

rst_watch_count() {
	kill -INT "$RST_PID" 2>/dev/null
	wait "$RST_PID" 2>/dev/null
	tcpdump -nn -r "$TMP/rst.pcap" 2>/dev/null | wc -l
}

# rst_watch_received_start: like rst_watch_start, but only the resets the
# client receives, for tests whose own clients reset on purpose; counted
# with rst_watch_count.
rst_watch_received_start() {
	ip netns exec "$CL" tcpdump -i eth0 --immediate-mode -p -nn -U -B 16384 \
	    -w "$TMP/rst.pcap" \
	    "ip dst host $CLIENT_ADDR and tcp[tcpflags] & tcp-rst != 0" \
	    >/dev/null 2>&1 &
	RST_PID=$!
	busywait 3000 test -s "$TMP/rst.pcap" || true
	sleep 0.3
}

# flags_watch_start [TCPDUMP-OPTION...]: every SYN, FIN and RST at the
# client, to $TMP/flags.pcap (tcpdump's report in $TMP/flags.err), for
# rst_classify.  flags_watch_stop ends it (again: nothing).
flags_watch_start() {
	ip netns exec "$CL" tcpdump -i eth0 --immediate-mode -p -nn -U -B 16384 \
	    "$@" -w "$TMP/flags.pcap" \
	    'tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0' \
	    >/dev/null 2>"$TMP/flags.err" &
	FLAGS_PID=$!
	busywait 3000 test -s "$TMP/flags.pcap" || true
	sleep 0.3
}

flags_watch_stop() {
	[ -n "${FLAGS_PID:-}" ] || return 0
	kill -INT "$FLAGS_PID" 2>/dev/null
	wait "$FLAGS_PID" 2>/dev/null
	FLAGS_PID=""
}

# rst_classify [MAXSHOW [RECEIVED]]: stops the watch and splits the resets
# the client received into those on live connections (failures) and those
# after both FINs (harmless): rstclass.py, its lines (up to MAXSHOW of
# each kind, default 5) in $TMP/rst.class.  Sets RST_SENT, RST_LIVE and
# RST_AFTER ("?" if it could not tell).  RECEIVED, a count of received
# resets from another capture: those the classifier did not see count as
# live.
rst_classify() {
	flags_watch_stop
	python3 "$QT_SRC/tests/integration/rstclass.py" "$CLIENT_ADDR" \
	    "${1:-5}" < <(tcpdump -nn -tt -r "$TMP/flags.pcap" 2>/dev/null) \
	    >"$TMP/rst.class"
	read -r _ RST_SENT RST_LIVE RST_AFTER < <(grep '^COUNT' "$TMP/rst.class")
	RST_SENT=${RST_SENT:-?} RST_AFTER=${RST_AFTER:-0}
	RST_LIVE=${RST_LIVE:-${2:-?}}
	if [ -n "${2:-}" ] && [ "$RST_LIVE" != "?" ] &&
	    [ $((RST_LIVE + RST_AFTER)) -lt "$2" ]; then
		RST_LIVE=$(($2 - RST_AFTER))
	fi
}

# fetch FRONT PATH OUT: curl through node FRONT, headers to OUT.h, body to OUT.
fetch() {
	in_client curl -sS --max-time "${FETCH_TIMEOUT:-20}" -D "$3.h" -o "$3" \
	    "http://$(addr "$1")/$2"
}

# flows_of N, sets_of N, ct_of N: node N's flow records (qtctl), entries
# in its sets, and steered (port 80) conntrack entries.
flows_of() {
	qtctl "$1" list-flows --json 2>/dev/null | python3 -c \
	    'import json, sys; print(len(json.load(sys.stdin)["flows"]))' 2>/dev/null ||
		echo "?"
}
sets_of() {
	in_node "$1" ipset list 2>/dev/null |
	    awk '/^Members:/ {m=1; next} /^Name:/ {m=0} m && NF' | wc -l
}
ct_of() {
	in_node "$1" conntrack -L -p tcp --dport 80 2>/dev/null | grep -c 'dport=80' || true
}

# capture_stop PID [SECS]: a capture's last packets flushed (SECS, 0.3 by
# default), then the capture stopped and waited for.
capture_stop() {
	sleep "${2:-0.3}"
	kill -INT "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# states_agree N: node N's flow counts by state (qtctl stats, kept as the
# states change) are those of its flow records (list-flows, a walk), and
# add up to flows_total.  Call it with the node's flows settled: the two
# are read one after the other.
states_agree() {
	qtctl "$1" stats --json >"$TMP/sa-s$1.json" 2>/dev/null &&
	    qtctl "$1" list-flows --json >"$TMP/sa-l$1.json" 2>/dev/null &&
	    python3 - "$TMP/sa-s$1.json" "$TMP/sa-l$1.json" <<'EOF'
import collections, json, sys
s = json.load(open(sys.argv[1]))
walk = collections.Counter(f["state"] for f in json.load(open(sys.argv[2]))["flows"])
kept = {k: v for k, v in s["flows"].items() if v}
if kept != dict(walk) or sum(s["flows"].values()) != s["flows_total"]:
    print("# stats say %s (total %s), the flow records %s" % (s["flows"], s["flows_total"], dict(walk)))
    sys.exit(1)
EOF
}

# nothing_left N: no set entry and no steered conntrack entry on node N.
nothing_left() {
	local n=$1 entries
	entries=$(sets_of "$n")
	[ "$entries" = 0 ] || { log "node $n: $entries set entries left"; return 1; }
	entries=$(ct_of "$n")
	[ "$entries" = 0 ] || { log "node $n: $entries conntrack entries left"; return 1; }
	return 0
}

# no_steering_left N...: within 5 s, nodes N... keep no set entry and no
# steered conntrack entry; fails naming the first that does.
no_steering_left() {
	local n
	for n in "$@"; do
		busywait 5000 nothing_left "$n" || fail "node $n keeps steering state"
	done
}

# nginx_start N LISTEN [DIRECTIVES]: nginx in node N's namespace serving
# $TMP/www with an X-Served-By header, its files under $TMP/nginx-nN;
# DIRECTIVES go in its http block.
nginx_start() {
	local n=$1 listen=$2 extra=${3:-} d=$TMP/nginx-n$1
	mkdir -p "$d"
	cat > "$d/nginx.conf" <<CONF
daemon on;
user root root;
pid $d/pid;
error_log $d/error.log;
events { worker_connections 256; }
http {
	access_log $d/access.log;
	client_body_temp_path $d; proxy_temp_path $d; fastcgi_temp_path $d;
	uwsgi_temp_path $d; scgi_temp_path $d;
	sendfile on;
	keepalive_requests 10000;
	$extra
	server {
		listen $listen;
		root $TMP/www;
		add_header X-Served-By n$n;
	}
}
CONF
	in_node "$n" nginx -c "$d/nginx.conf" -p "$d" || fail "nginx on n$n did not start"
}

nginx_stop() {
	in_node "$1" nginx -c "$TMP/nginx-n$1/nginx.conf" -p "$TMP/nginx-n$1" -s quit
}
