#!/bin/bash
# t_ipt: nf_ipt.c (through tests/tools/qtipt) in network namespaces of its
# own.  The sample rule set must show up in iptables-legacy-save exactly as
# iptables would write it, with our jumps first in their built-in chains;
# applying again must not duplicate anything; the DNAT + set rule must
# steer real traffic; remove must leave only what was there before.
#
# Exit: 0 pass, 1 fail, 4 skipped (not root, or a tool missing).
set -u

QT_BUILD=${QT_BUILD:-/work/main/build}
QTIPT=$QT_BUILD/qtipt
NS=qt-ipt-$$		# front end F and back end B: the rules live here
NC=qt-ipt-$$-c		# client C, for the traffic check
F=198.18.0.1
B=198.18.0.2
C=198.18.0.3
SET=qt-ipt-steer
TMP=
PIDS=()

fail() {
	echo "FAIL: t_ipt: $*" >&2
	exit 1
}

skip() {
	echo "SKIP: t_ipt: $*" >&2
	exit 4
}

cleanup() {
	local pid

	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	# What in_ns started in the background runs under a subshell: the
	# kill above stops only that.  A namespace whose processes live on
	# is gone from "ip netns list" but not from the host.
	for pid in $(ip netns pids "$NS" 2>/dev/null) \
	    $(ip netns pids "$NC" 2>/dev/null); do
		kill "$pid" 2>/dev/null
	done
	ip netns del "$NC" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	[ -n "$TMP" ] && rm -rf "$TMP"
}

in_ns() {
	ip netns exec "$NS" "$@"
}

# busywait SECONDS CMD...: retries CMD every 0.1 s until it succeeds.
busywait() {
	local deadline=$((SECONDS + $1))

	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

[ "$(id -u)" -eq 0 ] || skip "needs root"
for tool in ip ipset iptables-legacy iptables-legacy-save \
    iptables-legacy-restore; do
	command -v "$tool" >/dev/null || skip "no $tool"
done
[ -x "$QTIPT" ] || fail "no $QTIPT (build first, or set QT_BUILD)"

trap cleanup EXIT
ip netns add "$NS" || fail "cannot create namespace $NS"
TMP=$(mktemp -d) || fail "mktemp"

save() {
	in_ns iptables-legacy-save > "$TMP/save" || fail "iptables-legacy-save"
}

# has LINE: the last save holds exactly this line.
has() {
	grep -qxF -- "$1" "$TMP/save" || {
		cat "$TMP/save" >&2
		fail "missing from iptables-legacy-save: $1"
	}
}

# count PATTERN: lines of the last save matching an extended regexp.
count() {
	grep -cE -- "$1" "$TMP/save"
}

# first_rule TABLE CHAIN: the first rule of a built-in chain, as -S says.
first_rule() {
	in_ns iptables-legacy -t "$1" -S "$2" | sed -n 2p
}

JUMPS=(
	"raw PREROUTING QT-RAW-PRE"
	"raw OUTPUT QT-RAW-OUT"
	"nat PREROUTING QT-NAT-PRE"
	"nat POSTROUTING QT-NAT-POST"
	"filter INPUT QT-IN"
)

# Each jump is present once, as the first rule of its built-in chain.
check_jumps() {
	local j t b q

	save
	for j in "${JUMPS[@]}"; do
		read -r t b q <<< "$j"
		[ "$(first_rule "$t" "$b")" = "-A $b -j $q" ] ||
		    fail "$t $b: first rule is not the jump to $q ($1)"
		[ "$(count "^-A $b -j $q\$")" -eq 1 ] ||
		    fail "$t $b: jump to $q not exactly once ($1)"
	done
}

# "TABLE|RULE" for every sample rule, as iptables-legacy-save prints it.
RULES=(
	"raw|-A QT-RAW-PRE -d $B/32 -p tcp -m tcp --dport 8000:8063 --tcp-option 253 -j DROP"
	"raw|-A QT-RAW-PRE -d $B/32 -p tcp -m tcp --dport 8000:8063 -j CT --notrack"
	"raw|-A QT-RAW-PRE -d $F/32 -p tcp -m tcp --dport 80 --tcp-flags FIN FIN -m set --match-set $SET src,src,dst -j NFLOG --nflog-group 20820 --nflog-size 128 --nflog-threshold 64"
	"raw|-A QT-RAW-PRE -d $F/32 -p tcp -m tcp --dport 80 -m set --match-set $SET src,src,dst -j RETURN"
	"raw|-A QT-RAW-OUT -p tcp -m tcp --tcp-option 253 -j CT --notrack"
	"nat|-A QT-NAT-PRE -d $F/32 -p tcp -m tcp --dport 80 -m set --match-set $SET src,src,dst -j DNAT --to-destination $B:8001"
	"nat|-A QT-NAT-POST -s $B/32 -p tcp -m tcp --sport 8002 -j SNAT --to-source $F:80"
	"filter|-A QT-IN -d $B/32 -p tcp -m tcp --dport 8000:8063 -m socket -j ACCEPT"
	"filter|-A QT-IN -d $B/32 -p tcp -m tcp --dport 8000:8063 -j DROP"
)

QT_CHAINS=(QT-RAW-PRE QT-RAW-OUT QT-NAT-PRE QT-NAT-POST QT-IN)

# The sample, in order, and nothing else in our chains.
check_sample() {
	local r q want got

	check_jumps "$1"
	for r in "${RULES[@]}"; do
		has "${r#*|}"
	done
	for q in "${QT_CHAINS[@]}"; do
		want=$(for r in "${RULES[@]}"; do
			[[ ${r#*|} == "-A $q "* ]] && echo "${r#*|}"
		done)
		got=$(grep -E "^-A $q " "$TMP/save")
		[ "$got" = "$want" ] ||
		    fail "$q holds, in order:"$'\n'"$got"$'\n'"not:"$'\n'"$want ($1)"
	done
}

# Rules someone else owns: they must survive apply and remove.
in_ns iptables-legacy -t raw -A PREROUTING -p udp --dport 7 -j ACCEPT &&
in_ns iptables-legacy -t nat -A POSTROUTING -p udp --dport 7 -j ACCEPT &&
in_ns iptables-legacy -A INPUT -p udp --dport 7 -j ACCEPT ||
    fail "cannot add the foreign rules"
FOREIGN=(
	"-A PREROUTING -p udp -m udp --dport 7 -j ACCEPT"
	"-A POSTROUTING -p udp -m udp --dport 7 -j ACCEPT"
	"-A INPUT -p udp -m udp --dport 7 -j ACCEPT"
)

in_ns ipset create "$SET" hash:ip,port,ip || fail "ipset create"

# A missing set fails before any table is touched.
out=$(in_ns "$QTIPT" apply-sample "$F" "$B" qt-ipt-nosuchset 2>&1) &&
    fail "apply with a missing set succeeded"
grep -q 'qt-ipt-nosuchset' <<< "$out" ||
    fail "error does not name the missing set: $out"
save
[ "$(count 'QT-')" -eq 0 ] || fail "failed apply left QT chains behind"

in_ns "$QTIPT" apply-sample "$F" "$B" "$SET" || fail "first apply"
check_sample "first apply"
for r in "${FOREIGN[@]}"; do
	has "$r"
done

# Byte for byte what iptables itself builds: -C compares whole entries,
# every match and target's revision and data included.
for r in "${RULES[@]}"; do
	t=${r%%|*}
	rule=${r#*|}
	chain=${rule#-A }
	chain=${chain%% *}
	read -ra args <<< "${rule#-A $chain }"
	in_ns iptables-legacy -t "$t" -C "$chain" "${args[@]}" ||
	    fail "iptables-legacy -C does not find: $rule"
done

in_ns "$QTIPT" apply-sample "$F" "$B" "$SET" || fail "second apply"
check_sample "second apply"

# Our jump pushed down by someone's insert, and a duplicate jump: both
# are repaired, leaving one jump at the head.
in_ns iptables-legacy -I INPUT 1 -p udp --dport 9 -j ACCEPT &&
in_ns iptables-legacy -t nat -A PREROUTING -j QT-NAT-PRE ||
    fail "cannot disturb the jumps"
in_ns "$QTIPT" apply-sample "$F" "$B" "$SET" || fail "apply after disturbing"
check_sample "apply after disturbing"
in_ns iptables-legacy -D INPUT -p udp --dport 9 -j ACCEPT ||
    fail "cannot delete the pushing rule"

# What iptables-save printed, iptables-restore takes back.
in_ns iptables-legacy-restore < "$TMP/save" ||
    fail "iptables-legacy-restore rejects the saved rules"

# No rules: empty chains, jumps still there.
in_ns "$QTIPT" apply-empty || fail "apply-empty"
check_jumps "apply-empty"
[ "$(count '^-A QT-')" -eq 0 ] || fail "apply-empty left rules"
for q in "${QT_CHAINS[@]}"; do
	[ "$(count "^:$q ")" -eq 1 ] || fail "apply-empty: no chain $q"
done

in_ns "$QTIPT" apply-sample "$F" "$B" "$SET" || fail "apply after empty"
check_sample "apply after empty"

# Traffic: C talks to F:80.  A flow in the set is DNATed to B:8001 (which
# answers "back"); any other flow reaches F:80 itself (which answers
# "front").  B is a second address in F's namespace: cheap, and the DNAT
# path is the same.
if command -v python3 >/dev/null && command -v curl >/dev/null &&
    command -v ss >/dev/null; then
	ip netns add "$NC" || fail "cannot create namespace $NC"
	ip -n "$NS" link add veth0 type veth peer name veth0 netns "$NC" &&
	ip -n "$NS" addr add "$F/24" dev veth0 &&
	ip -n "$NS" addr add "$B/24" dev veth0 &&
	ip -n "$NC" addr add "$C/24" dev veth0 &&
	ip -n "$NS" link set veth0 up &&
	ip -n "$NS" link set lo up &&
	ip -n "$NC" link set veth0 up &&
	ip -n "$NC" link set lo up || fail "cannot wire $NS and $NC"

	mkdir -p "$TMP/front" "$TMP/back"
	echo front > "$TMP/front/who"
	echo back > "$TMP/back/who"
	# Not through in_ns: $! must be the server itself (ip execs it).
	ip netns exec "$NS" python3 -m http.server --bind "$F" \
	    --directory "$TMP/front" 80 >/dev/null 2>&1 &
	PIDS+=($!)
	ip netns exec "$NS" python3 -m http.server --bind "$B" \
	    --directory "$TMP/back" 8001 >/dev/null 2>&1 &
	PIDS+=($!)
	listening() {
		[ -n "$(in_ns ss -Hltn "src $1")" ]
	}
	busywait 10 listening "$F:80" || fail "front server did not start"
	busywait 10 listening "$B:8001" || fail "back server did not start"

	# Addresses may need a moment (DAD does not apply to IPv4, but the
	# link may still be coming up): wait until the front answers.
	fetch() {
		ip netns exec "$NC" curl -s --max-time 5 --local-port "$1" \
		    "http://$F/who"
	}
	busywait 10 fetch 40001 >/dev/null || fail "C cannot reach F:80"

	in_ns ipset add "$SET" "$C,tcp:40000,$F" || fail "ipset add"
	got=$(fetch 40000) || fail "steered fetch failed"
	[ "$got" = back ] || fail "steered flow answered by '$got', not B"
	got=$(fetch 40002) || fail "unsteered fetch failed"
	[ "$got" = front ] || fail "unsteered flow answered by '$got', not F"
	echo "t_ipt: DNAT + set steered C:40000 to B, C:40002 stayed on F"
else
	echo "t_ipt: no python3/curl/ss, traffic check skipped"
fi

in_ns "$QTIPT" remove || fail "remove"
save
[ "$(count 'QT-')" -eq 0 ] || { cat "$TMP/save" >&2; fail "QT left after remove"; }
for r in "${FOREIGN[@]}"; do
	has "$r"
done
in_ns "$QTIPT" remove || fail "second remove (nothing to remove)"

echo "PASS: t_ipt"
exit 0
