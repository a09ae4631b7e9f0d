/*
 * One small logging API.  Lines go to stderr with a level prefix that
 * journald understands (<N>), so a daemon under systemd gets priorities
 * without a library call; errno is preserved across a call.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <unistd.h>

#include "qt.h"

static int	log_level = LOG_L_INFO;
static const char *log_ident = "quicktwitchd";
static int	log_journal;	/* stderr is the journal: no timestamps */
static int	log_plain;	/* bare messages, for -n */

static const struct {
	const char	*name;
	int		 level;
	int		 syslog;
} log_levels[] = {
	{ "error",	LOG_L_ERR,	3 },
	{ "warning",	LOG_L_WARN,	4 },
	{ "notice",	LOG_L_NOTICE,	5 },
	{ "info",	LOG_L_INFO,	6 },
	{ "debug",	LOG_L_DEBUG,	7 },
};

void
log_init(const char *ident, int level)
{
	log_ident = ident;
	log_level = level;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void
log_set_plain(int on)
{
	log_plain = on;
}

void
log_set_level(int level)
{
	log_level = level;
}

int
log_level_parse(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
		if (strcasecmp(s, log_levels[i].name) == 0)
			return log_levels[i].level;
	return -1;
}

void
log_msg(int level, const char *fmt, ...)
{
	int saved = errno;
	char line[1024];
	va_list ap;

	if (level > log_level) {
		errno = saved;
		return;
	}
	va_start(ap, fmt);
	errno = saved;	/* so %m works */
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (log_plain)
		fprintf(stderr, "%s\n", line);
	else if (log_journal)
		fprintf(stderr, "<%d>%s\n", log_levels[level].syslog, line);
	else
		fprintf(stderr, "%s[%d]: %s: %s\n", log_ident, (int)getpid(),
		    log_levels[level].name, line);
	errno = saved;
}

const char *
addr_str(uint32_t addr)
{
	static char buf[8][INET_ADDRSTRLEN];
	static unsigned n;
	char *s = buf[n++ % 8];

	inet_ntop(AF_INET, &addr, s, INET_ADDRSTRLEN);
	return s;
}
