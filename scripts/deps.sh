#!/bin/sh
# Installs what building, the demo and the tests need on Debian 12.
set -e
export DEBIAN_FRONTEND=noninteractive
pkgs="build-essential cmake pkg-config libev-dev libpcap-dev libnet1-dev
 libip4tc-dev libipset-dev libnetfilter-conntrack-dev libmnl-dev
 libsodium-dev libsystemd-dev libcmocka-dev iptables ipset conntrack
 iproute2 curl tcpdump ethtool procps python3 coreutils kmod nginx"
# The unit, journal and package tests: journald, systemd-analyze,
# systemd-sysctl, dpkg-shlibdeps, man, strace, setpriv, capsh.
pkgs="$pkgs systemd dpkg-dev man-db groff-base strace libcap2-bin util-linux"
# bench/compare.sh: the proxies it compares with, its load generator, its plot.
pkgs="$pkgs haproxy wrk gnuplot-nox"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $missing
fi
