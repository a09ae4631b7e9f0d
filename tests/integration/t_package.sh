#!/bin/bash
# Packaging, entirely under the test's temporary directory (nothing is
# installed on this system; its dpkg state is compared before and after):
#   - "cmake --install --prefix DIR" puts exactly the expected files in
#     place, the unit naming DIR's quicktwitchd; with DESTDIR and prefix
#     /usr, the unit names /usr/sbin/quicktwitchd;
#   - cpack builds a .deb with exactly those files under /usr, sane modes
#     and maintainer scripts, and whose Depends name the package of every
#     library the programs load, plus iptables and ipset, each satisfied
#     by what this system has installed;
#   - dpkg installs it into a scratch root (its own database), the
#     installed daemon checks the example config as good once it names a
#     key file, the man pages render, and dpkg removes it all again.
source "$(dirname "$0")/lib.sh"
require_root
for t in cpack dpkg-deb dpkg-shlibdeps objdump man; do
	command -v $t >/dev/null || {
		echo "SKIP: $t missing (scripts/deps.sh installs cmake, dpkg-dev, man-db)"
		exit $ksft_skip
	}
done
[ -x "$QT_BUILD/qtctl" ] || fail "qtctl not built"

host_state() {
	dpkg-query -W -f '${Status} ${Version}\n' quicktwitch 2>&1
	ls -l --time-style=+%s /usr/sbin/quicktwitchd /usr/bin/qtctl \
	    /usr/lib/systemd/system/quicktwitchd.service 2>&1
}
host_before=$(host_state)

# The files, relative to the prefix.
want_files="bin/qtctl
lib/sysctl.d/50-quicktwitch.conf
lib/systemd/system/quicktwitchd.service
sbin/quicktwitchd
share/doc/quicktwitch/examples/qt.conf
share/man/man5/qt.conf.5.gz
share/man/man8/qtctl.8.gz
share/man/man8/quicktwitchd.8.gz"

# files_under DIR: every non-directory below DIR, relative, sorted.
files_under() { (cd "$1" && find . ! -type d | sed 's|^\./||' | LC_ALL=C sort); }

cmake --install "$QT_BUILD" --prefix "$TMP/x" > "$TMP/install.log" 2>&1 ||
	fail "cmake --install: $(tail -5 "$TMP/install.log")"
got=$(files_under "$TMP/x")
[ "$got" = "$want_files" ] || fail "cmake --install --prefix put:
$got
expected:
$want_files"
grep -qx "ExecStart=$TMP/x/sbin/quicktwitchd -c /etc/qt.conf" \
    "$TMP/x/lib/systemd/system/quicktwitchd.service" ||
	fail "the unit under prefix $TMP/x does not start $TMP/x/sbin/quicktwitchd"
[ "$(grep -c "/usr/sbin/" "$TMP/x/lib/systemd/system/quicktwitchd.service")" = 0 ] ||
	fail "the unit under prefix $TMP/x still names /usr/sbin"
pass "cmake --install --prefix: the expected files, the unit naming the prefix"

DESTDIR="$TMP/d" cmake --install "$QT_BUILD" --prefix /usr > "$TMP/install.log" 2>&1 ||
	fail "cmake --install with DESTDIR: $(tail -5 "$TMP/install.log")"
got=$(files_under "$TMP/d/usr")
[ "$got" = "$want_files" ] || fail "DESTDIR install put: $got"
grep -qx 'ExecStart=/usr/sbin/quicktwitchd -c /etc/qt.conf' \
    "$TMP/d/usr/lib/systemd/system/quicktwitchd.service" ||
	fail "the unit under prefix /usr does not start /usr/sbin/quicktwitchd"
pass "DESTDIR install with prefix /usr: the same files, the unit naming /usr/sbin"

mkdir -p "$TMP/pkg"
(cd "$TMP/pkg" && cpack --config "$QT_BUILD/CPackConfig.cmake" -G DEB \
    -B "$TMP/pkg") > "$TMP/cpack.log" 2>&1 ||
	fail "cpack: $(tail -20 "$TMP/cpack.log")"
debs=("$TMP"/pkg/*.deb)
[ "${#debs[@]}" = 1 ] && [ -f "${debs[0]}" ] || fail "cpack made ${#debs[@]} packages"
deb=${debs[0]}
pass "cpack built $(basename "$deb")"

[ "$(dpkg-deb -f "$deb" Package)" = quicktwitch ] || fail "Package is not quicktwitch"
[ "$(dpkg-deb -f "$deb" Architecture)" = "$(dpkg --print-architecture)" ] ||
	fail "Architecture $(dpkg-deb -f "$deb" Architecture)"
got=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./usr/||' | LC_ALL=C sort)
[ "$got" = "$want_files" ] || fail "the .deb holds:
$got"
bad=$(dpkg-deb -c "$deb" | awk '
    $2 != "root/root" { print; next }
    $1 ~ /^d/ { if ($1 != "drwxr-xr-x") print; next }
    $6 ~ /bin\// { if ($1 != "-rwxr-xr-x") print; next }
    $1 != "-rw-r--r--" { print }')
[ -z "$bad" ] || fail "owner or mode wrong: $bad"
dpkg-deb -e "$deb" "$TMP/ctl"
for s in postinst prerm postrm; do
	[ -x "$TMP/ctl/$s" ] || fail "no executable $s"
	sh -n "$TMP/ctl/$s" || fail "$s: syntax"
	grep -q 'DPKG_ROOT' "$TMP/ctl/$s" || fail "$s ignores DPKG_ROOT"
done
pass "the .deb: the expected files under /usr, root-owned, modes 0755/0644, maintainer scripts"

# Depends: the package of every library the programs link is named, and
# every dependency is satisfied here.
depends=$(dpkg-deb -f "$deb" Depends)
log "Depends: $depends"
for bin in "$QT_BUILD/quicktwitchd" "$QT_BUILD/qtctl"; do
	# Only what the program itself needs (NEEDED), not what libraries
	# need: their packages depend on that.
	for so in $(objdump -p "$bin" | awk '$1 == "NEEDED" {print $2}'); do
		lib=$(ldd "$bin" | awk -v so="$so" '$1 == so {print $3}')
		[ -n "$lib" ] || fail "$(basename "$bin"): $so not found"
		real=$(readlink -f "$lib")
		pkg=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$real" 2>/dev/null ||
		    dpkg -S "${lib#/usr}" 2>/dev/null || dpkg -S "/usr$lib" 2>/dev/null)
		pkg=$(echo "$pkg" | head -n 1 | cut -d: -f1)
		[ -n "$pkg" ] || fail "$lib ($(basename "$bin")) belongs to no package"
		echo ", $depends," | grep -q ", $pkg[ ,]" ||
			fail "$(basename "$bin") loads $lib of $pkg, which Depends lacks"
	done
done
for p in iptables ipset; do
	echo ", $depends," | grep -q ", $p," || fail "Depends lacks $p"
done
echo "$depends" | tr ',' '\n' | while read -r name op ver; do
	[ -n "$name" ] || continue
	have=$(dpkg-query -W -f '${Version}' "$name" 2>/dev/null) ||
		fail "dependency $name is not installed here"
	if [ -n "$op" ]; then
		op=${op#(}
		ver=${ver%)}
		dpkg --compare-versions "$have" "$op" "$ver" ||
			fail "dependency $name ($op $ver): installed $have"
	fi
done || exit 1
pass "Depends: every loaded library's package, iptables, ipset, all satisfied here"

# Into a scratch root with a database of its own.  Maintainer scripts run
# outside it (there is no shell inside) with DPKG_ROOT set, which makes
# them leave the running system alone.
R=$TMP/root
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/log"
: > "$R/var/lib/dpkg/status"
dpkg --root="$R" --log="$TMP/dpkg.log" --force-script-chrootless \
    --force-depends -i "$deb" > "$TMP/dpkg.out" 2>&1 ||
	fail "dpkg -i into $R: $(tail -5 "$TMP/dpkg.out")"
dpkg --root="$R" -s quicktwitch | grep -qx 'Status: install ok installed' ||
	fail "not installed in the scratch root"
got=$(files_under "$R/usr")
[ "$got" = "$want_files" ] || fail "in the scratch root: $got"
got=$(dpkg --root="$R" -L quicktwitch | while read -r f; do
	[ -d "$R$f" ] || echo "${f#/usr/}"; done | LC_ALL=C sort)
[ "$got" = "$want_files" ] || fail "dpkg -L lists: $got"
pass "dpkg installed it into a scratch root, dpkg -L lists just those files"

sed "s|^key-file.*|key-file $TMP/key|" "$R/usr/share/doc/quicktwitch/examples/qt.conf" > "$TMP/qt.conf"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$TMP/key"
out=$("$R/usr/sbin/quicktwitchd" -n -c "$TMP/qt.conf" 2>&1) ||
	fail "the installed daemon rejects the example config: $out"
[ "$out" = "configuration OK" ] || fail "quicktwitchd -n said: $out"
"$R/usr/bin/qtctl" help | grep -q '^commands:' || fail "the installed qtctl does not run"
for m in man5/qt.conf.5.gz man8/quicktwitchd.8.gz man8/qtctl.8.gz; do
	err=$(MANWIDTH=80 man --warnings -l "$R/usr/share/man/$m" 2>&1 >/dev/null)
	[ -z "$err" ] || fail "$m: $err"
	[ "$(MANWIDTH=80 man -l "$R/usr/share/man/$m" 2>/dev/null | wc -l)" -gt 40 ] ||
		fail "$m renders to nothing"
done
pass "the installed programs run, the example config checks OK, the man pages render"

dpkg --root="$R" --log="$TMP/dpkg.log" --force-script-chrootless \
    --force-depends -P quicktwitch > "$TMP/dpkg.out" 2>&1 ||
	fail "dpkg -P: $(tail -5 "$TMP/dpkg.out")"
left=$(find "$R/usr" ! -type d 2>/dev/null)
[ -z "$left" ] || fail "left after purge: $left"
pass "dpkg purged it from the scratch root, nothing left"

[ "$(host_state)" = "$host_before" ] || fail "this system's state changed:
$host_before
->
$(host_state)"
pass "nothing installed on this system"
