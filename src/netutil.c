/* Small helpers about this host's interfaces and clocks. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/un.h>
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
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Parses "A.B.C.D:PORT" or "unix:/path". */
int
sock_addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_un *sun = (struct sockaddr_un *)ss;
	char host[64];
	const char *colon;
	char *end;
	long port;

	memset(ss, 0, sizeof(*ss));
	if (!strncmp(s, "unix:", 5)) {
		if (s[5] != '/' || strlen(s + 5) >= sizeof(sun->sun_path))
			return -1;
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, s + 5);
		*len = sizeof(*sun);
		return 0;
	}
	if (!(colon = strrchr(s, ':')) || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 1 || port > 65535 ||
	    inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return -1;
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	*len = sizeof(*sin);
	return 0;
}
