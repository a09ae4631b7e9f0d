#!/bin/bash
# qtctl list-flows during a live 100 MB hand-off: the front lists it
# handed off to the back, the back lists it as its own with the origin and
# a growing byte count; the JSON parses and agrees with the table on both.
source "$(dirname "$0")/lib.sh"
require_root
make_cluster 3
f=$(name_owned_by 2 live) || fail "no name hashes to n2"
make_file "$f" 104857600
start_cluster

ip netns exec "$CL" curl -sS --max-time 60 --limit-rate 20M \
    -o "$TMP/out" "http://$(addr 1)/$f" &
cpid=$!
busywait 5000 eval 'qtctl 1 list-flows --state handed-off --json | grep -q handed-off' ||
	fail "no handed-off flow listed on n1"
sleep 1
for n in 1 2; do
	qtctl "$n" list-flows --json > "$TMP/f$n.json" || fail "n$n list-flows --json"
	qtctl "$n" list-flows > "$TMP/f$n.txt" || fail "n$n list-flows"
done
sleep 1
qtctl 2 list-flows --json > "$TMP/f2b.json" || fail "n2 list-flows --json"
python3 - "$TMP" "/$f" <<'PY' || fail "list-flows disagrees"
import json, sys
tmp, path = sys.argv[1], sys.argv[2]
cols = ["id", "role", "state", "client", "service", "peer", "age", "bytes",
        "requests", "request"]
def check(n, role, state, peer):
    flows = json.load(open(f"{tmp}/f{n}.json"))["flows"]
    live = [x for x in flows if x["request"] == f"GET {path} HTTP/1.1"]
    assert len(live) == 1, (n, flows)
    x = live[0]
    assert (x["role"], x["state"], x["peer"], x["service"]) == \
        (role, state, peer, "http"), x
    assert x["client"].startswith("198.18.0.100:"), x
    lines = open(f"{tmp}/f{n}.txt").read().splitlines()
    rows = {}
    for l in lines[1:]:
        v = l.split(None, 9)
        rows[int(v[0])] = dict(zip(cols, v))
    assert sorted(rows) == sorted(y["id"] for y in flows), (rows, flows)
    r = rows[x["id"]]
    for k in ("role", "state", "client", "service", "peer", "request"):
        assert r[k] == str(x[k]), (n, k, r[k], x[k])
    return x
check(1, "front", "handed-off", "n2")
b = check(2, "back", "back", "n1")
b2 = [x for x in json.load(open(f"{tmp}/f2b.json"))["flows"]
      if x["id"] == b["id"]][0]
assert 0 < b["bytes"] < b2["bytes"] < 104857600, (b, b2)
print(f"# back sent {b['bytes']} then {b2['bytes']} bytes")
PY
pass "front lists it handed off to n2, back lists it from n1, bytes growing, table = JSON"
for n in 1 2 3; do states_agree "$n" || fail "n$n: stats' flows by state are not its records'"; done
pass "stats' counts by state agree with the flow records on every node"
wait "$cpid" || fail "transfer failed"
cmp -s "$TMP/out" "$TMP/www/$f" || fail "body differs"
pass "100 MB transfer complete and byte-exact"
