/*
 * After start-up the daemon keeps only the capabilities it uses: it runs
 * as root on the edge of the network and injects packets as other hosts,
 * so anything it does not need is one less thing a bug could be made to
 * do.  Kept: CAP_NET_ADMIN (netfilter, ipsets, conntrack, TCP_REPAIR),
 * CAP_NET_RAW (replays, captures), CAP_NET_BIND_SERVICE (listeners a
 * reload adds).  Gone, among others: CAP_DAC_OVERRIDE (files not readable
 * by their owner root stay closed), CAP_SYS_ADMIN, CAP_SYS_MODULE,
 * CAP_SYS_PTRACE, CAP_SETUID; and the bounding set is cut to match, so
 * nothing this process executes can regain them.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "qt.h"

static const int	privs_keep[] = {
	CAP_NET_ADMIN, CAP_NET_RAW, CAP_NET_BIND_SERVICE,
};

static int
privs_kept(int cap)
{
	size_t i;

	for (i = 0; i < sizeof(privs_keep) / sizeof(privs_keep[0]); i++)
		if (privs_keep[i] == cap)
			return 1;
	return 0;
}

int
privs_drop(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2];
	int cap;
	size_t i;

	/* The bounding set first: dropping from it needs CAP_SETPCAP,
	 * which goes with the capset below. */
	for (cap = 0; cap <= 63; cap++) {
		if (privs_kept(cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1 &&
		    errno != EINVAL)	/* EINVAL: not a capability here */
			return -1;
	}
	memset(data, 0, sizeof(data));
	for (i = 0; i < sizeof(privs_keep) / sizeof(privs_keep[0]); i++) {
		cap = privs_keep[i];
		data[cap / 32].effective |= 1u << (cap % 32);
		data[cap / 32].permitted |= 1u << (cap % 32);
	}
	if (syscall(SYS_capset, &hdr, data) == -1)
		return -1;
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}
