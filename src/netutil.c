/* Small helpers about this host's interfaces and clocks. */
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>

#include "qt.h"

int
iface_of_addr(uint32_t addr, char *name, size_t len)
{
	struct ifaddrs *ifa, *i;
	int rc = -1;

	if (getifaddrs(&ifa) == -1)
		return -1;
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		if (((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr !=
		    addr)
			continue;
		if (strlen(i->ifa_name) >= len)
			break;
		strcpy(name, i->ifa_name);
		rc = 0;
		break;
	}
	freeifaddrs(ifa);
	if (rc == -1)
		errno = EADDRNOTAVAIL;
	return rc;
}

uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
