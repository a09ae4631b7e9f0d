/*
 * One small logging API, and the only user of sd-journal.
 *
 * Under journald (JOURNAL_STREAM names the very stream our stderr is, as
 * systemd sets it for a service) every message is sent natively: its
 * priority, identifier and source location, and for flow events the
 * QT_FLOW, QT_CLIENT, QT_NODE, QT_EVENT and QT_REASON fields, so that
 * "journalctl -u quicktwitchd QT_NODE=qt2" works.  Anywhere else a plain
 * line goes to stderr.  errno is preserved across every call.
 *
 * Identical errors and warnings are rate-limited: at most LOG_RL_BURST of
 * them per LOG_RL_WINDOW, then one summary line with the count of those
 * left out.  A failing peer or a flood of forged packets must not bury
 * everything else in the log.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION	/* we pass our callers' own */
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include "qt.h"

#define LOG_LINE	1024
#define LOG_RL_SLOTS	32
#define LOG_RL_BURST	10
#define LOG_RL_WINDOW	10000	/* ms */

static int	log_level = LOG_L_INFO;
static const char *log_ident = "quicktwitchd";
static int log_pid;		/* the daemon never forks: read once */
static int	log_journal;	/* stderr is the journal: send natively */
static int	log_plain;	/* bare messages, for -n */
static int	log_atexit;

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

/* What a flow event adds to a message; NULL members are left out. */
struct log_fields {
	uint64_t	 lf_flow;
	const char	*lf_client;
	const char	*lf_node;
	const char	*lf_event;
	const char	*lf_reason;
};

struct log_where {
	const char	*lw_file;
	int		 lw_line;
	const char	*lw_func;
};

/* One message being rate-limited: its text, kept for the summary. */
struct log_rl {
	uint64_t		 rl_hash;	/* 0: slot free */
	uint64_t		 rl_start;	/* ms, monotonic */
	unsigned		 rl_count;	/* seen in this window */
	unsigned		 rl_dropped;	/* of those, left out */
	int			 rl_level;
	struct log_where	 rl_where;
	char			 rl_msg[LOG_LINE];
};

static struct log_rl	log_rl[LOG_RL_SLOTS];

static void	log_flush_at(uint64_t now, int all);

/*
 * systemd sets JOURNAL_STREAM to "device:inode" of the stream it connects
 * a service's stdout and stderr to.  A child that inherited the variable
 * but not the stream (a shell, a redirect) must not take it as its own.
 */
static int
log_stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char extra;

	if (!e || sscanf(e, "%llu:%llu%c", &dev, &ino, &extra) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

static void
log_exit(void)
{
	log_flush_repeats();
}

void
log_init(const char *ident, int level)
{
	log_ident = ident;
	log_pid = (int)getpid();
	log_level = level;
	log_journal = log_stderr_is_journal();
	/* Summaries of what was left out are not lost at exit. */
	if (!log_atexit && atexit(log_exit) == 0)
		log_atexit = 1;
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

static uint64_t
log_now(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* FNV-1a over the level and the text. */
static uint64_t
log_hash(int level, const char *msg)
{
	uint64_t h = 14695981039346656037ull ^ (uint64_t)level;

	for (; *msg; msg++) {
		h ^= (unsigned char)*msg;
		h *= 1099511628211ull;
	}
	return h ? h : 1;
}

/* CODE_FILE without the build machine's directories. */
static const char *
log_basename(const char *file)
{
	const char *s = strrchr(file, '/');

	return s ? s + 1 : file;
}

/* Appends "NAME=value" to iov from buf; the caller sized both. */
static void
log_field(struct iovec *iov, int *n, char *buf, size_t len,
    const char *name, const char *value)
{
	int k = snprintf(buf, len, "%s=%s", name, value);

	if (k < 0)
		return;
	if ((size_t)k >= len)
		k = (int)len - 1;
	iov[*n].iov_base = buf;
	iov[*n].iov_len = (size_t)k;
	(*n)++;
}

static int
log_send_journal(int level, const struct log_where *w, const char *msg,
    const struct log_fields *lf, unsigned repeated)
{
	char prio[16], ident[64], code_file[128], code_line[32];
	char code_func[96], flow[48], client[64], node[64], event[64];
	char reason[256], rep[32], text[LOG_LINE + 64], num[24];
	struct iovec iov[14];
	int n = 0;

	snprintf(num, sizeof(num), "%d", log_levels[level].syslog);
	log_field(iov, &n, prio, sizeof(prio), "PRIORITY", num);
	log_field(iov, &n, ident, sizeof(ident), "SYSLOG_IDENTIFIER",
	    log_ident);
	log_field(iov, &n, text, sizeof(text), "MESSAGE", msg);
	log_field(iov, &n, code_file, sizeof(code_file), "CODE_FILE",
	    log_basename(w->lw_file));
	snprintf(num, sizeof(num), "%d", w->lw_line);
	log_field(iov, &n, code_line, sizeof(code_line), "CODE_LINE", num);
	log_field(iov, &n, code_func, sizeof(code_func), "CODE_FUNC",
	    w->lw_func);
	if (lf) {
		snprintf(num, sizeof(num), "%llu",
		    (unsigned long long)lf->lf_flow);
		log_field(iov, &n, flow, sizeof(flow), "QT_FLOW", num);
		if (lf->lf_client)
			log_field(iov, &n, client, sizeof(client), "QT_CLIENT",
			    lf->lf_client);
		if (lf->lf_node)
			log_field(iov, &n, node, sizeof(node), "QT_NODE",
			    lf->lf_node);
		if (lf->lf_event)
			log_field(iov, &n, event, sizeof(event), "QT_EVENT",
			    lf->lf_event);
		if (lf->lf_reason)
			log_field(iov, &n, reason, sizeof(reason), "QT_REASON",
			    lf->lf_reason);
	}
	if (repeated) {
		snprintf(num, sizeof(num), "%u", repeated);
		log_field(iov, &n, rep, sizeof(rep), "QT_REPEATED", num);
	}
	return sd_journal_sendv(iov, n);
}

/* Out it goes, past the level and rate checks. */
static void
log_write(int level, const struct log_where *w, const char *msg,
    const struct log_fields *lf, unsigned repeated)
{
	if (log_journal) {
		if (log_send_journal(level, w, msg, lf, repeated) >= 0)
			return;
		/* journald went away: the stream may still take it. */
		fprintf(stderr, "<%d>%s\n", log_levels[level].syslog, msg);
	} else if (log_plain)
		fprintf(stderr, "%s\n", msg);
	else
		fprintf(stderr, "%s[%d]: %s: %s\n", log_ident, log_pid ? log_pid :
		    (int)getpid(),
		    log_levels[level].name, msg);
}

static void
log_summary(struct log_rl *rl)
{
	char line[LOG_LINE + 64];

	snprintf(line, sizeof(line), "%s (repeated %u times)", rl->rl_msg,
	    rl->rl_dropped);
	log_write(rl->rl_level, &rl->rl_where, line, NULL, rl->rl_dropped);
}

/* Ends the windows that are over (all of them with all): summaries for
 * those that left messages out, free slots for the rest. */
static void
log_flush_at(uint64_t now, int all)
{
	size_t i;

	for (i = 0; i < LOG_RL_SLOTS; i++) {
		struct log_rl *rl = &log_rl[i];

		if (!rl->rl_hash || (!all && now - rl->rl_start < LOG_RL_WINDOW))
			continue;
		if (rl->rl_dropped)
			log_summary(rl);
		rl->rl_hash = 0;
	}
}

void
log_flush_repeats(void)
{
	int saved = errno;

	log_flush_at(log_now(), 1);
	errno = saved;
}

/* Only the summaries of windows already over: for a periodic timer,
 * which must not cut a window short. */
void
log_flush_expired(void)
{
	int saved = errno;

	log_flush_at(log_now(), 0);
	errno = saved;
}

/*
 * 1 if msg must be left out: the same text at the same level came
 * LOG_RL_BURST times already in this window.  With every slot taken, the
 * oldest window ends early (its summary first), so no message is ever
 * left out without being counted.
 */
static int
log_limited(int level, const struct log_where *w, const char *msg,
    uint64_t now)
{
	uint64_t h = log_hash(level, msg);
	struct log_rl *rl, *free_rl = NULL, *oldest = NULL;
	size_t i;

	for (i = 0; i < LOG_RL_SLOTS; i++) {
		rl = &log_rl[i];
		if (!rl->rl_hash) {
			if (!free_rl)
				free_rl = rl;
			continue;
		}
		if (rl->rl_hash == h && rl->rl_level == level &&
		    strcmp(rl->rl_msg, msg) == 0) {
			if (++rl->rl_count <= LOG_RL_BURST)
				return 0;
			rl->rl_dropped++;
			return 1;
		}
		if (!oldest || rl->rl_start < oldest->rl_start)
			oldest = rl;
	}
	if (!free_rl) {
		if (oldest->rl_dropped)
			log_summary(oldest);
		free_rl = oldest;
	}
	free_rl->rl_hash = h;
	free_rl->rl_start = now;
	free_rl->rl_count = 1;
	free_rl->rl_dropped = 0;
	free_rl->rl_level = level;
	free_rl->rl_where = *w;
	snprintf(free_rl->rl_msg, sizeof(free_rl->rl_msg), "%s", msg);
	return 0;
}

static void
log_emit(int level, const struct log_where *w, const char *msg,
    const struct log_fields *lf)
{
	uint64_t now = log_now();

	log_flush_at(now, 0);
	if (level <= LOG_L_WARN && log_limited(level, w, msg, now))
		return;
	log_write(level, w, msg, lf, 0);
}

void
log_msg_at(const char *file, int line, const char *func, int level,
    const char *fmt, ...)
{
	const struct log_where w = { file, line, func };
	int saved = errno;
	char msg[LOG_LINE];
	va_list ap;

	if (level < LOG_L_ERR || level > LOG_L_DEBUG || level > log_level) {
		errno = saved;
		return;
	}
	va_start(ap, fmt);
	errno = saved;	/* so %m works */
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_emit(level, &w, msg, NULL);
	errno = saved;
}

void
log_flow_at(const char *file, int line, const char *func, int level,
    uint64_t flow_id, const char *client, const char *node,
    const char *event, const char *reason, const char *fmt, ...)
{
	const struct log_where w = { file, line, func };
	const struct log_fields lf = { flow_id, client, node, event, reason };
	int saved = errno;
	char msg[LOG_LINE];
	va_list ap;

	if (level < LOG_L_ERR || level > LOG_L_DEBUG || level > log_level) {
		errno = saved;
		return;
	}
	va_start(ap, fmt);
	errno = saved;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_emit(level, &w, msg, &lf);
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

void
sysd_notify(const char *state)
{
	(void)sd_notify(0, state);
}

double
sysd_watchdog(void)
{
	uint64_t usec;

	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return usec / 2e6;	/* twice per period, as sd_watchdog_enabled(3)
				 * advises */
}
