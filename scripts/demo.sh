#!/bin/bash
# The demo: installs what it needs, builds, starts a three-node cluster and
# a client in network namespaces (198.18.0.0/24, nothing outside them),
# fetches objects through every node, and shows who served what and how
# little of each response passed through the node the client talked to.
# Everything is removed on exit.
set -e
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: the demo builds network namespaces" >&2; exit 1; }
./scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
set +e

QT_BUILD=$PWD/build
source tests/integration/lib.sh

echo "== building a cluster: client $CLIENT_ADDR, nodes n1 n2 n3 on 198.18.0.1-3"
make_cluster 3
for s in 1k:1024 64k:65536 1m:1048576 50m:52428800; do
	for k in 1 2 3; do make_file "video-${s%%:*}-$k.ts" "${s#*:}"; done
done
start_cluster
echo

rxtx() { in_node "$1" cat /sys/class/net/eth0/statistics/rx_bytes \
	/sys/class/net/eth0/statistics/tx_bytes | false ||
	in_node "$1" awk '{s += $1} END {print s}' \
	/sys/class/net/eth0/statistics/rx_bytes \
	/sys/class/net/eth0/statistics/tx_bytes; }

printf '%-20s %-6s %-10s %-12s %-10s %s\n' object asked served-by body-bytes "front-I/O" result
for f in $(ls "$TMP/www" | sort); do
	for n in 1 2 3; do
		before=$(rxtx "$n")
		fetch "$n" "$f" "$TMP/out" 2>/dev/null
		after=$(rxtx "$n")
		by=$(served_by "$TMP/out.h")
		size=$(stat -c %s "$TMP/out" 2>/dev/null || echo 0)
		if cmp -s "$TMP/out" "$TMP/www/$f"; then ok=byte-exact; else ok=WRONG; fi
		if [ "$by" = "$n" ]; then how="(local)"; else how="(hand-off)"; fi
		printf '%-20s n%-5s n%-9s %-12s %-10s %s %s\n' "$f" "$n" "$by" \
		    "$size" "$((after - before))" "$ok" "$how"
	done
done
echo
echo "front-I/O: bytes in + out on the asked node's interface for that request."
echo "On a hand-off the body goes from the serving node straight to the client"
echo "(its packets leave as the asked node's address), so the asked node only"
echo "sees the request and the client's ACKs."
echo
for n in 1 2 3; do
	echo "== qtctl stats on n$n"
	in_node "$n" "$QT_BUILD/qtctl" -s "$TMP/n$n.sock" stats | grep -E 'accepted|local|handed_off|taken_back|back_flows|bytes_served'
done
echo
echo "== a few log lines of n1"
grep -E 'handed-off|materialized' "$TMP/n1.log" | head -n 6
echo
echo "== cleaning up"
