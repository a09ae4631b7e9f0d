#!/bin/bash
# Failover: with a client loop fetching many paths through n1 and n2, n3's
# daemon is stopped (and, in a second round, n3's link is cut).  The
# fronts see n3 down within the detection time (dead-after) and stop
# handing off to it; every request is answered correctly throughout (the
# ones caught before detection are taken back); when n3 returns, it gets
# hand-offs again.
source "$(dirname "$0")/lib.sh"
require_root
make_cluster 3
for i in 1 2 3; do write_config "$i" "heartbeat-interval 100" "dead-after 500"; done
for k in $(seq 1 30); do make_file "p$k" 20000; done
start_cluster

# loop FILE: fetch p1..p30 through n1 and n2 in turn until told to stop;
# one line per request: epoch-ms front path status served-by ok|BAD.
cat > "$TMP/loop.sh" <<'LOOP'
#!/bin/bash
www=$1 out=$2 stop=$3
while [ ! -e "$stop" ]; do
	for k in $(seq 1 30); do
		for front in 198.18.0.1 198.18.0.2; do
			t=$(date +%s%3N)
			code=$(curl -s --max-time 5 -o "$out.body" -D "$out.h" \
			    -w '%{http_code}' "http://$front/p$k")
			by=$(sed -n 's/^X-Served-By: n\([0-9]*\).*/\1/p' "$out.h" | tr -d '\r')
			ok=BAD
			[ "$code" = 200 ] && cmp -s "$out.body" "$www/p$k" && ok=ok
			echo "$t $front p$k $code ${by:--} $ok"
		done
	done
done
LOOP
round() {
	local what=$1 stop_cmd=$2 start_cmd=$3 t_stop t_down bad late n3late
	rm -f "$TMP/stop" "$TMP/log"
	ip netns exec "$CL" bash "$TMP/loop.sh" "$TMP/www" "$TMP/l" "$TMP/stop" > "$TMP/log" &
	local lp=$!
	sleep 1.5
	t_stop=$(date +%s%3N)
	eval "$stop_cmd"
	busywait 3000 eval '[ "$(grep -c "node n3 .* is down" "$TMP/n1.log")" -ge "$UPS" ]' ||
		fail "$what: n1 never saw n3 down"
	busywait 3000 eval '[ "$(grep -c "node n3 .* is down" "$TMP/n2.log")" -ge "$UPS" ]' ||
		fail "$what: n2 never saw n3 down"
	log "$what: detected after $(( $(date +%s%3N) - t_stop )) ms or less"
	sleep 2
	eval "$start_cmd"
	busywait 3000 eval '[ "$(grep -c "node n3 .* is up" "$TMP/n1.log")" -ge "$UPS" ]' ||
		fail "$what: n1 never saw n3 up again"
	sleep 1.5
	touch "$TMP/stop"; wait "$lp"
	bad=$(grep -c ' BAD$' "$TMP/log")
	total=$(wc -l < "$TMP/log")
	[ "$bad" = 0 ] || { grep ' BAD$' "$TMP/log" | head; fail "$what: $bad of $total requests failed"; }
	# After detection (+0.2 s for requests already under way), nothing
	# was served by n3 until it was back.
	t_down=$(( t_stop + 500 + 300 ))
	n3late=$(awk -v a="$t_down" -v b="$(( t_stop + 2500 ))" \
	    '$1 > a && $1 < b && $5 == 3' "$TMP/log" | wc -l)
	[ "$n3late" = 0 ] || fail "$what: $n3late requests served by n3 after detection"
	after=$(awk -v b="$(( t_stop + 4000 ))" '$1 > b && $5 == 3' "$TMP/log" | wc -l)
	[ "$after" -gt 0 ] || fail "$what: n3 got no requests after it came back"
	pass "$what: $total requests, 0 failed; none went to n3 while it was down; it serves again after"
}
UPS=1
round "n3's daemon stopped" 'stop_node 3' 'start_node 3'
UPS=2
round "n3's link cut" 'ip -n "$SW" link set n3 down' 'ip -n "$SW" link set n3 up'
