#!/bin/bash
# The hand-off's step timings (qtctl stats: "timings"), against what the
# test itself did and can see:
#   (a) N sequential hand-offs n1 -> n2: n1 timed N steerings, freezes,
#       replays, front shares and confirmations, n2 N rebuilds, first
#       bytes and back shares (and at least N capture wake-ups); the
#       quantiles ordered (p50 <= p90 <= p99 <= max), and a span that
#       holds steps no shorter than their sum, on every node
#   (b) each node's back share below what the client measured for the
#       whole request (curl's time to first byte, which also holds the
#       handshake and the front's share)
#   (c) n2's daemon stopped: the front's hand-offs are taken back; their
#       steps are timed but no confirmation is, and the front serving
#       them adds nothing to first_byte, which only a back's flows count
#   (d) --prometheus: a histogram per step, buckets cumulative, +Inf equal
#       to the count
#   (e) the event loop's batches of callbacks (loop_busy) on every node:
#       at least one a hand-off, quantiles ordered, and no shorter than
#       the steps that run inside one batch (each step's longest within
#       the longest batch, their sum within the batches' sum); in the
#       text and Prometheus forms as well
source "$(dirname "$0")/lib.sh"
require_root
make_cluster 2
f=$(name_owned_by 2 tm) || fail "no name hashes to n2"
make_file "$f" 1024
start_cluster
N=40

: >"$TMP/ttfb"
for i in $(seq $N); do
	in_client curl -sS --max-time 10 -o /dev/null -H 'Connection: close' \
	    -w '%{time_starttransfer}\n' "http://$(addr 1)/$f" >>"$TMP/ttfb" ||
		fail "(a) fetch $i failed"
done
[ "$(counter 1 handed_off)" = $N ] || fail "(a) $(counter 1 handed_off) of $N handed off"
qtctl 1 stats --json >"$TMP/s1.json" || fail "stats n1"
qtctl 2 stats --json >"$TMP/s2.json" || fail "stats n2"
qtctl 2 stats --prometheus >"$TMP/p2" || fail "stats --prometheus n2"

python3 - "$TMP" $N <<'EOF' || fail "(a)/(b) timings above"
import json, statistics, sys
tmp, n = sys.argv[1], int(sys.argv[2])
s1 = json.load(open(tmp + '/s1.json'))['timings']
s2 = json.load(open(tmp + '/s2.json'))['timings']
bad = []
def want(node, s, step, cmp, v):
    c = s[step]['count']
    if not cmp(c, v):
        bad.append('n%d %s: count %d (want %s %d)' % (node, step, c, cmp.__name__, v))
def eq(a, b): return a == b
def ge(a, b): return a >= b
for step in ('steer', 'freeze', 'replay', 'front_handoff', 'confirm'):
    want(1, s1, step, eq, n)
want(1, s1, 'front_wake', ge, n)
for step in ('rebuild', 'first_byte', 'back_handoff'):
    want(2, s2, step, eq, n)
want(2, s2, 'capture_wake', ge, n)
# Nothing of a back's on the front, nothing of a front's on the back.
for step in ('capture_wake', 'rebuild', 'first_byte', 'back_handoff'):
    want(1, s1, step, eq, 0)
for step in ('steer', 'freeze', 'replay', 'front_handoff', 'confirm'):
    want(2, s2, step, eq, 0)
for node, s in ((1, s1), (2, s2)):
    for step, h in s.items():
        if h['count'] == 0:
            continue
        q = [h['p50_ns'], h['p90_ns'], h['p99_ns'], h['max_ns']]
        if not (0 < q[0] <= q[1] <= q[2] <= q[3]):
            bad.append('n%d %s: quantiles %s not ordered or zero' % (node, step, q))
        if not (h['sum_ns'] <= h['max_ns'] * h['count']):
            bad.append('n%d %s: sum %d above max x count' % (node, step, h['sum_ns']))
# A span holds its steps: no shorter than their sum.
inner = sum(s1[k]['sum_ns'] for k in ('steer', 'freeze', 'replay'))
if s1['front_handoff']['sum_ns'] < inner:
    bad.append('front_handoff %d ns in all, below its steps %d' % (s1['front_handoff']['sum_ns'], inner))
inner = sum(s2[k]['sum_ns'] for k in ('rebuild', 'first_byte'))
if s2['back_handoff']['sum_ns'] < inner:
    bad.append('back_handoff %d ns in all, below its steps %d' % (s2['back_handoff']['sum_ns'], inner))
# The client's TTFB holds the back's share and the front's.
ttfb = statistics.median(float(l) * 1e9 for l in open(tmp + '/ttfb'))
for node, s, step in ((1, s1, 'front_handoff'), (2, s2, 'back_handoff')):
    if not s[step]['p50_ns'] < ttfb:
        bad.append('%s p50 %d ns not below the client TTFB %d ns' % (step, s[step]['p50_ns'], ttfb))
def us(s, k): return '%.0f' % (s[k]['p50_ns'] / 1000)
print('# client TTFB p50 %.0f us; n1 wake %s steer %s freeze %s replay %s front %s confirm %s; '
      'n2 capture %s rebuild %s first byte %s back %s (p50, us)' % (ttfb / 1000,
      us(s1, 'front_wake'), us(s1, 'steer'), us(s1, 'freeze'), us(s1, 'replay'),
      us(s1, 'front_handoff'), us(s1, 'confirm'), us(s2, 'capture_wake'),
      us(s2, 'rebuild'), us(s2, 'first_byte'), us(s2, 'back_handoff')))
for b in bad:
    print('FAIL: ' + b)
sys.exit(1 if bad else 0)
EOF
pass "(a) $N hand-offs: every step timed once on its node, quantiles ordered, spans no shorter than their steps"
pass "(b) each node's share of the hand-off below the client's TTFB"

stop_node 2
fetch 1 "$f" "$TMP/o" || fail "(c) fetch with n2 stopped"
cmp -s "$TMP/o" "$TMP/www/$f" || fail "(c) body differs"
[ "$(served_by "$TMP/o.h")" = 1 ] || fail "(c) not served by the front"
[ "$(counter 1 taken_back)" = 1 ] || fail "(c) $(counter 1 taken_back) taken back"
qtctl 1 stats --json >"$TMP/s1b.json" || fail "stats n1"
python3 - "$TMP" $N <<'EOF' || fail "(c) timings above"
import json, sys
tmp, n = sys.argv[1], int(sys.argv[2])
s = json.load(open(tmp + '/s1b.json'))['timings']
got = {k: s[k]['count'] for k in ('steer', 'freeze', 'replay', 'confirm', 'first_byte')}
want = {'steer': n + 1, 'freeze': n + 1, 'replay': n + 1, 'confirm': n, 'first_byte': 0}
if got != want:
    print('FAIL: counts %s, want %s' % (got, want)); sys.exit(1)
EOF
pass "(c) a taken-back hand-off: its steps timed, no confirmation, nothing in first_byte"

qtctl 1 stats --prometheus >"$TMP/p1" || fail "(d) --prometheus"
python3 - "$TMP/p1" "$TMP/s1b.json" <<'EOF' || fail "(d) Prometheus histograms above"
import json, re, sys
text = open(sys.argv[1]).read()
s = json.load(open(sys.argv[2]))['timings']
bad = []
if '# TYPE quicktwitch_handoff_step_seconds histogram' not in text:
    bad.append('no TYPE line')
for step, h in s.items():
    b = re.findall(r'quicktwitch_handoff_step_seconds_bucket\{step="%s",le="([^"]+)"\} (\d+)' % step, text)
    if len(b) != len(h['le_ns']) + 1 or b[-1][0] != '+Inf':
        bad.append('%s: %d buckets, last %s' % (step, len(b), b[-1] if b else None)); continue
    les = [float(x) for x, _ in b[:-1]]
    counts = [int(c) for _, c in b]
    if les != sorted(les) or counts != sorted(counts):
        bad.append('%s: bounds or counts not ascending' % step)
    if counts[-1] != h['count']:
        bad.append('%s: +Inf %d, count %d' % (step, counts[-1], h['count']))
    m = re.search(r'quicktwitch_handoff_step_seconds_count\{step="%s"\} (\d+)' % step, text)
    if not m or int(m.group(1)) != h['count']:
        bad.append('%s: no _count or wrong' % step)
    m = re.search(r'quicktwitch_handoff_step_seconds_sum\{step="%s"\} ([0-9.]+)' % step, text)
    if not m or abs(float(m.group(1)) - h['sum_ns'] / 1e9) > 1e-9:
        bad.append('%s: no _sum or wrong' % step)
for x in bad:
    print('FAIL: ' + x)
sys.exit(1 if bad else 0)
EOF
pass "(d) --prometheus: one histogram per step, cumulative, +Inf = count"

qtctl 1 stats >"$TMP/t1" || fail "(e) stats n1"
python3 - "$TMP" $N <<'EOF' || fail "(e) loop_busy above"
import json, re, sys
tmp, n = sys.argv[1], int(sys.argv[2])
bad = []
# The steps that run inside one callback: steering, freeze and replay on
# the front (one read callback), the rebuild on the back.
for node, js, prom, inner in ((1, 's1b.json', 'p1', ('steer', 'freeze', 'replay')),
                              (2, 's2.json', 'p2', ('rebuild',))):
    d = json.load(open('%s/%s' % (tmp, js)))
    h, t = d.get('loop_busy'), d['timings']
    if not h:
        bad.append('n%d: no loop_busy' % node); continue
    if h['count'] < n:
        bad.append('n%d: %d batches for %d hand-offs' % (node, h['count'], n))
    q = [h['p50_ns'], h['p90_ns'], h['p99_ns'], h['max_ns']]
    if not (0 < q[0] <= q[1] <= q[2] <= q[3]):
        bad.append('n%d: quantiles %s not ordered or zero' % (node, q))
    for st in inner:
        if t[st]['max_ns'] > h['max_ns']:
            bad.append('n%d: %s took %d ns, above the longest batch %d' % (node, st, t[st]['max_ns'], h['max_ns']))
    if sum(t[st]['sum_ns'] for st in inner) > h['sum_ns']:
        bad.append('n%d: the steps %s took more than all batches, %d ns' % (node, inner, h['sum_ns']))
    text = open('%s/%s' % (tmp, prom)).read()
    b = re.findall(r'^quicktwitch_loop_busy_seconds_bucket\{le="([^"]+)"\} (\d+)$', text, re.M)
    counts = [int(c) for _, c in b]
    if len(b) != len(h['le_ns']) + 1 or b[-1][0] != '+Inf' or counts != sorted(counts):
        bad.append('n%d: Prometheus buckets %s' % (node, b))
    elif counts[-1] < h['count']:
        bad.append('n%d: Prometheus +Inf %d below the earlier count %d' % (node, counts[-1], h['count']))
    if not re.search(r'^quicktwitch_loop_busy_seconds_count \d+$', text, re.M) or \
       not re.search(r'^quicktwitch_loop_busy_seconds_sum [0-9.]+$', text, re.M):
        bad.append('n%d: no Prometheus _count or _sum' % node)
    # The steps' series are unchanged by it.
    if not re.search(r'^quicktwitch_handoff_step_seconds_count\{step="rebuild"\} \d+$', text, re.M):
        bad.append("n%d: the steps' series changed" % node)
if not re.search(r'^loop_busy count=\d+ p50=[0-9.]+ p90=[0-9.]+ p99=[0-9.]+ max=[0-9.]+ us$',
                 open(tmp + '/t1').read(), re.M):
    bad.append('no loop_busy line in qtctl stats')
print('# loop_busy n1: p50 %.1f p99 %.1f max %.1f us' % tuple(
    json.load(open(tmp + '/s1b.json'))['loop_busy'][k] / 1e3 for k in ('p50_ns', 'p99_ns', 'max_ns')))
for x in bad:
    print('FAIL: ' + x)
sys.exit(1 if bad else 0)
EOF
pass "(e) loop_busy: a batch per event at least, no shorter than the steps inside one; text and Prometheus"
