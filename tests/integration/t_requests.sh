#!/bin/bash
# Request handling at the front and at a back: malformed requests get an
# error status and a close (nothing else), the responder answers GET and
# HEAD, 404 and 405, refuses traversal, and answers pipelined requests in
# order, whether the connection was handed off or served locally.
source "$(dirname "$0")/lib.sh"
require_root
make_cluster 3
for i in 1 2 3; do write_config "$i" "header-timeout 1000"; done
loc=$(name_owned_by 1 loc); rem=$(name_owned_by 2 rem)
make_file "$loc" 5000
make_file "$rem" 7000
start_cluster
rst_watch_start

raw() { in_client python3 "$QT_SRC/tests/integration/rawhttp.py" "$(addr 1)" 80 "$@"; }
expect() {
	local what=$1 want=$2 out
	shift 2
	out=$(raw "$@" | tr '\n' '|')
	case "$out" in
	$want) pass "$what" ;;
	*) fail "$what: got '$out', want '$want'" ;;
	esac
}

H='Host: x\r\n'
expect "garbage: 400 and close" "HTTP/1.1 400 Bad Request|CLOSED|*" 'GARBAGE\r\n\r\n'
expect "NUL in the request line: 400" "HTTP/1.1 400 *|CLOSED|*" 'GET /a\x00b HTTP/1.1\r\n\r\n'
expect "HTTP/2.0: 505" "HTTP/1.1 505 *|CLOSED|*" 'GET / HTTP/2.0\r\n\r\n'
big=$(printf 'X-Pad: %020000d\\r\\n' 0)
expect "20 KB header: 431" "HTTP/1.1 431 *|CLOSED|*" "GET /$loc HTTP/1.1\\r\\n$H$big\\r\\n"
expect "no Host in HTTP/1.1: 400" "HTTP/1.1 400 *|CLOSED|*" "GET /$loc HTTP/1.1\\r\\n\\r\\n"
expect "traversal: 400" "HTTP/1.1 400 *|CLOSED|*" "GET /../../etc/passwd HTTP/1.1\\r\\n$H\\r\\n"
expect "encoded traversal: 400" "HTTP/1.1 400 *|CLOSED|*" "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\\r\\n$H\\r\\n"
expect "HTTP/0.9 request line: 400" "HTTP/1.1 400 *|CLOSED|*" 'GET /\r\n\r\n'
expect "CONNECT: 400" "HTTP/1.1 400 *|CLOSED|*" "CONNECT x:443 HTTP/1.1\\r\\n$H\\r\\n"
expect "OPTIONS *: 405" "HTTP/1.1 405 *|CLOSED|*" "OPTIONS * HTTP/1.1\\r\\n$H\\r\\n"
expect "DELETE: 405" "HTTP/1.1 405 *|CLOSED|*" "DELETE /$loc HTTP/1.1\\r\\n$H\\r\\n"
expect "invalid percent-encoding: 400" "HTTP/1.1 400 *|CLOSED|*" "GET /a%zz HTTP/1.1\\r\\n$H\\r\\n"
expect "absolute-form target: served" "HTTP/1.1 200 OK|CLOSED|*" "GET http://x/$loc HTTP/1.1\\r\\n${H}Connection: close\\r\\n\\r\\n"
expect "pipelined garbage after a valid request: 200, then 400 and close" \
    "HTTP/1.1 200 OK|HTTP/1.1 400 *|CLOSED|*" "GET /$loc HTTP/1.1\\r\\n$H\\r\\nGARBAGE\\r\\n\\r\\n"
expect "partial request, then silence: 408 and close" "HTTP/1.1 408 *|CLOSED|*" "GET /$loc HTTP/1.1\\r\\n" 3

for p in "$loc" "$rem"; do
	where=local; [ "$p" = "$rem" ] && where=hand-off
	expect "$where: POST gets 405 and close" "HTTP/1.1 405 *|CLOSED|*" \
	    "POST /$p HTTP/1.1\\r\\n${H}Content-Length: 3\\r\\n\\r\\nabc"
	expect "$where: missing file 404, connection kept" "HTTP/1.1 404 *|OPEN|*" \
	    "GET /$p-missing HTTP/1.1\\r\\n$H\\r\\n" 1
	out=$(raw "HEAD /$p HTTP/1.1\\r\\n${H}Connection: close\\r\\n\\r\\n" | tr '\n' '|')
	case "$out" in "HTTP/1.1 200 OK|CLOSED|"*) ;; *) fail "$where: HEAD: $out" ;; esac
	len=${out##*|CLOSED|}; len=${len%|}
	[ "$len" -lt 400 ] || fail "$where: HEAD carried a body ($len bytes)"
	pass "$where: HEAD 200 without a body"
	size=$(stat -c %s "$TMP/www/$p")
	out=$(raw "GET /$p HTTP/1.1\\r\\n$H\\r\\nGET /$p HTTP/1.1\\r\\n${H}Connection: close\\r\\n\\r\\n" | tr '\n' '|')
	case "$out" in "HTTP/1.1 200 OK|HTTP/1.1 200 OK|CLOSED|"*) ;; *) fail "$where: pipelined: $out" ;; esac
	len=${out##*|CLOSED|}; len=${len%|}
	[ "$len" -gt $((2 * size)) ] || fail "$where: pipelined: only $len bytes"
	pass "$where: two pipelined requests answered in order"
done
grep -q "handed-off: to n2" "$TMP/n1.log" || fail "no hand-off happened"

rst=$(rst_watch_count)
[ "$rst" = 0 ] || fail "$rst TCP resets seen at the client"
pass "no reset at the client"
