#!/bin/bash
# Key rotation, as docs/security.md describes it: (1) every node accepts
# the new key too, (2) every node signs with the new key and still accepts
# the old, (3) the old key goes.  Hand-offs work at every step, also while
# the nodes are halfway through a step; afterwards the old key is refused.
source "$(dirname "$0")/lib.sh"
require_root
make_cluster 3
old=$TMP/key
new=$TMP/key.new
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$new"
for i in 1 2 3; do write_config "$i"; done
mapfile -t paths < <(for k in $(seq 1 60); do echo "k$k"; done)
for p in "${paths[@]}"; do make_file "$p" 5000; done
start_cluster

# every front hands off to every other node
check() {
	local what=$1 front p want
	for front in 1 2 3; do
		for p in "${paths[@]:0:12}"; do
			want=$(owner "/$p")
			fetch "$front" "$p" "$TMP/o" || fail "$what: $p via n$front failed"
			cmp -s "$TMP/o" "$TMP/www/$p" || fail "$what: $p via n$front differs"
			[ "$(served_by "$TMP/o.h")" = "$want" ] ||
			    fail "$what: $p via n$front not served by n$want"
		done
	done
	pass "$what: hand-offs between all nodes work"
}
set_keys() {	# set_keys N SIGN [ACCEPT]
	sed -i '/^key-file /d; /^accept-key-file /d' "$TMP/n$1.conf"
	echo "key-file $2" >> "$TMP/n$1.conf"
	[ -n "${3:-}" ] && echo "accept-key-file $3" >> "$TMP/n$1.conf"
	qtctl "$1" reload >/dev/null || fail "n$1 reload failed"
}
check "old key"
set_keys 1 "$old" "$new"; check "step 1 on n1 only"
set_keys 2 "$old" "$new"; set_keys 3 "$old" "$new"; check "step 1 done"
set_keys 1 "$new" "$old"; check "step 2 on n1 only"
set_keys 2 "$new" "$old"; set_keys 3 "$new" "$old"; check "step 2 done"
set_keys 1 "$new"; set_keys 2 "$new"; set_keys 3 "$new"; check "step 3 done"
before=$(qtctl 2 stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"]["forged"])')
in_client "$QT_BUILD/qtforge" "$old" "$CLIENT_ADDR" 40009 "$(addr 2)" 8001 1 || fail "qtforge"
busywait 3000 eval '[ "$(qtctl 2 stats --json | python3 -c "import json,sys; print(json.load(sys.stdin)[\"counters\"][\"forged\"])")" = $((before + 1)) ]' ||
	fail "a replay under the retired key was not refused"
pass "a replay under the retired key is refused"
