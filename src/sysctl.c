/*
 * The kernel settings a node relies on.  Checked at start; changed only
 * when the config allows it, because they are the host's, not ours.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "qt.h"

static int
sysctl_read(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	if (!fgets(buf, (int)len, f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int
sysctl_write(const char *path, const char *val)
{
	FILE *f = fopen(path, "w");
	int rc;

	if (!f)
		return -1;
	rc = fputs(val, f) < 0 ? -1 : 0;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

/* iface, if given, replaces the "IF" component: names may hold dots. */
static int
sysctl_one(const char *name, const char *iface, const char *want, int fix)
{
	char path[256], cur[64], shown[128];
	size_t i;

	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	for (i = strlen("/proc/sys/"); path[i]; i++)
		if (path[i] == '.')
			path[i] = '/';
	if (iface) {
		char *p = strstr(path, "/IF/");

		if (p) {
			char tail[128];

			snprintf(tail, sizeof(tail), "%s", p + 3);
			snprintf(p, sizeof(path) - (size_t)(p - path),
			    "/%s%s", iface, tail);
		}
		snprintf(shown, sizeof(shown), "%s", name);
		p = strstr(shown, ".IF.");
		if (p) {
			char tail[128];

			snprintf(tail, sizeof(tail), "%s", p + 3);
			snprintf(p, sizeof(shown) - (size_t)(p - shown),
			    ".%s%s", iface, tail);
		}
		name = shown;
	}
	if (sysctl_read(path, cur, sizeof(cur)) == -1) {
		log_err("kernel setting %s cannot be read: %m "
		    "(is nf_conntrack available?)", name);
		return 1;
	}
	if (strcmp(cur, want) == 0)
		return 0;
	if (fix) {
		if (sysctl_write(path, want) == 0) {
			log_notice("set %s=%s (was %s)", name, want, cur);
			return 0;
		}
		log_err("cannot set %s=%s: %m", name, want);
		return 1;
	}
	log_err("kernel setting %s is %s, must be %s: run "
	    "'sysctl -w %s=%s' or set 'set-sysctls yes' in the config",
	    name, cur, want, name, want);
	return 1;
}

int
sysctl_check(const char *iface, int fix)
{
	int bad = 0;

	bad += sysctl_one("net.ipv4.ip_forward", NULL, "1", fix);
	bad += sysctl_one("net.ipv4.conf.all.send_redirects", NULL, "0", fix);
	bad += sysctl_one("net.ipv4.conf.IF.send_redirects", iface, "0", fix);
	bad += sysctl_one("net.netfilter.nf_conntrack_tcp_loose", NULL, "1",
	    fix);
	return bad;
}
