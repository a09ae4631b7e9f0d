/*
 * qtctl: asks quicktwitchd for its state through the control socket and
 * prints it.  The daemon answers in JSON only; --json passes that through
 * untouched, and every other form (tables, "name value" lines,
 * Prometheus text) is rendered here from the same document, so the forms
 * cannot disagree.
 *
 * Exit status: 0 ok, 1 the daemon reported an error (or answered
 * nonsense), 2 usage, 3 the daemon cannot be reached.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"

#define QC_OK		0
#define QC_DAEMON	1
#define QC_USAGE	2
#define QC_UNREACHABLE	3

#define QC_DEFAULT_CONF		"/etc/qt.conf"
#define QC_DEFAULT_SOCKET	"/run/quicktwitchd/qt.sock"
#define QC_TIMEOUT		10	/* s, per send or receive */

/* Options a command may take. */
#define QO_JSON		0x01
#define QO_PROM		0x02
#define QO_FILTER	0x04
#define QO_CLEANUP	0x08
#define QO_NODEARG	0x10	/* one positional argument: a node name */

enum qc_format { QF_TEXT, QF_JSON, QF_PROM };

struct qc_cmd {
	const char	*c_words[3];
	uint16_t	 c_type;
	unsigned	 c_opts;
	int		(*c_render)(const struct ctl_jv *, enum qc_format);
	const char	*c_usage;
};

static int	qc_stats(const struct ctl_jv *, enum qc_format);
static int	qc_flows(const struct ctl_jv *, enum qc_format);
static int	qc_config(const struct ctl_jv *, enum qc_format);
static int	qc_nodes(const struct ctl_jv *, enum qc_format);
static int	qc_stop(const struct ctl_jv *, enum qc_format);
static int	qc_done(const struct ctl_jv *, enum qc_format);

/* A new command is one new row. */
static const struct qc_cmd qc_cmds[] = {
	{ { "stats" }, CTL_STATS, QO_JSON | QO_PROM, qc_stats,
	    "stats [--json | --prometheus]" },
	{ { "list-flows" }, CTL_LIST_FLOWS, QO_JSON | QO_FILTER, qc_flows,
	    "list-flows [--json] [--node NAME] [--state STATE]" },
	{ { "show", "config" }, CTL_SHOW_CONFIG, QO_JSON, qc_config,
	    "show config [--json]" },
	{ { "nodes" }, CTL_NODES, QO_JSON, qc_nodes,
	    "nodes [--json]" },
	{ { "stop" }, CTL_STOP, QO_JSON | QO_CLEANUP, qc_stop,
	    "stop [--cleanup]" },
	{ { "reload" }, CTL_RELOAD, QO_JSON, qc_done,
	    "reload" },
	{ { "drain" }, CTL_DRAIN, QO_JSON | QO_NODEARG, qc_done,
	    "drain NODE" },
	{ { "undrain" }, CTL_UNDRAIN, QO_JSON | QO_NODEARG, qc_done,
	    "undrain NODE" },
};
#define QC_NCMDS	(sizeof(qc_cmds) / sizeof(qc_cmds[0]))

static void
usage(FILE *out, int status)
{
	size_t i;

	fprintf(out, "usage: qtctl [-s SOCKET | -c CONFIGFILE] COMMAND "
	    "[options]\n"
	    "  -s SOCKET      the daemon's control socket\n"
	    "  -c CONFIGFILE  take control-socket from this file "
	    "(default %s;\n"
	    "                 without either: %s)\n"
	    "commands:\n", QC_DEFAULT_CONF, QC_DEFAULT_SOCKET);
	for (i = 0; i < QC_NCMDS; i++)
		fprintf(out, "  %s\n", qc_cmds[i].c_usage);
	exit(status);
}

/*
 * Just the control-socket line of a config file: qtctl need not read
 * the key file (nor be allowed to) to find the socket.  The last line
 * wins, as in the daemon's parser.
 */
static int
qc_conf_socket(const char *file, char *path, size_t len)
{
	char line[1024], *k, *v, *end;
	FILE *f;

	if (!(f = fopen(file, "r")))
		return -1;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "#\r\n")] = '\0';
		k = line + strspn(line, " \t");
		if (strncmp(k, "control-socket", 14) != 0 ||
		    (k[14] != ' ' && k[14] != '\t'))
			continue;
		v = k + 14 + strspn(k + 14, " \t");
		end = v + strcspn(v, " \t");
		*end = '\0';
		if (*v)
			snprintf(path, len, "%s", v);
	}
	fclose(f);
	return 0;
}

static int
qc_io(int fd, void *buf, size_t len, int out)
{
	char *p = buf;
	ssize_t n;

	while (len) {
		n = out ? send(fd, p, len, MSG_NOSIGNAL) : recv(fd, p, len, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ECONNRESET;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * One request, one reply.  On success *body holds the reply's payload,
 * NUL-terminated; the return is the exit status.
 */
static int
qc_request(const char *path, uint16_t type, const void *payload,
    uint32_t plen, struct ctl_hdr *rh, char **body)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = QC_TIMEOUT };
	uint8_t hdr[CTL_HDR_LEN];
	const char *err = NULL;
	int fd, rc;

	*body = NULL;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "qtctl: %s: socket path too long\n", path);
		return QC_USAGE;
	}
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		fprintf(stderr, "qtctl: socket: %s\n", strerror(errno));
		return QC_UNREACHABLE;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "qtctl: cannot reach quicktwitchd on %s: %s\n",
		    path, strerror(errno));
		rc = QC_UNREACHABLE;
		goto out;
	}
	ctl_hdr_encode(hdr, type, plen);
	if (qc_io(fd, hdr, sizeof(hdr), 1) == -1 ||
	    (plen && qc_io(fd, (void *)(uintptr_t)payload, plen, 1) == -1)) {
		fprintf(stderr, "qtctl: %s: sending the request: %s\n", path,
		    strerror(errno));
		rc = QC_UNREACHABLE;
		goto out;
	}
	if (qc_io(fd, hdr, sizeof(hdr), 0) == -1) {
		fprintf(stderr, "qtctl: %s: no reply: %s\n", path,
		    errno == EAGAIN ? "timed out" : strerror(errno));
		rc = QC_UNREACHABLE;
		goto out;
	}
	if (ctl_hdr_decode(hdr, sizeof(hdr), CTL_MAX_REPLY, rh, &err) != 1 ||
	    (rh->ch_type != CTL_OK && rh->ch_type != CTL_ERROR)) {
		fprintf(stderr, "qtctl: %s: bad reply: %s\n", path,
		    err ? err : "unknown type");
		rc = QC_DAEMON;
		goto out;
	}
	if (!(*body = malloc((size_t)rh->ch_len + 1))) {
		fprintf(stderr, "qtctl: out of memory\n");
		rc = QC_DAEMON;
		goto out;
	}
	if (qc_io(fd, *body, rh->ch_len, 0) == -1) {
		fprintf(stderr, "qtctl: %s: reply cut short: %s\n", path,
		    errno == EAGAIN ? "timed out" : strerror(errno));
		free(*body);
		*body = NULL;
		rc = QC_UNREACHABLE;
		goto out;
	}
	(*body)[rh->ch_len] = '\0';
	rc = QC_OK;
out:
	(void)close(fd);
	return rc;
}

/*
 * A value as one line of text.  Strings come from the network (a
 * client's request line): control characters, C1 ones included, are
 * shown escaped, never sent to the terminal.
 */
static const char *
qc_text(const struct ctl_jv *v, char *buf, size_t len)
{
	const unsigned char *s;
	size_t o = 0;

	if (!v)
		return "-";
	switch (v->jv_type) {
	case CJ_NULL:
		return "-";
	case CJ_BOOL:
		return v->jv_bool ? "yes" : "no";
	case CJ_NUM:
		return v->jv_str;
	case CJ_STR:
		break;
	default:
		return "?";
	}
	for (s = (const unsigned char *)v->jv_str; *s && o + 8 < len; s++) {
		if (*s < 0x20 || *s == 0x7f)
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", *s);
		else if (*s == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f) {
			o += (size_t)snprintf(buf + o, len - o, "\\u%04x",
			    s[1]);
			s++;
		} else
			buf[o++] = (char)*s;
	}
	buf[o] = '\0';
	return buf;
}

struct qc_col {
	const char	*k_key;
	const char	*k_head;
	int		 k_right;	/* numbers line up on the right */
};

static void
qc_table(const struct ctl_jv *arr, const struct qc_col *cols, size_t ncols)
{
	const struct ctl_jv *row;
	size_t width[16] = { 0 }, i, n;
	char buf[512];

	for (i = 0; i < ncols; i++)
		width[i] = strlen(cols[i].k_head);
	for (row = arr->jv_child; row; row = row->jv_next)
		for (i = 0; i < ncols; i++) {
			n = strlen(qc_text(ctl_json_get(row, cols[i].k_key),
			    buf, sizeof(buf)));
			if (n > width[i])
				width[i] = n;
		}
	for (i = 0; i < ncols; i++) {
		if (i + 1 == ncols)
			printf("%s\n", cols[i].k_head);
		else
			printf(cols[i].k_right ? "%*s  " : "%-*s  ",
			    (int)width[i], cols[i].k_head);
	}
	for (row = arr->jv_child; row; row = row->jv_next)
		for (i = 0; i < ncols; i++) {
			const char *t = qc_text(ctl_json_get(row,
			    cols[i].k_key), buf, sizeof(buf));

			if (i + 1 == ncols)
				printf("%s\n", t);
			else
				printf(cols[i].k_right ? "%*s  " : "%-*s  ",
				    (int)width[i], t);
		}
}

/* A Prometheus name: what is not [a-zA-Z0-9_] becomes '_'. */
static void
qc_prom_name(const char *s, char *out, size_t len)
{
	size_t o;

	for (o = 0; *s && o + 1 < len; s++, o++)
		out[o] = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') ? *s : '_';
	out[o] = '\0';
}

static void
qc_prom_label(const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			printf("\\%c", *s);
		else if (*s == '\n')
			printf("\\n");
		else
			putchar(*s);
	}
}

static uint64_t
qc_num(const struct ctl_jv *obj, const char *key)
{
	const struct ctl_jv *v = ctl_json_get(obj, key);

	return v && v->jv_type == CJ_NUM ?
	    strtoull(v->jv_str, NULL, 10) : 0;
}

/* Nanoseconds as Prometheus wants them: seconds, exactly. */
static void
qc_prom_secs(uint64_t ns)
{
	printf("%llu.%09llu", (unsigned long long)(ns / 1000000000u),
	    (unsigned long long)(ns % 1000000000u));
}

/* The labels of one histogram's series: {step="STEP",le="..."} or, without
 * a step, {le="..."}; LE_NS NULL for +Inf, no LE at all if NOLE. */
static void
qc_prom_labels(const char *step, const char *le_ns, int nole)
{
	if (!step && nole)
		return;
	printf("{");
	if (step) {
		printf("step=\"");
		qc_prom_label(step);
		printf("\"%s", nole ? "" : ",");
	}
	if (!nole) {
		printf("le=\"");
		if (le_ns)
			qc_prom_secs(strtoull(le_ns, NULL, 10));
		else
			printf("+Inf");
		printf("\"");
	}
	printf("}");
}

/* One histogram of the daemon's (count, sum_ns, le_ns) as NAME's series. */
static void
qc_hist_prom(const char *name, const char *step, const struct ctl_jv *h)
{
	const struct ctl_jv *le, *b;

	if ((le = ctl_json_get(h, "le_ns")) && le->jv_type == CJ_OBJ)
		for (b = le->jv_child; b; b = b->jv_next) {
			if (b->jv_type != CJ_NUM)
				continue;
			printf("%s_bucket", name);
			qc_prom_labels(step, b->jv_key, 0);
			printf(" %s\n", b->jv_str);
		}
	printf("%s_bucket", name);
	qc_prom_labels(step, NULL, 0);
	printf(" %llu\n%s_sum", (unsigned long long)qc_num(h, "count"), name);
	qc_prom_labels(step, NULL, 1);
	printf(" ");
	qc_prom_secs(qc_num(h, "sum_ns"));
	printf("\n%s_count", name);
	qc_prom_labels(step, NULL, 1);
	printf(" %llu\n", (unsigned long long)qc_num(h, "count"));
}

static void
qc_timings_prom(const struct ctl_jv *timings, const struct ctl_jv *loop)
{
	const struct ctl_jv *st;

	printf("# HELP quicktwitch_handoff_step_seconds Time each step of a "
	    "hand-off took on this node (see qtctl(8)).\n");
	printf("# TYPE quicktwitch_handoff_step_seconds histogram\n");
	for (st = timings->jv_child; st; st = st->jv_next)
		if (st->jv_type == CJ_OBJ)
			qc_hist_prom("quicktwitch_handoff_step_seconds",
			    st->jv_key, st);
	if (!loop || loop->jv_type != CJ_OBJ)
		return;		/* a daemon from before it */
	printf("# HELP quicktwitch_loop_busy_seconds Time each batch of the "
	    "event loop's callbacks took: what the daemon delays the next "
	    "event by.\n");
	printf("# TYPE quicktwitch_loop_busy_seconds histogram\n");
	qc_hist_prom("quicktwitch_loop_busy_seconds", NULL, loop);
}

/* One histogram's line: count, then quantiles and the largest in us. */
static void
qc_hist_text(const char *name, const struct ctl_jv *h)
{
	static const char *const q[] = { "p50", "p90", "p99", "max" };
	char key[16];
	uint64_t ns;
	size_t i;

	printf("%s count=%llu", name, (unsigned long long)qc_num(h, "count"));
	for (i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		(void)snprintf(key, sizeof(key), "%s_ns", q[i]);
		ns = qc_num(h, key);
		printf(" %s=%llu.%llu", q[i], (unsigned long long)(ns / 1000),
		    (unsigned long long)(ns % 1000 / 100));
	}
	printf(" us\n");
}

/* One line a step, and one for the loop's batches. */
static void
qc_timings_text(const struct ctl_jv *timings, const struct ctl_jv *loop)
{
	const struct ctl_jv *st;
	char name[64];

	for (st = timings->jv_child; st; st = st->jv_next) {
		if (st->jv_type != CJ_OBJ)
			continue;
		(void)snprintf(name, sizeof(name), "timing_%s", st->jv_key);
		qc_hist_text(name, st);
	}
	if (loop && loop->jv_type == CJ_OBJ)
		qc_hist_text("loop_busy", loop);
}

static int
qc_stats_prom(const struct ctl_jv *counters, const struct ctl_jv *flows,
    const struct ctl_jv *uptime, const struct ctl_jv *timings,
    const struct ctl_jv *loop)
{
	const struct ctl_counter *c;
	const struct ctl_jv *m;
	char name[128];

	for (m = counters->jv_child; m; m = m->jv_next) {
		if (m->jv_type != CJ_NUM)
			continue;
		qc_prom_name(m->jv_key, name, sizeof(name));
		c = ctl_counter_by_name(m->jv_key);
		printf("# HELP quicktwitch_%s_total %s\n", name,
		    c ? c->cc_help : "A quicktwitch counter.");
		printf("# TYPE quicktwitch_%s_total counter\n", name);
		printf("quicktwitch_%s_total %s\n", name, m->jv_str);
	}
	printf("# HELP quicktwitch_flows Current flows by state.\n");
	printf("# TYPE quicktwitch_flows gauge\n");
	for (m = flows->jv_child; m; m = m->jv_next) {
		if (m->jv_type != CJ_NUM)
			continue;
		printf("quicktwitch_flows{state=\"");
		qc_prom_label(m->jv_key);
		printf("\"} %s\n", m->jv_str);
	}
	if (uptime && uptime->jv_type == CJ_NUM) {
		printf("# HELP quicktwitch_uptime_seconds Seconds since the "
		    "daemon opened its control socket.\n");
		printf("# TYPE quicktwitch_uptime_seconds gauge\n");
		printf("quicktwitch_uptime_seconds %s\n", uptime->jv_str);
	}
	/* A daemon from before the timings sends none. */
	if (timings && timings->jv_type == CJ_OBJ)
		qc_timings_prom(timings, loop);
	return 0;
}

static int
qc_stats(const struct ctl_jv *doc, enum qc_format fmt)
{
	const struct ctl_jv *counters = ctl_json_get(doc, "counters");
	const struct ctl_jv *flows = ctl_json_get(doc, "flows");
	const struct ctl_jv *timings = ctl_json_get(doc, "timings");
	const struct ctl_jv *loop = ctl_json_get(doc, "loop_busy");
	const struct ctl_jv *m;
	char buf[512];

	if (!counters || counters->jv_type != CJ_OBJ || !flows ||
	    flows->jv_type != CJ_OBJ)
		return -1;
	if (fmt == QF_PROM)
		return qc_stats_prom(counters, flows,
		    ctl_json_get(doc, "uptime"), timings, loop);
	printf("node %s\n", qc_text(ctl_json_get(doc, "node"), buf,
	    sizeof(buf)));
	printf("uptime %s\n", qc_text(ctl_json_get(doc, "uptime"), buf,
	    sizeof(buf)));
	for (m = counters->jv_child; m; m = m->jv_next)
		printf("%s %s\n", m->jv_key, qc_text(m, buf, sizeof(buf)));
	for (m = flows->jv_child; m; m = m->jv_next)
		printf("flows_%s %s\n", m->jv_key, qc_text(m, buf,
		    sizeof(buf)));
	printf("flows_total %s\n", qc_text(ctl_json_get(doc, "flows_total"),
	    buf, sizeof(buf)));
	if (timings && timings->jv_type == CJ_OBJ)
		qc_timings_text(timings, loop);
	return 0;
}

static int
qc_flows(const struct ctl_jv *doc, enum qc_format fmt)
{
	static const struct qc_col cols[] = {
		{ "id", "ID", 1 },
		{ "role", "ROLE", 0 },
		{ "state", "STATE", 0 },
		{ "client", "CLIENT", 0 },
		{ "service", "SERVICE", 0 },
		{ "peer", "PEER", 0 },
		{ "age", "AGE", 1 },
		{ "bytes", "BYTES", 1 },
		{ "requests", "REQS", 1 },
		{ "request", "REQUEST", 0 },
	};
	const struct ctl_jv *flows = ctl_json_get(doc, "flows");

	(void)fmt;
	if (!flows || flows->jv_type != CJ_ARR)
		return -1;
	qc_table(flows, cols, sizeof(cols) / sizeof(cols[0]));
	return 0;
}

/* Commands whose reply only says it was done. */
static int
qc_done(const struct ctl_jv *v, enum qc_format fmt)
{
	const struct ctl_jv *r = ctl_json_get(v, "reloaded");
	const struct ctl_jv *n = ctl_json_get(v, "node");
	const struct ctl_jv *d = ctl_json_get(v, "drain");

	(void)fmt;
	if (r && r->jv_type == CJ_STR)
		printf("reloaded %s\n", r->jv_str);
	else if (n && n->jv_type == CJ_STR && d && d->jv_type == CJ_BOOL)
		printf("node %s: %s\n", n->jv_str, d->jv_bool ?
		    "draining (no new connections)" : "taking connections");
	else
		return QC_DAEMON;
	return QC_OK;
}

static int
qc_stop(const struct ctl_jv *v, enum qc_format fmt)
{
	const struct ctl_jv *s = ctl_json_get(v, "stopping");

	(void)fmt;
	if (!s || s->jv_type != CJ_STR)
		return QC_DAEMON;
	printf("quicktwitchd is stopping%s\n", strcmp(s->jv_str, "cleanup") ?
	    "; the flows it steers keep going" :
	    " and removing every rule and set it owns");
	return QC_OK;
}

static int
qc_nodes(const struct ctl_jv *doc, enum qc_format fmt)
{
	static const struct qc_col cols[] = {
		{ "name", "NAME", 0 },
		{ "id", "ID", 1 },
		{ "address", "ADDRESS", 0 },
		{ "weight", "WEIGHT", 1 },
		{ "up", "UP", 0 },
		{ "self", "SELF", 0 },
		{ "state", "STATE", 0 },
		{ "load", "LOAD", 1 },
		{ "heard_ms", "HEARD-MS", 1 },
	};
	const struct ctl_jv *nodes = ctl_json_get(doc, "nodes");

	(void)fmt;
	if (!nodes || nodes->jv_type != CJ_ARR)
		return -1;
	qc_table(nodes, cols, sizeof(cols) / sizeof(cols[0]));
	return 0;
}

/* "word name key value key value...", as a config file spells it. */
static void
qc_config_lines(const struct ctl_jv *arr, const char *word)
{
	const struct ctl_jv *e, *m;
	char buf[512];

	if (!arr || arr->jv_type != CJ_ARR)
		return;
	for (e = arr->jv_child; e; e = e->jv_next) {
		printf("%s %s", word, qc_text(ctl_json_get(e, "name"), buf,
		    sizeof(buf)));
		for (m = e->jv_child; m; m = m->jv_next)
			if (strcmp(m->jv_key, "name") != 0)
				printf(" %s %s", m->jv_key,
				    qc_text(m, buf, sizeof(buf)));
		printf("\n");
	}
}

static int
qc_config(const struct ctl_jv *doc, enum qc_format fmt)
{
	const struct ctl_jv *opts = ctl_json_get(doc, "options");
	const struct ctl_jv *m;
	const char *t;
	char buf[512];

	(void)fmt;
	if (!opts || opts->jv_type != CJ_OBJ)
		return -1;
	printf("# %s\n", qc_text(ctl_json_get(doc, "path"), buf, sizeof(buf)));
	for (m = opts->jv_child; m; m = m->jv_next) {
		t = qc_text(m, buf, sizeof(buf));
		printf("%s %s\n", m->jv_key, *t ? t : "\"\"");
	}
	qc_config_lines(ctl_json_get(doc, "nodes"), "node");
	qc_config_lines(ctl_json_get(doc, "services"), "service");
	return 0;
}

static const struct qc_cmd *
qc_match(int ac, char **av, int *used)
{
	size_t i;
	int k;

	for (i = 0; i < QC_NCMDS; i++) {
		for (k = 0; k < 3 && qc_cmds[i].c_words[k]; k++)
			if (k >= ac || strcmp(av[k], qc_cmds[i].c_words[k]))
				break;
		if (k == 3 || !qc_cmds[i].c_words[k]) {
			*used = k;
			return &qc_cmds[i];
		}
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = NULL, *conf = NULL, *node = NULL, *state = NULL;
	int cleanup = 0;
	uint8_t filter[sizeof(struct ctl_filter)];
	enum qc_format fmt = QF_TEXT;
	const struct qc_cmd *cmd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	const struct ctl_jv *e;
	struct ctl_jv *doc;
	struct ctl_hdr rh;
	char *body, err[128];
	uint32_t plen = 0;
	int ch, used, i, rc;

	/* '+': options end at the command, whose own options follow it. */
	while ((ch = getopt_long(argc, argv, "+s:c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			sock = optarg;
			break;
		case 'c':
			conf = optarg;
			break;
		case 'h':
			usage(stdout, QC_OK);
			break;
		default:
			usage(stderr, QC_USAGE);
		}
	}
	if (sock && conf) {
		fprintf(stderr, "qtctl: -s and -c exclude each other\n");
		usage(stderr, QC_USAGE);
	}
	if (optind == argc)
		usage(stderr, QC_USAGE);
	if (!strcmp(argv[optind], "help"))
		usage(stdout, QC_OK);
	if (!(cmd = qc_match(argc - optind, argv + optind, &used))) {
		fprintf(stderr, "qtctl: unknown command \"%s\"\n",
		    argv[optind]);
		usage(stderr, QC_USAGE);
	}
	for (i = optind + used; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--json") && (cmd->c_opts & QO_JSON) &&
		    fmt == QF_TEXT)
			fmt = QF_JSON;
		else if (!strcmp(a, "--prometheus") &&
		    (cmd->c_opts & QO_PROM) && fmt == QF_TEXT)
			fmt = QF_PROM;
		else if (!strcmp(a, "--node") && (cmd->c_opts & QO_FILTER) &&
		    i + 1 < argc)
			node = argv[++i];
		else if (!strcmp(a, "--state") && (cmd->c_opts & QO_FILTER) &&
		    i + 1 < argc)
			state = argv[++i];
		else if (!strcmp(a, "--cleanup") && (cmd->c_opts & QO_CLEANUP))
			cleanup = 1;
		else if ((cmd->c_opts & QO_NODEARG) && a[0] != '-' && !node)
			node = a;
		else {
			fprintf(stderr, "qtctl: %s: unexpected \"%s\"\n",
			    cmd->c_usage, a);
			return QC_USAGE;
		}
	}
	if (cmd->c_type == CTL_STOP) {
		filter[0] = (uint8_t)cleanup;
		plen = 1;
	} else if (cmd->c_opts & QO_NODEARG) {
		if (!node || strlen(node) >= CTL_FILTER_LEN) {
			fprintf(stderr, "usage: qtctl %s\n", cmd->c_usage);
			return QC_USAGE;
		}
		memset(filter, 0, sizeof(filter));
		memcpy(filter, node, strlen(node));
		plen = CTL_FILTER_LEN;
	} else if (node || state) {
		if (ctl_filter_encode(node, state, filter) == -1) {
			fprintf(stderr, "qtctl: --node or --state: at most %d "
			    "bytes\n", CTL_FILTER_LEN - 1);
			return QC_USAGE;
		}
		plen = sizeof(filter);
	}

	if (!sock) {
		snprintf(path, sizeof(path), "%s", QC_DEFAULT_SOCKET);
		if (qc_conf_socket(conf ? conf : QC_DEFAULT_CONF, path,
		    sizeof(path)) == -1 && conf) {
			fprintf(stderr, "qtctl: %s: %s\n", conf,
			    strerror(errno));
			return QC_USAGE;
		}
		sock = path;
	}

	if ((rc = qc_request(sock, cmd->c_type, plen ? filter : NULL, plen,
	    &rh, &body)) != QC_OK)
		return rc;
	doc = ctl_json_parse(body, rh.ch_len, err, sizeof(err));
	if (rh.ch_type == CTL_ERROR) {
		e = ctl_json_get(doc, "error");
		fprintf(stderr, "qtctl: quicktwitchd: %s\n",
		    e && e->jv_type == CJ_STR ? e->jv_str : body);
		rc = QC_DAEMON;
	} else if (!doc) {
		fprintf(stderr, "qtctl: %s: reply is not JSON: %s\n", sock, err);
		rc = QC_DAEMON;
	} else if (fmt == QF_JSON) {
		fwrite(body, 1, rh.ch_len, stdout);
	} else if (cmd->c_render(doc, fmt) == -1) {
		fprintf(stderr, "qtctl: %s: unexpected reply\n", sock);
		rc = QC_DAEMON;
	}
	ctl_json_free(doc);
	free(body);
	if (fflush(stdout) == EOF && rc == QC_OK) {
		fprintf(stderr, "qtctl: stdout: %s\n", strerror(errno));
		rc = QC_DAEMON;
	}
	return rc;
}
