#!/bin/bash
# Configuration checking: -n says "configuration OK" for the shipped
# example (with its key file made), and names every bad line as
# file:line: message; the kernel-settings check refuses to start and
# names the fix, or sets them when allowed.
source "$(dirname "$0")/lib.sh"
require_root

key=$TMP/key
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$key"
sed "s|^key-file.*|key-file $key|" "$QT_SRC/conf/qt.conf" > "$TMP/ok.conf"
out=$("$QTD" -n -c "$TMP/ok.conf" 2>&1) || fail "shipped example rejected: $out"
[ "$out" = "configuration OK" ] || fail "unexpected output: $out"
pass "shipped example: configuration OK"

cat > "$TMP/bad.conf" <<CONF
self n1
node n1 id 1 address 198.18.0.1
node n2 id 70 address 198.18.0.2
node n3 id 3 address 198.18.0.300
node n1 id 4 address 198.18.0.4
service http port 80 handoff-base 8000
service alt port 8001 handoff-base 9000
handoff-tries 0
header-timeout soon
set-sysctls maybe
frobnicate 1
key-file $key
log-level loud
CONF
out=$("$QTD" -n -c "$TMP/bad.conf" 2>&1) && fail "bad config accepted"
echo "$out" | sed 's/^/#   /'
for want in ":3: node n2: id" ":4: node n3: \"198.18.0.300\"" \
    ":5: node n1: name, id or address already used" \
    ":8: handoff-tries" ":9: header-timeout: \"soon\"" \
    ":10: set-sysctls: \"maybe\"" ":11: unknown keyword \"frobnicate\"" \
    ":13: log-level" ":7: service alt: port 8001 lies in a hand-off port range"; do
	echo "$out" | grep -qF "$TMP/bad.conf$want" ||
	    fail "missing error: $want"
done
echo "$out" | grep -qF "$TMP/bad.conf:3:" || fail "errors do not carry file:line"
pass "every bad line named as file:line: message"

printf 'self n1\nlog-level de\0bug\nnode n1 id 1 address 198.18.0.1\nservice http port 80 handoff-base 8000\nkey-file %s\n%02000d\n' \
    "$key" 0 > "$TMP/nul.conf"
out=$("$QTD" -n -c "$TMP/nul.conf" 2>&1) && fail "a NUL byte accepted"
[ "$out" = "$TMP/nul.conf:2: NUL byte in the line
$TMP/nul.conf:6: line too long (at most 1023 bytes)
$TMP/nul.conf: 2 errors, not started" ] || fail "NUL and long lines: $out"
pass "a NUL byte and an overlong line named, the lines around them read"

printf 'self n1\nnode n1 id 1 address 198.18.0.1\nservice http port 80 handoff-base 8000\nkey-file %s\n' \
    "$TMP/nokey" > "$TMP/nokey.conf"
out=$("$QTD" -n -c "$TMP/nokey.conf" 2>&1) && fail "missing key file accepted"
echo "$out" | grep -q 'key-file' || fail "missing key file not named: $out"
pass "missing key file named"

# Kernel settings: a node whose namespace has ip_forward=0.
make_cluster 1
write_config 1
in_node 1 sysctl -qw net.ipv4.ip_forward=0
in_node 1 "$QTD" -c "$TMP/n1.conf" > "$TMP/sysctl.out" 2>&1 &&
    fail "started with ip_forward=0"
grep -q "net.ipv4.ip_forward is 0, must be 1: run 'sysctl -w net.ipv4.ip_forward=1'" \
    "$TMP/sysctl.out" || fail "refusal does not name the setting and fix: $(cat "$TMP/sysctl.out")"
pass "refuses to start with ip_forward=0 and names the fix"
write_config 1 "set-sysctls yes"
start_node 1
[ "$(in_node 1 sysctl -n net.ipv4.ip_forward)" = 1 ] || fail "set-sysctls did not set ip_forward"
pass "set-sysctls yes sets it and starts"
