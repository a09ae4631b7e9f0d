#!/bin/bash
# quicktwitchd.service, as installed (DESTDIR, prefix /usr), and what it
# promises.  This machine's PID 1 need not be systemd, so the unit is not
# started; instead:
#   - "systemd-analyze verify" is silent on it (the binary path pointed at
#     the DESTDIR copy, MANPATH at the installed man pages), and a unit
#     with a mistake is not, so the check can fail;
#   - "systemd-analyze security --offline" rates it OK or better;
#   - two daemons run a hand-off with no more than the unit's
#     CapabilityBoundingSet (setpriv, NoNewPrivileges too), in the file
#     system the unit gives them (unit_sandbox.sh: read-only but for the
#     runtime directory and ReadWritePaths, /proc/sys read-only, the
#     control socket in /run/quicktwitchd), one with a control-group that
#     only CAP_CHOWN can give the socket to, under strace: every socket
#     they open is of a family in RestrictAddressFamilies; and without any
#     one of the unit's capabilities the daemon does not start;
#   - node 1's kernel settings come only from the packaged sysctl drop-in
#     (systemd-sysctl, after setting each one wrong), and the daemon,
#     which refuses wrong ones, starts.
source "$(dirname "$0")/lib.sh"
require_root
for t in systemd-analyze setpriv strace man /lib/systemd/systemd-sysctl; do
	command -v $t >/dev/null || {
		echo "SKIP: $t missing (scripts/deps.sh installs systemd, strace, man-db)"
		exit $ksft_skip
	}
done

D=$TMP/dest
DESTDIR=$D cmake --install "$QT_BUILD" --prefix /usr > "$TMP/install.log" 2>&1 ||
	fail "cmake --install: $(tail -5 "$TMP/install.log")"
UNIT=$D/usr/lib/systemd/system/quicktwitchd.service
[ -f "$UNIT" ] || fail "no unit installed"

# verify checks that each Exec binary exists and each Documentation man
# page opens: point both at what was just installed.
mkdir -p "$TMP/u"
sed "s|/usr/sbin/quicktwitchd|$D/usr/sbin/quicktwitchd|g" "$UNIT" > "$TMP/u/quicktwitchd.service"
out=$(MANPATH=$D/usr/share/man systemd-analyze verify "$TMP/u/quicktwitchd.service" 2>&1) ||
	fail "systemd-analyze verify failed: $out"
[ -z "$out" ] || fail "systemd-analyze verify: $out"
sed 's/^Type=notify/Typ=notify/' "$TMP/u/quicktwitchd.service" > "$TMP/u/broken.service"
out=$(MANPATH=$D/usr/share/man systemd-analyze verify "$TMP/u/broken.service" 2>&1)
[ -n "$out" ] || fail "systemd-analyze verify does not notice a broken unit"
pass "systemd-analyze verify: clean (and it does notice a mistake)"

sec=$(systemd-analyze security --offline=yes --no-pager "$TMP/u/quicktwitchd.service" 2>&1 | tail -n 1)
log "$sec"
echo "$sec" | grep -Eq 'Overall exposure level for .*: [0-9.]+ (OK|SAFE|PERFECT)' ||
	fail "exposure: $sec"
pass "systemd-analyze security: rated OK or better"

unit_value() { sed -n "s/^$1=//p" "$UNIT" | tail -n 1; }
caps=$(unit_value CapabilityBoundingSet)
families=$(unit_value RestrictAddressFamilies)
[ -n "$caps" ] && [ -n "$families" ] || fail "the unit sets no capabilities or families"
grep -qx 'NoNewPrivileges=yes' "$UNIT" || fail "the unit lacks NoNewPrivileges=yes"
bounding=-all
for c in $caps; do
	c=${c#CAP_}
	bounding="$bounding,+${c,,}"
done
log "capabilities: $bounding; families: $families"

RUNDIR_BEFORE=$(ls -d /run/quicktwitchd 2>/dev/null || true)
make_cluster 2
obj=$(name_owned_by 2 obj)
make_file "$obj" 1m
grp=nogroup
getent group $grp >/dev/null || fail "no group $grp"
RUNSOCK=/run/$(unit_value RuntimeDirectory)/qt.sock
write_config 1 "control-socket $RUNSOCK"
write_config 2 "control-group $grp" "control-socket $RUNSOCK"

# Node 1's settings wrong, then the drop-in alone puts them right.
in_node 1 sysctl -qw net.ipv4.ip_forward=0 net.ipv4.conf.all.send_redirects=1 \
    net.ipv4.conf.eth0.send_redirects=1 net.netfilter.nf_conntrack_tcp_loose=0
in_node 1 /lib/systemd/systemd-sysctl "$D/usr/lib/sysctl.d/50-quicktwitch.conf" ||
	fail "systemd-sysctl rejects the drop-in"
for kv in net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 \
    net.ipv4.conf.default.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0 \
    net.netfilter.nf_conntrack_tcp_loose=1; do
	[ "$(in_node 1 sysctl -n "${kv%=*}")" = "${kv#*=}" ] ||
		fail "after the drop-in ${kv%=*} is $(in_node 1 sysctl -n "${kv%=*}")"
done
pass "the sysctl drop-in sets every kernel setting the daemon checks"

# sandboxed N CAPS CMD...: CMD in node N's namespace, in the unit's file
# system, with only CAPS and no new privileges.
sandboxed() {
	local n=$1 set=$2
	shift 2
	ip netns exec "$(ns "$n")" "$@" unshare -m --propagation private \
	    sh "$QT_SRC/tests/integration/unit_sandbox.sh" "$UNIT" \
	    setpriv --bounding-set="$set" --inh-caps=-all --no-new-privs \
	    "$QTD" -c "$TMP/n$n.conf"
}
# in_jail N CMD...: CMD where node N's daemon is (network and mounts).
in_jail() { local n=$1; shift; nsenter -t "${JPID[$n]}" -n -m "$@"; }

# jail_node N: the daemon as the unit would run it, its sockets traced.
jail_node() {
	local n=$1
	sandboxed "$n" "$bounding" strace -f -qq -e trace=socket \
	    -o "$TMP/strace.n$n" >>"$TMP/n$n.log" 2>&1 &
	DPID[$n]=$!
	busywait 10000 eval 'grep -q " ready:" "$TMP/n$n.log"' ||
		fail "node $n did not start with the unit's capabilities"
	JPID[$n]=$(pgrep -f "^$QTD -c $TMP/n$n.conf")
	[ -n "${JPID[$n]}" ] || fail "cannot find node $n's daemon"
}
# jail_stop N: SIGTERM to the daemon itself; strace ends with it.
jail_stop() {
	kill "${JPID[$1]}"
	wait "${DPID[$1]}" 2>/dev/null
	unset "DPID[$1]"
}
declare -A JPID
jail_node 1
jail_node 2
# The daemon may drop more (privs.c); it must not hold anything else.
for n in 1 2; do
	for field in CapEff CapBnd; do
		v=$(awk -v f="$field:" '$1 == f {print $2}' "/proc/${JPID[$n]}/status")
		for c in $(capsh --decode="$v" | sed 's/.*=//' | tr ',' ' '); do
			case " ${caps,,} " in
			*" $c "*) ;;
			*) fail "node $n holds $c ($field), the unit does not grant it" ;;
			esac
		done
	done
	[ "$(awk '$1 == "NoNewPrivs:" {print $2}' "/proc/${JPID[$n]}/status")" = 1 ] ||
		fail "node $n: no_new_privs not set"
done
[ "$(in_jail 2 stat -c %G "$RUNSOCK")" = $grp ] ||
	fail "control socket group $(in_jail 2 stat -c %G "$RUNSOCK"), want $grp"
# The sandbox is real: nothing else is writable.
in_jail 2 sh -c ': > /var/tmp/qt-unit-probe' 2>/dev/null &&
	fail "the sandbox left /var/tmp writable"
in_jail 2 sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward' 2>/dev/null &&
	fail "the sandbox left /proc/sys writable"
[ ! -e /run/quicktwitchd ] || [ -n "$RUNDIR_BEFORE" ] ||
	fail "the test made /run/quicktwitchd on this machine"
pass "both daemons started within $caps, no_new_privs (control socket given to $grp)"

fetch 1 "$obj" "$TMP/out" || fail "fetch through n1 failed"
cmp -s "$TMP/out" "$TMP/www/$obj" || fail "body differs"
[ "$(served_by "$TMP/out.h")" = 2 ] || fail "not served by n2"
grep -q 'handed-off: to n2' "$TMP/n1.log" || fail "n1 logged no hand-off"
in_jail 2 "$QT_BUILD/qtctl" -s "$RUNSOCK" stats > /dev/null ||
	fail "qtctl cannot talk to the jailed daemon"
pass "a hand-off in the unit's sandbox with its capabilities: served by n2, byte-exact"

jail_stop 1
jail_stop 2
used=$(cat "$TMP"/strace.n* | sed -n 's/.*socket(\(AF_[A-Z0-9]*\),.*/\1/p' | LC_ALL=C sort -u | tr '\n' ' ')
log "families used: $used"
[ -n "$used" ] || fail "strace saw no socket"
for f in $used; do
	case " $families " in
	*" $f "*) ;;
	*) fail "the daemon opens $f sockets, RestrictAddressFamilies lacks it" ;;
	esac
done
pass "every socket family used is in RestrictAddressFamilies"

# Each capability the unit grants is needed: without any one of them
# node 2 (control-group nogroup, port 80) does not start; but CAP_BPF,
# without which it starts and says it rebuilds with a filter compiled
# for each socket (more CPU per hand-off), as it must not say with it.
! grep -q 'no eBPF socket filter' "$TMP/n1.log" "$TMP/n2.log" ||
	fail "with the unit's capabilities, no eBPF socket filter: $(grep -h -m1 'no eBPF' "$TMP/n1.log" "$TMP/n2.log")"
for c in $caps; do
	c=${c#CAP_}
	less=${bounding/,+${c,,}/}
	if [ "$c" = BPF ]; then
		sandboxed 2 "$less" > "$TMP/less.log" 2>&1 &
		DPID[9]=$!
		busywait 10000 grep -q ' ready:' "$TMP/less.log" ||
			fail "without CAP_BPF node 2 did not start: $(tail -n 3 "$TMP/less.log")"
		JPID[9]=$(pgrep -f "^$QTD -c $TMP/n2.conf")
		[ -n "${JPID[9]}" ] || fail "cannot find node 2's daemon"
		jail_stop 9
		grep -q 'no eBPF socket filter (Operation not permitted)' "$TMP/less.log" ||
			fail "without CAP_BPF node 2 did not say it lacks its eBPF filter"
		log "without CAP_BPF: started, $(grep -m1 'no eBPF' "$TMP/less.log" | sed 's/^[^:]*: //')"
		continue
	fi
	sandboxed 2 "$less" > "$TMP/less.log" 2>&1 &
	DPID[9]=$!
	busywait 10000 eval '! kill -0 ${DPID[9]} 2>/dev/null' ||
		fail "without CAP_$c node 2 keeps running: is it needed?"
	wait "${DPID[9]}"
	rc=$?
	unset "DPID[9]"
	! grep -q ' ready:' "$TMP/less.log" && [ "$rc" = 1 ] ||
		fail "without CAP_$c node 2 became ready or exited $rc"
	log "without CAP_$c: $(grep -m1 'error:' "$TMP/less.log" | sed 's/^[^:]*: //')"
done
pass "each capability the unit grants is needed: without one, no start (without CAP_BPF, a costlier filter)"
