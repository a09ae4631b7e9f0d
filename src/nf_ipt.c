/*
 * Our chains and their static rules, through libiptc (legacy xtables).
 * This is the only file that includes libiptc's headers; nf.h is the API.
 *
 * Each rule is built here as a kernel ipt_entry, the way iptables-legacy
 * builds it: the ipt_entry, then each match (struct xt_entry_match and the
 * extension's data, each part XT_ALIGN'd), then one target laid out the
 * same way.  libiptc only resolves standard verdicts and chain jumps; the
 * kernel checks every extension's size and revision at commit time.
 */
#include <sys/file.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libiptc/libiptc.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/xt_CT.h>
#include <linux/netfilter/xt_NFLOG.h>
#include <linux/netfilter/xt_set.h>
#include <linux/netfilter/xt_socket.h>
#include <linux/netfilter/xt_tcpudp.h>

#include "nf.h"

/*
 * Extension revisions: the ones iptables-legacy 1.8.9 picks on current
 * kernels, so that our rules are byte for byte what "iptables -A" would
 * write, iptables-save prints them, and "iptables -C/-D" typed by an
 * administrator find them.  Note DNAT: the kernel accepts revision 0 too,
 * but iptables-save 1.8.9 prints it as "DNAT [unsupported revision]", which
 * iptables-restore then rejects; it writes IPv4 DNAT as revision 2 and SNAT
 * as revision 0.
 */
#define REV_TCP		0	/* struct xt_tcp */
#define REV_SOCKET	3	/* struct xt_socket_mtinfo3, flags 0 */
#define REV_SET		4	/* struct xt_set_info_match_v4 */
#define REV_CT		2	/* struct xt_ct_target_info_v1 */
#define REV_DNAT	2	/* struct nf_nat_range2 */
#define REV_SNAT	0	/* struct nf_nat_ipv4_multi_range_compat */
#define REV_NFLOG	0	/* struct xt_nflog_info */

/* Where iptables-legacy serialises its table updates; see xt_lock(). */
#define XT_LOCK_DEFAULT	"/run/xtables.lock"
#define XT_LOCK_TRIES	200	/* times XT_LOCK_WAIT_NS: two seconds */
#define XT_LOCK_WAIT_NS	10000000L

struct qt_chain {
	const char	*qc_table;
	const char	*qc_builtin;
	const char	*qc_name;
};

static const struct qt_chain qt_chains[IPT_NHOOKS] = {
	[IPT_RAW_PRE]	= { "raw",	"PREROUTING",	"QT-RAW-PRE" },
	[IPT_RAW_OUT]	= { "raw",	"OUTPUT",	"QT-RAW-OUT" },
	[IPT_NAT_PRE]	= { "nat",	"PREROUTING",	"QT-NAT-PRE" },
	[IPT_NAT_POST]	= { "nat",	"POSTROUTING",	"QT-NAT-POST" },
	[IPT_FILTER_IN]	= { "filter",	"INPUT",	"QT-IN" },
};

static const char *const qt_tables[] = { "raw", "nat", "filter" };

#define NTABLES		(sizeof(qt_tables) / sizeof(qt_tables[0]))

#define MATCH_SIZE(data) \
	(XT_ALIGN(sizeof(struct xt_entry_match)) + XT_ALIGN(sizeof(data)))
#define TARGET_SIZE(data) \
	(XT_ALIGN(sizeof(struct xt_entry_target)) + XT_ALIGN(sizeof(data)))

/*
 * Room for the largest rule we build.  The targets are summed rather than
 * maxed: a few dozen bytes wasted buy an obviously sufficient bound.
 */
#define ENTRY_MAX							\
	(sizeof(struct ipt_entry) + MATCH_SIZE(struct xt_tcp) +		\
	 MATCH_SIZE(struct xt_socket_mtinfo3) +				\
	 MATCH_SIZE(struct xt_set_info_match_v4) + TARGET_SIZE(int) +	\
	 TARGET_SIZE(struct xt_ct_target_info_v1) +			\
	 TARGET_SIZE(struct nf_nat_range2) +				\
	 TARGET_SIZE(struct nf_nat_ipv4_multi_range_compat) +		\
	 TARGET_SIZE(struct xt_nflog_info))

static char ipt_errbuf[256];

const char *
ipt_strerror(void)
{
	return ipt_errbuf[0] != '\0' ? ipt_errbuf : "no error";
}

/* Records what failed and why; returns -1 with errno = err. */
static int __attribute__((format(printf, 3, 4)))
ipt_fail(int err, const char *why, const char *fmt, ...)
{
	va_list ap;
	size_t len;

	va_start(ap, fmt);
	(void)vsnprintf(ipt_errbuf, sizeof(ipt_errbuf), fmt, ap);
	va_end(ap);
	len = strlen(ipt_errbuf);
	(void)snprintf(ipt_errbuf + len, sizeof(ipt_errbuf) - len, ": %s",
	    why != NULL ? why : strerror(err));
	errno = err;
	return -1;
}

/*
 * For a libiptc call that just failed: iptc_strerror() knows which libiptc
 * function ran last and explains errno in its terms ("Chain is not empty"),
 * so it must be asked before anything else touches libiptc.
 */
#define IPTC_FAIL(...)	ipt_fail(errno, iptc_strerror(errno), __VA_ARGS__)

/*
 * iptables-legacy flock()s this file around each read-modify-write of a
 * table.  Holding it too means an administrator's concurrent iptables
 * command and our commit cannot silently overwrite each other.  We wait a
 * little, like "iptables -w" would, but not forever: the caller runs in an
 * event loop.
 */
static int
xt_lock(void)
{
	const struct timespec wait = { 0, XT_LOCK_WAIT_NS };
	const char *path;
	int fd, i;

	path = getenv("XTABLES_LOCKFILE");
	if (path == NULL || *path == '\0')
		path = XT_LOCK_DEFAULT;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd == -1)
		return ipt_fail(errno, NULL, "xtables lock \"%s\"", path);
	for (i = 0; flock(fd, LOCK_EX | LOCK_NB) == -1; i++) {
		if ((errno != EWOULDBLOCK && errno != EINTR) ||
		    i == XT_LOCK_TRIES) {
			int err = errno;

			(void)close(fd);
			return ipt_fail(err, err == EWOULDBLOCK ?
			    "held by another process" : NULL,
			    "xtables lock \"%s\"", path);
		}
		(void)nanosleep(&wait, NULL);
	}
	return fd;
}

/* Closing the descriptor drops the flock. */
static void
xt_unlock(int fd)
{
	int err = errno;

	(void)close(fd);
	errno = err;
}

/*
 * The set match names a set by its kernel index, which only the kernel can
 * tell us.  ip_set's getsockopt interface refuses requests that do not
 * carry its protocol version, so ask for the version first.
 */
static int
set_index(const char *name, ip_set_id_t *idx)
{
	struct ip_set_req_version ver;
	struct ip_set_req_get_set req;
	socklen_t len;
	int fd, err;

	if (strlen(name) >= IPSET_MAXNAMELEN)
		return ipt_fail(ENAMETOOLONG, NULL, "set \"%s\"", name);
	fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (fd == -1)
		return ipt_fail(errno, NULL, "set \"%s\": socket", name);

	memset(&ver, 0, sizeof(ver));
	ver.op = IP_SET_OP_VERSION;
	len = sizeof(ver);
	if (getsockopt(fd, SOL_IP, SO_IP_SET, &ver, &len) == -1) {
		err = errno;
		goto fail;
	}

	memset(&req, 0, sizeof(req));
	req.op = IP_SET_OP_GET_BYNAME;
	req.version = ver.version;
	memcpy(req.set.name, name, strlen(name));
	len = sizeof(req);
	if (getsockopt(fd, SOL_IP, SO_IP_SET, &req, &len) == -1) {
		err = errno;
		goto fail;
	}
	(void)close(fd);
	if (req.set.index == IPSET_INVALID_ID)
		return ipt_fail(ENOENT, "no such set in this namespace",
		    "set \"%s\"", name);
	*idx = req.set.index;
	return 0;

fail:
	(void)close(fd);
	return ipt_fail(err, NULL, "set \"%s\": ip_set getsockopt", name);
}

/*
 * Appends a match to e, which must not have its target yet, and returns
 * the match's data area (zeroed: e comes from calloc).
 */
static void *
add_match(struct ipt_entry *e, const char *name, uint8_t rev, size_t datalen)
{
	struct xt_entry_match *m;

	m = (struct xt_entry_match *)((char *)e + e->target_offset);
	m->u.user.match_size = XT_ALIGN(sizeof(*m)) + XT_ALIGN(datalen);
	(void)snprintf(m->u.user.name, sizeof(m->u.user.name), "%s", name);
	m->u.user.revision = rev;
	e->target_offset += m->u.user.match_size;
	e->next_offset = e->target_offset;
	return m->data;
}

/*
 * Sets e's target and returns its data area.  A standard target (verdict
 * or chain name, datalen sizeof(int)) is left for libiptc to resolve.
 */
static void *
set_target(struct ipt_entry *e, const char *name, uint8_t rev, size_t datalen)
{
	struct xt_entry_target *t;

	t = (struct xt_entry_target *)((char *)e + e->target_offset);
	t->u.user.target_size = XT_ALIGN(sizeof(*t)) + XT_ALIGN(datalen);
	(void)snprintf(t->u.user.name, sizeof(t->u.user.name), "%s", name);
	t->u.user.revision = rev;
	e->next_offset = e->target_offset + t->u.user.target_size;
	return t->data;
}

static struct ipt_entry *
entry_new(void)
{
	struct ipt_entry *e;

	e = calloc(1, ENTRY_MAX);
	if (e == NULL)
		return NULL;
	e->target_offset = sizeof(*e);
	e->next_offset = sizeof(*e);
	return e;
}

/* "-j CHAIN" with no condition: the jump from a built-in chain to ours. */
static struct ipt_entry *
jump_entry(const char *chain)
{
	struct ipt_entry *e;

	if ((e = entry_new()) == NULL)
		return NULL;
	(void)set_target(e, chain, 0, sizeof(int));
	return e;
}

/* Is e an unconditional jump, as jump_entry() builds it? */
static int
is_plain_jump(const struct ipt_entry *e)
{
	static const struct ipt_ip any;

	return e->target_offset == sizeof(*e) &&
	    memcmp(&e->ip, &any, sizeof(any)) == 0;
}

static int
check_ports(size_t i, const char *what, uint16_t lo, uint16_t hi)
{
	if ((lo != 0 || hi != 0) && lo > hi)
		return ipt_fail(EINVAL, NULL, "rule %zu: %s %u:%u", i, what,
		    lo, hi);
	return 0;
}

static int
check_rule(size_t i, const struct ipt_rule *r)
{
	int hook = r->ir_hook;

	if (hook < 0 || hook >= IPT_NHOOKS)
		return ipt_fail(EINVAL, NULL, "rule %zu: hook %d", i, hook);
	if (check_ports(i, "sport", r->ir_sport_lo, r->ir_sport_hi) == -1 ||
	    check_ports(i, "dport", r->ir_dport_lo, r->ir_dport_hi) == -1)
		return -1;
	switch (r->ir_verdict) {
	case IPT_V_ACCEPT:
	case IPT_V_DROP:
	case IPT_V_RETURN:
		return 0;
	case IPT_V_NFLOG:
		if (r->ir_nflog_group == 0 || r->ir_nflog_size == 0)
			return ipt_fail(EINVAL, NULL,
			    "rule %zu: NFLOG group or size 0", i);
		return 0;
	case IPT_V_NOTRACK:
		if (hook != IPT_RAW_PRE && hook != IPT_RAW_OUT)
			return ipt_fail(EINVAL, NULL,
			    "rule %zu: NOTRACK outside the raw table", i);
		return 0;
	case IPT_V_DNAT:
	case IPT_V_SNAT:
		if (hook != (r->ir_verdict == IPT_V_DNAT ? IPT_NAT_PRE :
		    IPT_NAT_POST))
			return ipt_fail(EINVAL, NULL, "rule %zu: %s in %s", i,
			    r->ir_verdict == IPT_V_DNAT ? "DNAT" : "SNAT",
			    qt_chains[hook].qc_name);
		if (r->ir_nat_addr == 0)
			return ipt_fail(EINVAL, NULL,
			    "rule %zu: NAT to address 0", i);
		return 0;
	}
	return ipt_fail(EINVAL, NULL, "rule %zu: verdict %d", i,
	    (int)r->ir_verdict);
}

/* A zero range means any port, as in "iptables -m tcp" without --*port. */
static void
port_range(uint16_t pts[2], uint16_t lo, uint16_t hi)
{
	if (lo == 0 && hi == 0)
		hi = UINT16_MAX;
	pts[0] = lo;
	pts[1] = hi;
}

/* Builds rule i as an ipt_entry; the caller frees it. */
static struct ipt_entry *
rule_entry(size_t i, const struct ipt_rule *r)
{
	struct ipt_entry *e;
	struct xt_tcp *tcp;
	struct xt_set_info_match_v4 *set;
	struct xt_ct_target_info_v1 *ct;
	struct nf_nat_range2 *dnat;
	struct nf_nat_ipv4_multi_range_compat *snat;
	struct xt_nflog_info *nflog;
	ip_set_id_t idx = 0;

	if (check_rule(i, r) == -1)
		return NULL;
	/* Before allocating: a missing set is the likeliest failure. */
	if (r->ir_set != NULL && set_index(r->ir_set, &idx) == -1)
		return NULL;
	if ((e = entry_new()) == NULL) {
		(void)ipt_fail(errno, NULL, "rule %zu", i);
		return NULL;
	}

	e->ip.proto = IPPROTO_TCP;
	if (r->ir_src != 0) {
		e->ip.src.s_addr = r->ir_src;
		e->ip.smsk.s_addr = INADDR_BROADCAST;
	}
	if (r->ir_dst != 0) {
		e->ip.dst.s_addr = r->ir_dst;
		e->ip.dmsk.s_addr = INADDR_BROADCAST;
	}

	/* Always present, as iptables adds it for "-p tcp --dport". */
	tcp = add_match(e, "tcp", REV_TCP, sizeof(*tcp));
	port_range(tcp->spts, r->ir_sport_lo, r->ir_sport_hi);
	port_range(tcp->dpts, r->ir_dport_lo, r->ir_dport_hi);
	tcp->option = r->ir_tcp_option;
	tcp->flg_mask = r->ir_tcp_flg_mask;
	tcp->flg_cmp = r->ir_tcp_flg_cmp;

	/* Flags 0: any local socket, transparent or not; nowildcard: not a
	 * listener, only a connection's own socket. */
	if (r->ir_socket) {
		struct xt_socket_mtinfo3 *so;

		so = add_match(e, "socket", REV_SOCKET, sizeof(*so));
		if (r->ir_socket == 2)
			so->flags = XT_SOCKET_NOWILDCARD;
	}

	if (r->ir_set != NULL) {
		set = add_match(e, "set", REV_SET, sizeof(*set));
		set->match_set.index = idx;
		/* src,src,dst: a clear bit means dst for that dimension. */
		set->match_set.dim = IPSET_DIM_THREE;
		set->match_set.flags = IPSET_DIM_ONE_SRC | IPSET_DIM_TWO_SRC;
	}

	switch (r->ir_verdict) {
	case IPT_V_ACCEPT:
		(void)set_target(e, IPTC_LABEL_ACCEPT, 0, sizeof(int));
		break;
	case IPT_V_DROP:
		(void)set_target(e, IPTC_LABEL_DROP, 0, sizeof(int));
		break;
	case IPT_V_RETURN:
		(void)set_target(e, IPTC_LABEL_RETURN, 0, sizeof(int));
		break;
	case IPT_V_NOTRACK:
		ct = set_target(e, "CT", REV_CT, sizeof(*ct));
		ct->flags = XT_CT_NOTRACK;
		break;
	case IPT_V_NFLOG:
		nflog = set_target(e, "NFLOG", REV_NFLOG, sizeof(*nflog));
		nflog->group = r->ir_nflog_group;
		nflog->threshold = r->ir_nflog_threshold;
		nflog->len = r->ir_nflog_size;
		nflog->flags = XT_NFLOG_F_COPY_LEN;
		break;
	case IPT_V_DNAT:
		dnat = set_target(e, "DNAT", REV_DNAT, sizeof(*dnat));
		dnat->flags = NF_NAT_RANGE_MAP_IPS;
		dnat->min_addr.ip = r->ir_nat_addr;
		dnat->max_addr.ip = r->ir_nat_addr;
		if (r->ir_nat_port != 0) {
			dnat->flags |= NF_NAT_RANGE_PROTO_SPECIFIED;
			dnat->min_proto.tcp.port = htons(r->ir_nat_port);
			dnat->max_proto.tcp.port = htons(r->ir_nat_port);
		}
		break;
	case IPT_V_SNAT:
		snat = set_target(e, "SNAT", REV_SNAT, sizeof(*snat));
		snat->rangesize = 1;
		snat->range[0].flags = NF_NAT_RANGE_MAP_IPS;
		snat->range[0].min_ip = r->ir_nat_addr;
		snat->range[0].max_ip = r->ir_nat_addr;
		if (r->ir_nat_port != 0) {
			snat->range[0].flags |= NF_NAT_RANGE_PROTO_SPECIFIED;
			snat->range[0].min.tcp.port = htons(r->ir_nat_port);
			snat->range[0].max.tcp.port = htons(r->ir_nat_port);
		}
		break;
	}
	return e;
}

/*
 * Leaves exactly one jump from the built-in chain to ours, as its first
 * rule.  Any other rule jumping to our chain (a duplicate, or our old jump
 * pushed down by someone's insert) is deleted, so repeated calls never
 * duplicate the jump and our rules always see packets first.
 */
static int
ensure_jump(struct xtc_handle *h, const struct qt_chain *qc)
{
	const struct ipt_entry *e;
	struct ipt_entry *jump;
	unsigned int i;
	int first_ok, victim;

	for (;;) {
		first_ok = 0;
		victim = -1;
		i = 0;
		for (e = iptc_first_rule(qc->qc_builtin, h); e != NULL;
		    e = iptc_next_rule(e, h), i++) {
			if (strcmp(iptc_get_target(e, h), qc->qc_name) != 0)
				continue;
			if (i == 0 && is_plain_jump(e))
				first_ok = 1;
			else
				victim = i;
		}
		if (victim == -1)
			break;
		/* Rule numbers here are 0-based. */
		if (!iptc_delete_num_entry(qc->qc_builtin, victim, h))
			return IPTC_FAIL("%s: delete jump from %s",
			    qc->qc_table, qc->qc_builtin);
	}
	if (first_ok)
		return 0;

	if ((jump = jump_entry(qc->qc_name)) == NULL)
		return ipt_fail(errno, NULL, "%s: jump", qc->qc_table);
	if (!iptc_insert_entry(qc->qc_builtin, jump, 0, h)) {
		(void)IPTC_FAIL("%s: insert jump from %s to %s", qc->qc_table,
		    qc->qc_builtin, qc->qc_name);
		free(jump);
		return -1;
	}
	free(jump);
	return 0;
}

/* The end of a table's changes: committed unless they failed, the handle
 * freed either way; -1 with the failure's errno. */
static int
table_done(struct xtc_handle *h, const char *table, int failed)
{
	int err;

	if (!failed && !iptc_commit(h)) {
		(void)IPTC_FAIL("%s: commit", table);
		failed = 1;
	}
	err = errno;
	iptc_free(h);
	if (failed) {
		errno = err;
		return -1;
	}
	return 0;
}

static int
apply_table(const char *table, const struct ipt_rule *rules,
    struct ipt_entry *const *ents, size_t nrules)
{
	struct xtc_handle *h;
	const struct qt_chain *qc;
	size_t i;
	int hook;

	if ((h = iptc_init(table)) == NULL)
		return IPTC_FAIL("%s: init", table);
	for (hook = 0; hook < IPT_NHOOKS; hook++) {
		qc = &qt_chains[hook];
		if (strcmp(qc->qc_table, table) != 0)
			continue;
		if (iptc_is_chain(qc->qc_name, h)) {
			if (!iptc_flush_entries(qc->qc_name, h)) {
				(void)IPTC_FAIL("%s: flush %s", table,
				    qc->qc_name);
				goto fail;
			}
		} else if (!iptc_create_chain(qc->qc_name, h)) {
			(void)IPTC_FAIL("%s: create %s", table, qc->qc_name);
			goto fail;
		}
		if (ensure_jump(h, qc) == -1)
			goto fail;
		for (i = 0; i < nrules; i++) {
			if ((int)rules[i].ir_hook != hook)
				continue;
			if (!iptc_append_entry(qc->qc_name, ents[i], h)) {
				(void)IPTC_FAIL("%s: rule %zu", table, i);
				goto fail;
			}
		}
	}
	/* The kernel checks every match and target here. */
	return table_done(h, table, 0);

fail:
	return table_done(h, table, 1);
}

/*
 * Every rule is built (and every set looked up) before any table is
 * touched, so a bad rule or a missing set changes nothing.  A commit can
 * still fail after an earlier table's succeeded; calling again converges.
 */
int
ipt_apply(const struct ipt_rule *rules, size_t nrules)
{
	struct ipt_entry **ents;
	size_t i, t;
	int lock, err, ret = -1;

	if (nrules > 0 && rules == NULL)
		return ipt_fail(EINVAL, NULL, "no rules");
	ents = calloc(nrules > 0 ? nrules : 1, sizeof(*ents));
	if (ents == NULL)
		return ipt_fail(errno, NULL, "ipt_apply");
	for (i = 0; i < nrules; i++)
		if ((ents[i] = rule_entry(i, &rules[i])) == NULL)
			goto out;

	if ((lock = xt_lock()) == -1)
		goto out;
	for (t = 0; t < NTABLES; t++)
		if (apply_table(qt_tables[t], rules, ents, nrules) == -1)
			break;
	xt_unlock(lock);
	if (t == NTABLES)
		ret = 0;

out:
	err = errno;
	for (i = 0; i < nrules; i++)
		free(ents[i]);
	free(ents);
	errno = err;
	return ret;
}

/* Deletes every rule of the built-in chain that jumps to ours. */
static int
delete_jumps(struct xtc_handle *h, const struct qt_chain *qc)
{
	const struct ipt_entry *e;
	unsigned int i;
	int victim;

	do {
		victim = -1;
		i = 0;
		for (e = iptc_first_rule(qc->qc_builtin, h); e != NULL;
		    e = iptc_next_rule(e, h), i++)
			if (strcmp(iptc_get_target(e, h), qc->qc_name) == 0)
				victim = i;
		if (victim != -1 &&
		    !iptc_delete_num_entry(qc->qc_builtin, victim, h))
			return IPTC_FAIL("%s: delete jump from %s",
			    qc->qc_table, qc->qc_builtin);
	} while (victim != -1);
	return 0;
}

static int
remove_table(const char *table)
{
	struct xtc_handle *h;
	const struct qt_chain *qc;
	int hook;

	/* A table the kernel does not have holds none of our chains. */
	if ((h = iptc_init(table)) == NULL)
		return errno == ENOENT ? 0 : IPTC_FAIL("%s: init", table);
	for (hook = 0; hook < IPT_NHOOKS; hook++) {
		qc = &qt_chains[hook];
		if (strcmp(qc->qc_table, table) != 0 ||
		    !iptc_is_chain(qc->qc_name, h))
			continue;
		if (delete_jumps(h, qc) == -1)
			goto fail;
		if (!iptc_flush_entries(qc->qc_name, h) ||
		    !iptc_delete_chain(qc->qc_name, h)) {
			(void)IPTC_FAIL("%s: delete %s", table, qc->qc_name);
			goto fail;
		}
	}
	/* libiptc skips the commit when nothing changed. */
	return table_done(h, table, 0);

fail:
	return table_done(h, table, 1);
}

/* Goes on after a failing table so that as much as possible is removed. */
int
ipt_remove(void)
{
	size_t t;
	int lock, ret = 0, err = 0;

	if ((lock = xt_lock()) == -1)
		return -1;
	for (t = 0; t < NTABLES; t++) {
		if (remove_table(qt_tables[t]) == -1) {
			ret = -1;
			err = errno;	/* the one ipt_strerror() describes */
		}
	}
	xt_unlock(lock);
	if (ret == -1)
		errno = err;
	return ret;
}
