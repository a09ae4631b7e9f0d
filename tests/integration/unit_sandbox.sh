#!/bin/sh
# unit_sandbox.sh UNIT CMD...: run CMD in the file system a systemd unit
# would give it, as far as a mount namespace can show it, for tests on
# machines whose PID 1 is not systemd.  Run it in a mount namespace of its
# own (unshare -m --propagation private): it changes every mount.
#
#   /run            a fresh tmpfs (the machine's is never touched), with
#                   RuntimeDirectory= made in it and the unit's
#                   ExecStartPre=+ commands run (outside the sandbox, as
#                   systemd runs them)
#   ProtectSystem=strict   every mount read-only, but ReadWritePaths= and
#                   the RuntimeDirectory=
#   ProtectKernelTunables=yes   /proc/sys read-only
#   ProtectHome=yes /home and /root empty and read-only
#
# Not shown: PrivateTmp= (the tests keep their files in /tmp),
# PrivateDevices=, the seccomp and namespace restrictions.
set -eu
unit=$1
shift
value() { sed -n "s/^$1=//p" "$unit" | tail -n 1; }

mount -t tmpfs -o mode=0755 qt-sandbox-run /run
rt=$(value RuntimeDirectory)
mode=$(value RuntimeDirectoryMode)
[ -z "$rt" ] || mkdir -m "${mode:-0755}" "/run/$rt"
sed -n 's/^ExecStartPre=+//p' "$unit" | while read -r cmd; do
	sh -c "$cmd"
done

# The writable paths: bound onto themselves before everything else goes
# read-only, and left out of that.
rw=""
[ -z "$rt" ] || rw="/run/$rt"
for p in $(value ReadWritePaths); do
	p=${p#-}
	[ -e "$p" ] && rw="$rw $p"
done
for p in $rw; do
	mount --bind "$p" "$p"
done
if [ "$(value ProtectKernelTunables)" = yes ]; then
	mount --bind /proc/sys /proc/sys
	mount -o remount,bind,ro /proc/sys
fi
if [ "$(value ProtectHome)" = yes ]; then
	for h in /home /root; do
		[ -d "$h" ] && mount -t tmpfs -o ro,mode=0755 qt-sandbox-home "$h"
	done
fi
if [ "$(value ProtectSystem)" = strict ]; then
	awk '{print $2}' /proc/self/mounts | sort -u | while read -r m; do
		case $m in
		/proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;;
		esac
		# Mounts the new /run hides are gone from view.
		[ -e "$m" ] || continue
		skip=0
		for p in $rw; do
			[ "$m" = "$p" ] && skip=1
		done
		[ $skip = 1 ] || mount -o remount,bind,ro "$m"
	done
fi
exec "$@"
