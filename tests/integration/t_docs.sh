#!/bin/bash
# The documentation against the code, so the two cannot drift apart:
#   - every key of cf_options[] (src/config.c) has its paragraph in
#     qt.conf(5) with the table's default, and appears in conf/qt.conf;
#     every statement (node, service, group, route) in both; nothing in
#     qt.conf(5) that the parser does not know;
#   - every option in quicktwitchd's usage is in quicktwitchd(8);
#   - every command and option in qtctl's usage is in qtctl(8);
#   - the man pages the unit names exist, and all render without a
#     warning.
# Needs no root and no namespace.
set -u
QT_BUILD=${QT_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}
QT_SRC=${QT_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
fail() { printf 'FAIL: %s\n' "$*"; exit 1; }
pass() { printf 'ok: %s\n' "$*"; }
for t in man groff; do
	command -v $t >/dev/null || { echo "SKIP: $t missing (man-db, groff-base)"; exit 4; }
done
[ -x "$QT_BUILD/quicktwitchd" ] && [ -x "$QT_BUILD/qtctl" ] ||
	fail "programs not built in $QT_BUILD"

python3 - "$QT_SRC" <<'EOF' || fail "qt.conf(5) and conf/qt.conf against src/config.c (above)"
import re, sys
src = sys.argv[1]
code = open(src + '/src/config.c').read()
table = re.search(r'cf_options\[\] = \{(.*?)\n\};', code, re.S).group(1)
opts = {}
for m in re.finditer(r'\{\s*"([^"]+)"([^{}]*)\}', table):
    strs = re.findall(r'"([^"]*)"', m.group(2))
    opts[m.group(1)] = strs[-1] if strs else None
stmts = re.findall(r'strcmp\(av\[0\], "([a-z-]+)"\)', code)
if len(opts) < 10 or not stmts:
    sys.exit('# cannot read the option table or the statements')

man = open(src + '/man/qt.conf.5').read()
def plain(s):
    s = re.sub(r'\\f[BIRP]', '', s)
    s = re.sub(r'^\.(BI|BR|IR|B|I)\s+', '', s)
    return s.replace('"', '').replace('\\-', '-').strip()
paras = {}
lines = man.split('\n')
for i, l in enumerate(lines):
    if l == '.TP' and i + 1 < len(lines):
        head = plain(lines[i + 1])
        body = []
        for b in lines[i + 2:]:
            if b.startswith(('.TP', '.SH', '.SS')):
                break
            body.append(b)
        key = head.split()[0] if head.split() else ''
        paras.setdefault(key, '\n'.join(body))
bad = []
for k, d in opts.items():
    if k not in paras:
        bad.append('qt.conf(5): no paragraph for "%s"' % k)
        continue
    want = 'Default: none' if d == '' else 'Default: \\fB%s\\fR.' % d
    if want not in paras[k]:
        bad.append('qt.conf(5): "%s": no "%s" (the table says "%s")'
                   % (k, want, d))
for s in stmts:
    if s not in paras:
        bad.append('qt.conf(5): no paragraph for statement "%s"' % s)
sections = re.findall(r'^\.SH (.*)$', man, re.M)
start = man.index('.SH THE CLUSTER')
end = man.index('.SH RELOADING')
for k in re.findall(r'^\.TP\n(.*)$', man[start:end], re.M):
    w = plain(k).split()[0]
    if w not in opts and w not in stmts and not re.match(r'^(group|node|local|reject)$', w):
        bad.append('qt.conf(5): documents "%s", which the parser does not know' % w)

example = open(src + '/conf/qt.conf').read()
for k in list(opts) + stmts:
    if not re.search(r'^#?\s*%s\s' % re.escape(k), example, re.M):
        bad.append('conf/qt.conf: "%s" neither set nor shown commented out' % k)
for b in bad:
    print('#', b)
sys.exit(1 if bad else 0)
EOF
pass "every config key in qt.conf(5) with its default, and in conf/qt.conf"

# quicktwitchd: the options its usage lists, each an entry of OPTIONS.
"$QT_BUILD/quicktwitchd" -h 2>&1 | python3 -c '
import re, sys
man = open(sys.argv[1]).read()
opts = man[man.index(".SH OPTIONS"):man.index(".SH SIGNALS")]
heads = [h.replace("\\-", "-") for h in re.findall(r"^\.TP\n(.*)$", opts, re.M)]
n, bad = 0, []
for line in sys.stdin:
    m = re.match(r"^  (-[-a-z]+)", line)
    if not m:
        continue
    n += 1
    if not any(re.search(r"(^|[ ,])%s( |$|,)" % re.escape(m.group(1)), h)
               for h in heads):
        bad.append("quicktwitchd(8) lacks option %s" % m.group(1))
for b in bad:
    print("#", b)
print("# %d options" % n)
sys.exit(1 if bad or n < 4 else 0)
' "$QT_SRC/man/quicktwitchd.8" || fail "quicktwitchd(8) against its usage (above)"
pass "quicktwitchd(8): every option of the usage"

# qtctl: each usage line's command words and options.
TMP_USAGE=$(mktemp)
trap 'rm -f "$TMP_USAGE"' EXIT
"$QT_BUILD/qtctl" help > "$TMP_USAGE" || fail "qtctl help failed"
sed -n '/^commands:/,$p' "$TMP_USAGE" | tail -n +2 > "$TMP_USAGE.c"
[ -s "$TMP_USAGE.c" ] || fail "qtctl help lists no command"
python3 - "$QT_SRC/man/qtctl.8" "$TMP_USAGE.c" <<'EOF' || fail "qtctl(8) against qtctl's usage (above)"
import re, sys
man = open(sys.argv[1]).read()
cmds = man[man.index('.SH COMMANDS'):man.index('.SH EXIT STATUS')]
heads = [re.sub(r'\\f[BIRP]|^\.(BI|B)\s+|"', '', h).replace('\\-', '-')
         for h in re.findall(r'^\.TP\n(.*)$', cmds, re.M)]
bad = []
n = 0
for line in open(sys.argv[2]):
    words = line.split()
    if not words:
        continue
    n += 1
    lead = []
    for w in words:
        if not re.match(r'^[a-z][a-z-]*$', w):
            break
        lead.append(w)
    cmd = ' '.join(lead)
    opts = re.findall(r'--[a-z-]+', line)
    hit = [h for h in heads if h == cmd or h.startswith(cmd + ' ')]
    if not hit:
        bad.append('qtctl(8): no entry for "%s"' % line.strip())
        continue
    for o in opts:
        if o not in hit[0]:
            bad.append('qtctl(8): "%s" lacks %s' % (words[0], o))
for b in bad:
    print('#', b)
print('# %d commands' % n)
sys.exit(1 if bad or n < 5 else 0)
EOF
rm -f "$TMP_USAGE.c"
pass "qtctl(8): every command and option of the usage"

for p in $(sed -n 's/^Documentation=//p' "$QT_SRC/quicktwitchd.service"); do
	case $p in
	man:*)
		page=${p#man:}
		f="$QT_SRC/man/${page%(*}.$(echo "$page" | sed 's/.*(\(.*\))/\1/')"
		[ -f "$f" ] || fail "the unit names $p: no $f"
		;;
	esac
done
pass "the man pages the unit names exist"

for f in "$QT_SRC"/man/*.[1-8]; do
	out=$(MANWIDTH=80 man --warnings -l "$f" 2>&1 >/dev/null)
	[ -z "$out" ] || fail "$(basename "$f"): $out"
	out=$(groff -man -ww -z "$f" 2>&1)
	[ -z "$out" ] || fail "$(basename "$f"): $out"
	lines=$(MANWIDTH=80 man -l "$f" 2>/dev/null | wc -l)
	[ "$lines" -gt 40 ] || fail "$(basename "$f") renders to $lines lines"
done
pass "the man pages render without warnings"
