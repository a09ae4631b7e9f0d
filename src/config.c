/*
 * The configuration file: one statement per line, "key value...", '#'
 * starts a comment.  Scalar options are rows of one table (name, kind,
 * bounds, field, default); node and service lines have parsers of their
 * own.  Every error is reported as file:line: message and parsing goes on,
 * so one run shows them all; the caller swaps a config in only when the
 * count is zero.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "qt.h"

#define CF_MAXARGS	16

enum cf_kind { CF_UINT, CF_BOOL, CF_STR, CF_PORT, CF_LOGLEVEL, CF_WORD };

/* The values of a CF_WORD option, in the order of its enum. */
static const char *const hash_key_words[] = { "path", "path-query",
    "host-path", NULL };		/* enum qt_hash_key */
static const char *const log_flows_words[] = { "end", "all", "none",
    NULL };				/* enum qt_log_flows */

static const char *const *
cf_words(const char *option)
{
	return !strcmp(option, "hash-key") ? hash_key_words :
	    !strcmp(option, "log-flows") ? log_flows_words : NULL;
}

struct cf_option {
	const char	*name;
	enum cf_kind	 kind;
	size_t		 off;
	size_t		 size;		/* CF_STR: buffer size */
	unsigned long	 min, max;
	const char	*def;
};

#define OFF(f)	offsetof(struct qt_config, f)
#define SZ(f)	sizeof(((struct qt_config *)0)->f)

static const struct cf_option cf_options[] = {
	{ "self", CF_STR, OFF(c_self_name), SZ(c_self_name), 0, 0, "" },
	{ "key-file", CF_STR, OFF(c_key_file), SZ(c_key_file), 0, 0,
	    "/etc/quicktwitch/cluster.key" },
	{ "accept-key-file", CF_STR, OFF(c_key2_file), SZ(c_key2_file), 0, 0,
	    "" },
	{ "docroot", CF_STR, OFF(c_docroot), SZ(c_docroot), 0, 0,
	    "/var/www/html" },
	{ "interface", CF_STR, OFF(c_iface), SZ(c_iface), 0, 0, "" },
	{ "control-socket", CF_STR, OFF(c_ctl_path), SZ(c_ctl_path), 0, 0,
	    "/run/quicktwitchd/qt.sock" },
	{ "control-group", CF_STR, OFF(c_ctl_group), SZ(c_ctl_group), 0, 0,
	    "root" },
	{ "band-port", CF_PORT, OFF(c_band_port), 0, 1, 65535, "7400" },
	{ "nflog-group", CF_UINT, OFF(c_nflog_group), 0, 1, 65535, "20820" },
	{ "handoff-timeout", CF_UINT, OFF(c_handoff_timeout), 0, 10, 10000,
	    "200" },
	{ "handoff-tries", CF_UINT, OFF(c_handoff_tries), 0, 1, 20, "3" },
	{ "header-timeout", CF_UINT, OFF(c_header_timeout), 0, 100, 600000,
	    "10000" },
	{ "defer-accept", CF_BOOL, OFF(c_defer_accept), 0, 0, 0, "yes" },
	{ "idle-timeout", CF_UINT, OFF(c_idle_timeout), 0, 100, 3600000,
	    "60000" },
	{ "close-wait", CF_UINT, OFF(c_close_wait), 0, 100, 600000,
	    "60000" },
	{ "sweep-interval", CF_UINT, OFF(c_sweep_interval), 0, 200, 600000,
	    "5000" },
	{ "flow-timeout", CF_UINT, OFF(c_flow_timeout), 0, 1000, 86400000,
	    "60000" },
	{ "conntrack-grace", CF_UINT, OFF(c_ct_grace), 0, 0, 600000, "2000" },
	{ "max-header", CF_UINT, OFF(c_max_header), 0, 256, 65536, "16384" },
	{ "replay-window", CF_UINT, OFF(c_replay_window), 0, 100, 600000,
	    "10000" },
	{ "set-maxelem", CF_UINT, OFF(c_set_maxelem), 0, 1024, 16777216,
	    "1048576" },
	{ "stop-cleanup", CF_BOOL, OFF(c_stop_cleanup), 0, 0, 0, "no" },
	{ "set-sysctls", CF_BOOL, OFF(c_set_sysctls), 0, 0, 0, "no" },
	{ "log-level", CF_LOGLEVEL, OFF(c_log_level), 0, 0, 0, "info" },
	{ "log-flows", CF_WORD, OFF(c_log_flows), 0, 0, 0, "end" },
	{ "hash-key", CF_WORD, OFF(c_hash_key), 0, 0, 0, "path" },
	{ "bounded-load", CF_UINT, OFF(c_bounded_load), 0, 0, 1000, "0" },
	{ "heartbeat-interval", CF_UINT, OFF(c_hb_interval), 0, 20, 60000,
	    "200" },
	{ "dead-after", CF_UINT, OFF(c_dead_after), 0, 50, 600000, "1000" },
	{ "upstream-timeout", CF_UINT, OFF(c_upstream_timeout), 0, 100,
	    3600000, "30000" },
	{ "upstream-spare", CF_UINT, OFF(c_upstream_spare), 0, 0, 64, "4" },
	{ "upstream-spare-age", CF_UINT, OFF(c_upstream_spare_age), 0, 100,
	    3600000, "4000" },
};

struct cf_ctx {
	const char		*file;
	int			 line;
	int			 errors;
	struct qt_config	*cf;
	char			*errbuf;	/* collects errors if set */
	size_t			 errlen;
	/* where each statement was, for errors found after parsing */
	int			 opt_line[sizeof(cf_options) /
				    sizeof(cf_options[0])];
	int			 node_line[QT_MAX_NODES];
	int			 svc_line[QT_MAX_SVCS];
	/* names resolved once every node is known */
	char			 grp_members[QT_MAX_GROUPS][QT_MAX_NODES]
				    [QT_NAME_MAX];
	int			 grp_nmembers[QT_MAX_GROUPS];
	int			 grp_line[QT_MAX_GROUPS];
	char			 rt_target[QT_MAX_ROUTES][QT_NAME_MAX];
};

static void
cf_error(struct cf_ctx *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
cf_error(struct cf_ctx *x, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (x->line > 0)
		log_err("%s:%d: %s", x->file, x->line, msg);
	else
		log_err("%s: %s", x->file, msg);
	if (x->errbuf) {
		size_t n = strlen(x->errbuf);

		if (x->line > 0)
			snprintf(x->errbuf + n, x->errlen - n, "%s:%d: %s\n",
			    x->file, x->line, msg);
		else
			snprintf(x->errbuf + n, x->errlen - n, "%s: %s\n",
			    x->file, msg);
	}
	x->errors++;
}

static int
parse_ulong(const char *s, unsigned long min, unsigned long max,
    unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int
parse_bool(const char *s, int *out)
{
	if (!strcasecmp(s, "yes") || !strcasecmp(s, "on") || !strcmp(s, "1"))
		*out = 1;
	else if (!strcasecmp(s, "no") || !strcasecmp(s, "off") ||
	    !strcmp(s, "0"))
		*out = 0;
	else
		return -1;
	return 0;
}

static int
cf_set(struct cf_ctx *x, const struct cf_option *o, const char *val)
{
	char *field = (char *)x->cf + o->off;
	const char *const *words;
	unsigned long v;
	int b;

	switch (o->kind) {
	case CF_STR:
		if (strlen(val) >= o->size) {
			cf_error(x, "%s: value too long (at most %zu bytes)",
			    o->name, o->size - 1);
			return -1;
		}
		strcpy(field, val);
		return 0;
	case CF_UINT:
		if (parse_ulong(val, o->min, o->max, &v) == -1) {
			cf_error(x, "%s: \"%s\" is not a number from %lu to "
			    "%lu", o->name, val, o->min, o->max);
			return -1;
		}
		*(unsigned *)field = (unsigned)v;
		return 0;
	case CF_PORT:
		if (parse_ulong(val, o->min, o->max, &v) == -1) {
			cf_error(x, "%s: \"%s\" is not a port number", o->name,
			    val);
			return -1;
		}
		*(uint16_t *)field = (uint16_t)v;
		return 0;
	case CF_BOOL:
		if (parse_bool(val, &b) == -1) {
			cf_error(x, "%s: \"%s\" is not yes or no", o->name,
			    val);
			return -1;
		}
		*(int *)field = b;
		return 0;
	case CF_WORD:
		words = cf_words(o->name);
		for (b = 0; words[b] && strcmp(val, words[b]); b++)
			continue;
		if (!words[b]) {
			char list[128];
			size_t n = 0, k;

			list[0] = '\0';
			for (k = 0; words[k] && n < sizeof(list); k++)
				n += (size_t)snprintf(list + n, sizeof(list) - n,
				    "%s%s", k ? ", " : "", words[k]);
			cf_error(x, "%s: \"%s\" is not one of %s", o->name, val,
			    list);
			return -1;
		}
		*(int *)field = b;
		return 0;
	case CF_LOGLEVEL:
		if ((b = log_level_parse(val)) == -1) {
			cf_error(x, "%s: \"%s\" is not one of error, warning, "
			    "notice, info, debug", o->name, val);
			return -1;
		}
		*(int *)field = b;
		return 0;
	}
	return -1;
}

static size_t
cf_opt_index(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(cf_options) / sizeof(cf_options[0]); i++)
		if (!strcmp(cf_options[i].name, name))
			break;
	return i;
}

static int
cf_node_by_name(const struct qt_config *cf, const char *name)
{
	size_t i;

	for (i = 0; i < cf->c_nnodes; i++)
		if (!strcmp(cf->c_nodes[i].n_name, name))
			return (int)i;
	return -1;
}

static int
valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= QT_NAME_MAX)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
			return 0;
	return 1;
}

/* node NAME id N address A.B.C.D [weight W] */
static void
cf_node(struct cf_ctx *x, char **av, int ac)
{
	struct qt_config *cf = x->cf;
	struct qt_node n = { .n_weight = 100, .n_up = 1 };
	unsigned long v;
	size_t i;
	int k, have_id = 0, have_addr = 0;

	if (ac < 2 || !valid_name(av[1])) {
		cf_error(x, "node: expected a name (letters, digits, '-', "
		    "'_', at most %d bytes)", QT_NAME_MAX - 1);
		return;
	}
	strcpy(n.n_name, av[1]);
	for (k = 2; k < ac; k += 2) {
		if (k + 1 >= ac) {
			cf_error(x, "node %s: \"%s\" needs a value", av[1],
			    av[k]);
			return;
		}
		if (!strcmp(av[k], "id")) {
			if (parse_ulong(av[k + 1], 1, QT_MAX_NODES - 1,
			    &v) == -1) {
				cf_error(x, "node %s: id \"%s\" is not from 1 "
				    "to %d", av[1], av[k + 1],
				    QT_MAX_NODES - 1);
				return;
			}
			n.n_id = (uint32_t)v;
			have_id = 1;
		} else if (!strcmp(av[k], "address")) {
			struct in_addr a;

			if (inet_pton(AF_INET, av[k + 1], &a) != 1 ||
			    a.s_addr == INADDR_ANY) {
				cf_error(x, "node %s: \"%s\" is not an IPv4 "
				    "address", av[1], av[k + 1]);
				return;
			}
			n.n_addr = a.s_addr;
			have_addr = 1;
		} else if (!strcmp(av[k], "mode")) {
			if (!strcmp(av[k + 1], "handoff"))
				n.n_mode = NM_HANDOFF;
			else if (!strcmp(av[k + 1], "proxy"))
				n.n_mode = NM_PROXY;
			else if (!strcmp(av[k + 1], "handoff-then-proxy"))
				n.n_mode = NM_HANDOFF_PROXY;
			else {
				cf_error(x, "node %s: mode \"%s\" is not "
				    "handoff, proxy or handoff-then-proxy",
				    av[1], av[k + 1]);
				return;
			}
		} else if (!strcmp(av[k], "drain")) {
			if (parse_bool(av[k + 1], &n.n_drain) == -1) {
				cf_error(x, "node %s: drain \"%s\" is not yes "
				    "or no", av[1], av[k + 1]);
				return;
			}
		} else if (!strcmp(av[k], "weight")) {
			if (parse_ulong(av[k + 1], 0, 1000000, &v) == -1) {
				cf_error(x, "node %s: weight \"%s\" is not "
				    "from 0 to 1000000", av[1], av[k + 1]);
				return;
			}
			n.n_weight = (uint32_t)v;
		} else {
			cf_error(x, "node %s: unknown attribute \"%s\"", av[1],
			    av[k]);
			return;
		}
	}
	if (!have_id || !have_addr) {
		cf_error(x, "node %s: needs both id and address", av[1]);
		return;
	}
	for (i = 0; i < cf->c_nnodes; i++) {
		if (!strcmp(cf->c_nodes[i].n_name, n.n_name) ||
		    cf->c_nodes[i].n_id == n.n_id ||
		    cf->c_nodes[i].n_addr == n.n_addr) {
			cf_error(x, "node %s: name, id or address already "
			    "used by node %s", av[1], cf->c_nodes[i].n_name);
			return;
		}
	}
	if (cf->c_nnodes == QT_MAX_NODES - 1) {
		cf_error(x, "node %s: too many nodes", av[1]);
		return;
	}
	x->node_line[cf->c_nnodes] = x->line;
	cf->c_nodes[cf->c_nnodes++] = n;
}

/* service NAME port P handoff-base B */
static void
cf_service(struct cf_ctx *x, char **av, int ac)
{
	struct qt_config *cf = x->cf;
	struct qt_service s = { .s_port = 0 };
	unsigned long v;
	int k;

	if (ac < 2 || !valid_name(av[1])) {
		cf_error(x, "service: expected a name");
		return;
	}
	strcpy(s.s_name, av[1]);
	for (k = 2; k < ac; k += 2) {
		if (k + 1 >= ac) {
			cf_error(x, "service %s: \"%s\" needs a value", av[1],
			    av[k]);
			return;
		}
		if (!strcmp(av[k], "upstream")) {
			if (strlen(av[k + 1]) >= sizeof(s.s_upname) ||
			    sock_addr_parse(av[k + 1], &s.s_upstream,
			    &s.s_uplen) == -1) {
				cf_error(x, "service %s: upstream \"%s\" is not "
				    "ADDRESS:PORT or unix:/PATH", av[1],
				    av[k + 1]);
				return;
			}
			strcpy(s.s_upname, av[k + 1]);
			continue;
		}
		if (parse_ulong(av[k + 1], 1, 65535, &v) == -1) {
			cf_error(x, "service %s: %s \"%s\" is not a port "
			    "number", av[1], av[k], av[k + 1]);
			return;
		}
		if (!strcmp(av[k], "port"))
			s.s_port = (uint16_t)v;
		else if (!strcmp(av[k], "handoff-base"))
			s.s_hobase = (uint16_t)v;
		else {
			cf_error(x, "service %s: unknown attribute \"%s\"",
			    av[1], av[k]);
			return;
		}
	}
	if (!s.s_port || !s.s_hobase) {
		cf_error(x, "service %s: needs port and handoff-base", av[1]);
		return;
	}
	if (s.s_hobase > 65535 - QT_MAX_NODES) {
		cf_error(x, "service %s: handoff-base must leave room for %d "
		    "ports", av[1], QT_MAX_NODES);
		return;
	}
	if (cf->c_nsvcs == QT_MAX_SVCS) {
		cf_error(x, "service %s: at most %d services", av[1],
		    QT_MAX_SVCS);
		return;
	}
	x->svc_line[cf->c_nsvcs] = x->line;
	cf->c_svcs[cf->c_nsvcs++] = s;
}

/* group NAME NODE... */
static void
cf_group(struct cf_ctx *x, char **av, int ac)
{
	struct qt_config *cf = x->cf;
	size_t i, g = cf->c_ngroups;
	int k;

	if (ac < 3 || !valid_name(av[1])) {
		cf_error(x, "group: expected a name and at least one node");
		return;
	}
	for (i = 0; i < cf->c_ngroups; i++)
		if (!strcmp(cf->c_groups[i].g_name, av[1])) {
			cf_error(x, "group %s: defined twice", av[1]);
			return;
		}
	if (g == QT_MAX_GROUPS || ac - 2 > QT_MAX_NODES) {
		cf_error(x, "group %s: too many groups or members", av[1]);
		return;
	}
	strcpy(cf->c_groups[g].g_name, av[1]);
	for (k = 2; k < ac; k++) {
		if (!valid_name(av[k])) {
			cf_error(x, "group %s: \"%s\" is not a node name",
			    av[1], av[k]);
			return;
		}
		strcpy(x->grp_members[g][k - 2], av[k]);
	}
	x->grp_nmembers[g] = ac - 2;
	x->grp_line[g] = x->line;
	cf->c_ngroups++;
}

/* route [host H] [prefix P] (group G | node N | local | reject STATUS) */
static void
cf_route(struct cf_ctx *x, char **av, int ac)
{
	struct qt_config *cf = x->cf;
	struct qt_route r = { .r_line = x->line };
	unsigned long v;
	int k = 1, have_action = 0;

	if (cf->c_nroutes == QT_MAX_ROUTES) {
		cf_error(x, "route: at most %d routes", QT_MAX_ROUTES);
		return;
	}
	while (k < ac) {
		const char *w = av[k];

		if (have_action) {
			cf_error(x, "route: \"%s\" after the action", w);
			return;
		}
		if (!strcmp(w, "local")) {
			r.r_action = RT_LOCAL;
			have_action = 1;
			k++;
			continue;
		}
		if (k + 1 >= ac) {
			cf_error(x, "route: \"%s\" needs a value", w);
			return;
		}
		if (!strcmp(w, "host")) {
			if (strlen(av[k + 1]) >= sizeof(r.r_host)) {
				cf_error(x, "route: host too long");
				return;
			}
			strcpy(r.r_host, av[k + 1]);
		} else if (!strcmp(w, "prefix")) {
			if (av[k + 1][0] != '/' ||
			    strlen(av[k + 1]) >= sizeof(r.r_prefix)) {
				cf_error(x, "route: prefix \"%s\" must start "
				    "with '/'", av[k + 1]);
				return;
			}
			strcpy(r.r_prefix, av[k + 1]);
		} else if (!strcmp(w, "group") || !strcmp(w, "node")) {
			if (strlen(av[k + 1]) >= QT_NAME_MAX) {
				cf_error(x, "route: name too long");
				return;
			}
			r.r_action = !strcmp(w, "group") ? RT_GROUP : RT_NODE;
			strcpy(x->rt_target[cf->c_nroutes], av[k + 1]);
			have_action = 1;
		} else if (!strcmp(w, "reject")) {
			if (parse_ulong(av[k + 1], 400, 599, &v) == -1) {
				cf_error(x, "route: reject status \"%s\" is "
				    "not from 400 to 599", av[k + 1]);
				return;
			}
			r.r_action = RT_REJECT;
			r.r_arg = (uint32_t)v;
			have_action = 1;
		} else {
			cf_error(x, "route: unknown word \"%s\"", w);
			return;
		}
		k += 2;
	}
	if (!have_action) {
		cf_error(x, "route: no action (group, node, local or reject)");
		return;
	}
	cf->c_routes[cf->c_nroutes++] = r;
}

static int
split(char *line, char **av, int max)
{
	int ac = 0;
	char *p = line;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '#' || *p == '\n' || *p == '\r')
			break;
		if (ac == max)
			return -1;
		av[ac++] = p;
		while (*p && *p != ' ' && *p != '\t' && *p != '\n' &&
		    *p != '\r' && *p != '#')
			p++;
		if (*p == '#') {
			*p = '\0';
			break;
		}
		if (*p)
			*p++ = '\0';
	}
	return ac;
}

static void
cf_defaults(struct cf_ctx *x)
{
	size_t i;

	for (i = 0; i < sizeof(cf_options) / sizeof(cf_options[0]); i++)
		(void)cf_set(x, &cf_options[i], cf_options[i].def);
}

static void
cf_key_read(struct cf_ctx *x, const char *what, const char *path,
    uint8_t key[QT_KEY_LEN])
{
	char buf[256];
	FILE *f;

	if (!(f = fopen(path, "r"))) {
		cf_error(x, "%s \"%s\": %s", what, path, strerror(errno));
		return;
	}
	memset(buf, 0, sizeof(buf));
	if (fread(buf, 1, sizeof(buf) - 1, f) == 0 ||
	    auth_key_parse(buf, key) == -1)
		cf_error(x, "%s \"%s\": expected 64 hex digits (make one "
		    "with: head -c 32 /dev/urandom | od -An -tx1 | tr -d "
		    "' \\n')", what, path);
	fclose(f);
	explicit_bzero(buf, sizeof(buf));
}

/* Whole-config checks that no single line can make. */
static void
cf_validate(struct cf_ctx *x)
{
	struct qt_config *cf = x->cf;
	size_t i, j;

	cf->c_self = -1;
	for (i = 0; i < cf->c_nnodes; i++)
		if (!strcmp(cf->c_nodes[i].n_name, cf->c_self_name))
			cf->c_self = (int)i;
	x->line = x->opt_line[cf_opt_index("self")];
	if (!cf->c_self_name[0])
		cf_error(x, "\"self\" is missing: name this node");
	else if (cf->c_self < 0)
		cf_error(x, "self \"%s\" is not one of the nodes",
		    cf->c_self_name);
	x->line = 0;
	if (cf->c_nsvcs == 0)
		cf_error(x, "no service defined");
	for (i = 0; i < cf->c_nsvcs; i++) {
		for (j = i + 1; j < cf->c_nsvcs; j++) {
			const struct qt_service *a = &cf->c_svcs[i];
			const struct qt_service *b = &cf->c_svcs[j];

			x->line = x->svc_line[j];
			if (a->s_port == b->s_port)
				cf_error(x, "services %s and %s share port %u",
				    a->s_name, b->s_name, a->s_port);
			if (a->s_hobase < b->s_hobase + QT_MAX_NODES &&
			    b->s_hobase < a->s_hobase + QT_MAX_NODES)
				cf_error(x, "services %s and %s: hand-off port "
				    "ranges overlap (each takes %d ports)",
				    a->s_name, b->s_name, QT_MAX_NODES);
		}
		for (j = 0; j < cf->c_nsvcs; j++) {
			uint16_t p = cf->c_svcs[j].s_port;

			x->line = x->svc_line[j];
			if (p >= cf->c_svcs[i].s_hobase &&
			    p < cf->c_svcs[i].s_hobase + QT_MAX_NODES)
				cf_error(x, "service %s: port %u lies in a "
				    "hand-off port range", cf->c_svcs[j].s_name,
				    p);
		}
	}
	for (i = 0; i < cf->c_ngroups; i++) {
		x->line = x->grp_line[i];
		for (j = 0; j < (size_t)x->grp_nmembers[i]; j++) {
			int n = cf_node_by_name(cf, x->grp_members[i][j]);

			if (n < 0)
				cf_error(x, "group %s: no node \"%s\"",
				    cf->c_groups[i].g_name,
				    x->grp_members[i][j]);
			else
				cf->c_groups[i].g_ids |=
				    1ull << cf->c_nodes[n].n_id;
		}
	}
	for (i = 0; i < cf->c_nroutes; i++) {
		struct qt_route *r = &cf->c_routes[i];

		x->line = r->r_line;
		if (r->r_action == RT_NODE) {
			int n = cf_node_by_name(cf, x->rt_target[i]);

			if (n < 0)
				cf_error(x, "route: no node \"%s\"",
				    x->rt_target[i]);
			else
				r->r_arg = cf->c_nodes[n].n_id;
		} else if (r->r_action == RT_GROUP) {
			for (j = 0; j < cf->c_ngroups; j++)
				if (!strcmp(cf->c_groups[j].g_name,
				    x->rt_target[i]))
					break;
			if (j == cf->c_ngroups)
				cf_error(x, "route: no group \"%s\"",
				    x->rt_target[i]);
			else
				r->r_arg = (uint32_t)j;
		}
	}
	x->line = x->opt_line[cf_opt_index("bounded-load")];
	if (cf->c_bounded_load != 0 && cf->c_bounded_load < 100)
		cf_error(x, "bounded-load %u: a node may take at least the "
		    "average (100) or the mode is off (0)", cf->c_bounded_load);
	x->line = x->opt_line[cf_opt_index("dead-after")];
	if (cf->c_dead_after < 2 * cf->c_hb_interval)
		cf_error(x, "dead-after %u must be at least twice "
		    "heartbeat-interval (%u)", cf->c_dead_after,
		    cf->c_hb_interval);
	x->line = x->opt_line[cf_opt_index("key-file")];
	if (!cf->c_key_file[0]) {
		cf_error(x, "key-file is missing");
		return;
	}
	cf_key_read(x, "key-file", cf->c_key_file, cf->c_key);
	if (cf->c_key2_file[0]) {
		x->line = x->opt_line[cf_opt_index("accept-key-file")];
		cf_key_read(x, "accept-key-file", cf->c_key2_file, cf->c_key2);
		cf->c_have_key2 = 1;
	}
}

int
config_load(const char *path, struct qt_config *cf)
{
	return config_load_errors(path, cf, NULL, 0);
}

int
config_load_errors(const char *path, struct qt_config *cf, char *errbuf,
    size_t errlen)
{
	struct cf_ctx x = { .file = path, .cf = cf, .errbuf = errbuf,
	    .errlen = errlen };
	char line[1024], *av[CF_MAXARGS], *buf = NULL;
	size_t i, cap = 0;
	ssize_t len;
	FILE *f;
	int ac;

	memset(cf, 0, sizeof(*cf));
	snprintf(cf->c_path, sizeof(cf->c_path), "%s", path);
	cf_defaults(&x);
	if (errbuf && errlen)
		errbuf[0] = '\0';
	if (!(f = fopen(path, "r"))) {
		cf_error(&x, "%s", strerror(errno));
		return x.errors;
	}
	while ((len = getline(&buf, &cap, f)) != -1) {
		x.line++;
		/* A NUL would end the line early for every string function:
		 * name it rather than misread what follows. */
		if (memchr(buf, '\0', (size_t)len)) {
			cf_error(&x, "NUL byte in the line");
			continue;
		}
		if ((size_t)len >= sizeof(line)) {
			cf_error(&x, "line too long (at most %zu bytes)",
			    sizeof(line) - 1);
			continue;
		}
		memcpy(line, buf, (size_t)len + 1);
		if ((ac = split(line, av, CF_MAXARGS)) == -1) {
			cf_error(&x, "too many words");
			continue;
		}
		if (ac == 0)
			continue;
		if (!strcmp(av[0], "node")) {
			cf_node(&x, av, ac);
			continue;
		}
		if (!strcmp(av[0], "service")) {
			cf_service(&x, av, ac);
			continue;
		}
		if (!strcmp(av[0], "group")) {
			cf_group(&x, av, ac);
			continue;
		}
		if (!strcmp(av[0], "route")) {
			cf_route(&x, av, ac);
			continue;
		}
		for (i = 0; i < sizeof(cf_options) / sizeof(cf_options[0]); i++)
			if (!strcmp(av[0], cf_options[i].name))
				break;
		if (i == sizeof(cf_options) / sizeof(cf_options[0])) {
			cf_error(&x, "unknown keyword \"%s\"", av[0]);
			continue;
		}
		if (ac != 2) {
			cf_error(&x, "%s: expected exactly one value", av[0]);
			continue;
		}
		x.opt_line[i] = x.line;
		(void)cf_set(&x, &cf_options[i], av[1]);
	}
	free(buf);
	fclose(f);
	cf_validate(&x);
	return x.errors;
}

const struct qt_node *
config_self(const struct qt_config *cf)
{
	return &cf->c_nodes[cf->c_self];
}

int
config_node_by_id(const struct qt_config *cf, uint32_t id)
{
	size_t i;

	for (i = 0; i < cf->c_nnodes; i++)
		if (cf->c_nodes[i].n_id == id)
			return (int)i;
	return -1;
}

int
config_node_by_addr(const struct qt_config *cf, uint32_t addr)
{
	size_t i;

	for (i = 0; i < cf->c_nnodes; i++)
		if (cf->c_nodes[i].n_addr == addr)
			return (int)i;
	return -1;
}

uint16_t
config_hoport(const struct qt_config *cf, size_t svc, uint32_t origin)
{
	return (uint16_t)(cf->c_svcs[svc].s_hobase + origin);
}

int
config_hoport_owner(const struct qt_config *cf, uint16_t port, size_t *svc,
    int *origin)
{
	size_t i;

	for (i = 0; i < cf->c_nsvcs; i++) {
		uint16_t b = cf->c_svcs[i].s_hobase;

		if (port > b && port < b + QT_MAX_NODES) {
			int n = config_node_by_id(cf, port - b);

			if (n < 0)
				return -1;
			*svc = i;
			*origin = n;
			return 0;
		}
	}
	return -1;
}

/* The name of a CF_WORD option's value, for showing the config. */
const char *
config_word(const char *option, int value)
{
	const char *const *words = cf_words(option);
	int k;

	for (k = 0; words && words[k] && k != value; k++)
		continue;
	return words && words[k] ? words[k] : "?";
}
