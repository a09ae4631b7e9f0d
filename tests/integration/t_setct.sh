#!/bin/bash
#
# nf_set.c and nf_ct.c against the kernel, through tests/tools/qtnf.
#
# Two namespaces joined by a veth pair: client C (198.18.0.2) and server S
# (198.18.0.1).  Set operations run in S and are checked against ipset(8)'s
# view; conntrack entries are made by real TCP connections from C to S,
# one of them DNATed inside S, and checked against conntrack(8)'s view.
# Nothing here touches the root namespace's firewall, sets or sysctls.
#
# Exit 0 pass, 1 fail, 4 skipped (not root, or a tool is missing).

set -u

QT_BUILD=${QT_BUILD:-/work/main/build}
QTNF=$QT_BUILD/qtnf
C=qt-setct-$$-c
S=qt-setct-$$-s
SA=198.18.0.1
CA=198.18.0.2
SET=qt-setct-a
TMP=
PIDS=()

skip() { echo "SKIP: $*"; exit 4; }
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }

cleanup() {
	local p ns
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	# Anything else still inside our namespaces was started by us too.
	for ns in "$C" "$S"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do
			kill "$p" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
	done
	[ -n "$TMP" ] && rm -rf "$TMP"
}

[ "$(id -u)" -eq 0 ] || skip "needs root"
for t in ip ipset conntrack iptables-legacy python3 curl; do
	command -v "$t" >/dev/null || skip "$t not installed"
done
[ -x "$QTNF" ] || fail "$QTNF not built"

trap cleanup EXIT
TMP=$(mktemp -d)

inS() { ip netns exec "$S" "$@"; }
inC() { ip netns exec "$C" "$@"; }

# Runs qtnf in S; its stdout goes to $TMP/out, stderr to $TMP/err.
qtnf() { inS "$QTNF" "$@" >"$TMP/out" 2>"$TMP/err"; }

# Expects qtnf to exit with $1 and, on success, to say nothing on stderr:
# the wrappers must never print on their own.
expect() {
	local want=$1 got
	shift
	qtnf "$@"
	got=$?
	[ "$got" -eq "$want" ] ||
		fail "qtnf $* exited $got, wanted $want: $(cat "$TMP/err")"
	if [ "$want" -ne 1 ] && [ -s "$TMP/err" ]; then
		fail "qtnf $* wrote to stderr: $(cat "$TMP/err")"
	fi
}

# Waits up to $1 tenths of a second for the command after it to succeed.
busywait() {
	local n=$1
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

# Members of a set in ipset(8)'s words, sorted: "IP,tcp:PORT,IP".
members() { inS ipset list "$1" | sed -n '/^Members:/,$p' | sed 1d | sort; }
set_header() { inS ipset list -t "$1"; }

ip netns add "$C" || fail "cannot create namespace $C"
ip netns add "$S" || fail "cannot create namespace $S"
ip -n "$C" link add eth0 type veth peer name eth0 netns "$S" ||
	fail "cannot create veth pair"
ip -n "$C" addr add "$CA/24" dev eth0
ip -n "$S" addr add "$SA/24" dev eth0
for ns in "$C" "$S"; do
	ip -n "$ns" link set lo up
	ip -n "$ns" link set eth0 up
done

### Sets ###

expect 0 set-create "$SET" 1000
set_header "$SET" | grep -q '^Type: hash:ip,port,ip$' ||
	fail "created set has the wrong type: $(set_header "$SET")"
set_header "$SET" | grep -q 'family inet .*maxelem 1000 ' ||
	fail "created set has the wrong header: $(set_header "$SET")"
ok "create"

inS ipset add "$SET" 198.18.0.99,tcp:999,198.18.0.1
expect 0 set-create "$SET" 1000
expect 0 set-create "$SET" 5000
set_header "$SET" | grep -q 'maxelem 1000 ' ||
	fail "re-create replaced the set: $(set_header "$SET")"
[ "$(members "$SET")" = "198.18.0.99,tcp:999,198.18.0.1" ] ||
	fail "re-create lost the set's entries"
inS ipset del "$SET" 198.18.0.99,tcp:999,198.18.0.1
ok "create keeps an existing set and its entries"

expect 0 set-add "$SET" 198.18.0.10 40000 198.18.0.1
[ "$(members "$SET")" = "198.18.0.10,tcp:40000,198.18.0.1" ] ||
	fail "after add, ipset shows: $(members "$SET")"
expect 0 set-add "$SET" 198.18.0.10 40000 198.18.0.1
[ "$(members "$SET" | wc -l)" -eq 1 ] || fail "second add duplicated"
ok "add, and add again"

expect 0 set-test "$SET" 198.18.0.10 40000 198.18.0.1
[ -s "$TMP/out" ] && fail "set-test printed: $(cat "$TMP/out")"
expect 3 set-test "$SET" 198.18.0.10 40001 198.18.0.1
expect 3 set-test "$SET" 198.18.0.11 40000 198.18.0.1
expect 3 set-test "$SET" 198.18.0.10 40000 198.18.0.2
ok "test present and absent"

expect 0 set-add "$SET" 198.18.0.11 65535 198.18.0.3
inS ipset add "$SET" 198.18.0.12,tcp:1,198.18.0.1
inS ipset add "$SET" 198.18.0.13,udp:53,198.18.0.1
expect 0 set-list "$SET"
want=$(members "$SET" | grep ',tcp:' | sed 's/,tcp:/,/' | sort)
got=$(sort "$TMP/out")
[ "$got" = "$want" ] || fail "set-list: got [$got], ipset has [$want]"
[ "$(wc -l <"$TMP/out")" -eq 3 ] || fail "set-list: wrong count"
ok "list matches ipset, TCP entries only"

expect 0 set-del "$SET" 198.18.0.10 40000 198.18.0.1
members "$SET" | grep -q '198.18.0.10,tcp:40000' && fail "del left the entry"
[ "$(members "$SET" | wc -l)" -eq 3 ] || fail "del removed other entries"
expect 0 set-del "$SET" 198.18.0.10 40000 198.18.0.1
[ "$(members "$SET" | wc -l)" -eq 3 ] || fail "second del changed the set"
ok "del, and del again"

# Queued deletes: one message per run of one set's deletes, the queue sent
# by the commit; an absent entry is no failure, another set in between
# starts a message of its own, and entries not named stay.
inS ipset create qt-setct-q hash:ip,port,ip
for p in 41001 41002 41003 41004; do
	expect 0 set-add "$SET" 198.18.0.20 "$p" 198.18.0.1
	expect 0 set-add qt-setct-q 198.18.0.20 "$p" 198.18.0.1
done
n0=$(members "$SET" | wc -l)
expect 0 set-del-queue "$SET" 198.18.0.20 41001 198.18.0.1 \
    "$SET" 198.18.0.20 41002 198.18.0.1 \
    qt-setct-q 198.18.0.20 41001 198.18.0.1 \
    "$SET" 198.18.0.20 41003 198.18.0.1 \
    "$SET" 198.18.0.20 49999 198.18.0.1
[ "$(members "$SET" | grep -c '198.18.0.20,')" = 1 ] &&
    members "$SET" | grep -q '198.18.0.20,tcp:41004,' ||
	fail "queued deletes left $(members "$SET" | grep '198.18.0.20,' | tr '\n' ' ')"
[ "$(members "$SET" | wc -l)" -eq $((n0 - 3)) ] || fail "queued deletes removed other entries"
[ "$(members qt-setct-q | tr '\n' ' ')" = "$(printf '198.18.0.20,tcp:%s,198.18.0.1 ' 41002 41003 41004)" ] ||
	fail "queued deletes in the second set: $(members qt-setct-q | tr '\n' ' ')"
expect 1 set-del-queue "$SET" 198.18.0.20 41004 198.18.0.1 qt-nosuch 198.18.0.20 41004 198.18.0.1
grep -q 'does not exist' "$TMP/err" || fail "queued delete, absent set: $(cat "$TMP/err")"
members "$SET" | grep -q '198.18.0.20,' && fail "the delete queued before the failing one was not sent"
inS ipset destroy qt-setct-q
ok "queued deletes: across sets, absent entries, a failure after a queued one"

inS ipset create qt-other hash:ip
inS ipset create zz-setct hash:ip,port,ip
expect 0 set-create qt-setct-b
expect 0 set-names qt-setct-
[ "$(sort "$TMP/out" | tr '\n' ' ')" = "qt-setct-a qt-setct-b " ] ||
	fail "set-names qt-setct-: $(cat "$TMP/out")"
expect 0 set-names ""
[ "$(sort "$TMP/out")" = "$(inS ipset list -n | sort)" ] ||
	fail "set-names with no prefix differs from ipset list -n"
ok "names by prefix"

expect 1 set-create qt-other
grep -q 'File exists' "$TMP/err" || fail "wrong-type create: $(cat "$TMP/err")"
expect 1 set-add qt-other 198.18.0.10 40000 198.18.0.1
[ -z "$(members qt-other)" ] || fail "add went into a hash:ip set"
expect 1 set-add qt-nosuch 198.18.0.10 40000 198.18.0.1
grep -q 'does not exist' "$TMP/err" || fail "absent set: $(cat "$TMP/err")"
expect 1 set-create qt-setct-name-longer-than-31-chars
ok "errors: wrong type, absent set, long name"

expect 0 set-flush "$SET"
[ -z "$(members "$SET")" ] || fail "flush left entries"
expect 0 set-destroy "$SET"
inS ipset list -n | grep -qx "$SET" && fail "destroy left the set"
expect 0 set-destroy "$SET"
ok "flush, destroy, destroy again"

# A listing spans many netlink messages and print buffers.
for i in $(seq 0 2999); do
	echo "add qt-setct-b 198.18.$((i / 250)).$((i % 250 + 1)),tcp:$((20000 + i)),198.18.0.1"
done | inS ipset restore || fail "ipset restore failed"
expect 0 set-list qt-setct-b
[ "$(sort "$TMP/out")" = "$(members qt-setct-b | sed 's/,tcp:/,/')" ] ||
	fail "set-list of 3000 entries differs from ipset's"
[ "$(wc -l <"$TMP/out")" -eq 3000 ] || fail "set-list of 3000: wrong count"
expect 0 set-flush qt-setct-b
ok "list of 3000 entries"

expect 0 set-bench qt-setct-b 5000
echo "set bench: $(cat "$TMP/out")"
[ -z "$(members qt-setct-b)" ] || fail "bench left entries"

### Conntrack ###

# The nat table makes S track connections; 8080 is DNATed to 8081.
inS iptables-legacy -t nat -A PREROUTING -p tcp -d "$SA" --dport 8080 \
	-j DNAT --to-destination "$SA:8081" || fail "cannot add DNAT rule"
echo hello >"$TMP/index.html"
for port in 8081 8082; do
	# Not through inS: $! must be the server itself (ip execs it).
	ip netns exec "$S" python3 -m http.server "$port" --bind "$SA" \
		--directory "$TMP" >/dev/null 2>&1 &
	PIDS+=($!)
done
for port in 8081 8082; do
	busywait 100 inS curl -s -o /dev/null "http://$SA:$port/" ||
		fail "server on $port did not come up"
done

fetch() {
	inC curl -s --max-time 5 --local-port "$1" "http://$SA:$2/index.html" |
		grep -q hello || fail "fetch from port $1 to $2 failed"
}
# Two flows DNATed (8080 -> 8081), one direct to 8082; each entry lingers
# in TIME_WAIT long after the fetch.
fetch 40001 8080
fetch 40002 8080
fetch 40003 8082

# conntrack -L lines that match an original tuple exactly.
ct_has() {
	inS conntrack -L -p tcp -s "$1" --sport "$2" -d "$3" --dport "$4" \
		2>/dev/null | grep -q "sport=$2 dport=$4"
}
ct_has "$CA" 40001 "$SA" 8080 || fail "no conntrack entry for 40001"
ct_has "$CA" 40002 "$SA" 8080 || fail "no conntrack entry for 40002"
ct_has "$CA" 40003 "$SA" 8082 || fail "no conntrack entry for 40003"
ok "conntrack sees the three flows"

expect 0 ct-list "$SA" 8080
want=$(printf '%s\n' "$CA:40001 $SA:8080 -> $SA:8081" \
	"$CA:40002 $SA:8080 -> $SA:8081")
[ "$(sort "$TMP/out")" = "$want" ] ||
	fail "ct-list $SA 8080: got [$(cat "$TMP/out")], wanted [$want]"
# The readiness probes left entries from S itself to 8082: only C's count.
expect 0 ct-list "$SA" 8082
[ "$(grep "^$CA:" "$TMP/out")" = "$CA:40003 $SA:8082 -> $SA:8082" ] ||
	fail "ct-list $SA 8082: $(cat "$TMP/out")"
expect 0 ct-list "$SA" 9
[ -s "$TMP/out" ] && fail "ct-list for an unused port: $(cat "$TMP/out")"
ok "ct-list filters by original destination, shows the DNAT target"

expect 0 ct-del "$CA" 40001 "$SA" 8080
ct_has "$CA" 40001 "$SA" 8080 && fail "ct-del left the entry"
ct_has "$CA" 40002 "$SA" 8080 || fail "ct-del removed the other DNAT entry"
ct_has "$CA" 40003 "$SA" 8082 || fail "ct-del removed the direct entry"
ok "ct-del removes exactly one entry"

expect 0 ct-del "$CA" 40001 "$SA" 8080
# The DNATed destination is not the original tuple: nothing to delete.
expect 0 ct-del "$CA" 40002 "$SA" 8081
ct_has "$CA" 40002 "$SA" 8080 || fail "reply-side tuple deleted an entry"
ok "ct-del of an absent tuple succeeds and deletes nothing"

expect 0 ct-list "$SA" 8080
[ "$(cat "$TMP/out")" = "$CA:40002 $SA:8080 -> $SA:8081" ] ||
	fail "ct-list after delete: $(cat "$TMP/out")"

# A batch: two absent tuples around the last DNAT entry, and a reply-side
# tuple; only the one exact original tuple goes, the direct entry stays.
expect 0 ct-del-many "$CA" 40001 "$SA" 8080 "$CA" 40002 "$SA" 8081 \
    "$CA" 40002 "$SA" 8080 "$CA" 40099 "$SA" 8080
ct_has "$CA" 40002 "$SA" 8080 && fail "ct-del-many left the entry"
ct_has "$CA" 40003 "$SA" 8082 || fail "ct-del-many removed the direct entry"
expect 0 ct-list "$SA" 8080
[ -s "$TMP/out" ] && fail "ct-list after ct-del-many: $(cat "$TMP/out")"
ok "ct-del-many removes exactly the listed entries, absent ones are no error"

expect 0 ct-bench "$CA" 40009 "$SA" 8080 2000
echo "ct bench (absent tuple): $(cat "$TMP/out")"

echo "PASS"
exit 0
