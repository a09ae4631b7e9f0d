#!/bin/bash
# Runs last: the tests before it left nothing behind, neither in their
# own namespaces (all gone) nor in the root namespace (no process, no
# set, no rule of ours).
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 4; }
bad=0
ns=$(ip netns list | awk '{print $1}' | grep -E '^qt[0-9]+-' || true)
[ -z "$ns" ] || { echo "FAIL: namespaces left: $ns"; bad=1; }
procs=$(pgrep -a -x quicktwitchd || true)
[ -z "$procs" ] || { echo "FAIL: daemons left: $procs"; bad=1; }
sets=$(ipset list -n 2>/dev/null | grep -E '^qt-' || true)
[ -z "$sets" ] || { echo "FAIL: ipsets in the root namespace: $sets"; bad=1; }
rules=$(iptables-legacy-save 2>/dev/null | grep -c 'QT-' || true)
[ "${rules:-0}" = 0 ] || { echo "FAIL: $rules QT rules in the root namespace"; bad=1; }
tmp=$(ls -d /tmp/qt-test.* 2>/dev/null || true)
[ -z "$tmp" ] || { echo "FAIL: temporary directories left: $tmp"; bad=1; }
[ "$bad" = 0 ] && echo "ok: nothing left behind"
exit "$bad"
