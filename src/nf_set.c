/*
 * libipset wrapper: per-flow steering sets of type hash:ip,port,ip.
 *
 * One long-lived ipset session per struct qset.  The set type is resolved
 * once at qset_open(), and each set name is checked against the kernel once
 * (its type must be ours), so an add or a delete is one netlink round trip:
 * fill the session's data blob, ipset_cmd(), done.
 *
 * libipset reports errors as text only, never as an errno; qset_errno()
 * maps the messages this code can meet back to errno values.  The session
 * never prints: output (list/save) goes to qset_outfn(), which parses it,
 * and error text stays in the session's report buffer.
 *
 * Deletes may instead be queued (qset_del_queue) and sent together by
 * qset_commit(): libipset's restore mode gathers consecutive deletes from
 * one set into one message, an element per "line", so a batch of flows
 * ending together costs one round trip, not one each.  Any other command
 * sends what is queued first, so the kernel sees every command in the
 * order it was given.
 *
 * libipset keeps its set-type list and set cache in process globals and
 * uses a static jmp_buf while listing: one struct qset per process, used
 * from one thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libipset/ipset.h>
#include <libipset/data.h>
#include <libipset/linux_ip_set_hash.h>
#include <libipset/session.h>
#include <libipset/types.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>

#include "nf.h"

#define QSET_TYPENAME	"hash:ip,port,ip"
#define QSET_NKNOWN	64	/* set names whose type we have checked */

enum qset_collect {
	QS_COLLECT_NONE,	/* discard output */
	QS_COLLECT_ENTRIES,	/* "add NAME ELEM" lines of one set */
	QS_COLLECT_NAMES,	/* one set name a line */
};

struct qset_entry {
	uint32_t	qe_cip;
	uint32_t	qe_dip;
	uint16_t	qe_cport;
};

struct qset {
	struct ipset_session	*qs_session;
	const struct ipset_type	*qs_type;
	/* Names checked to be hash:ip,port,ip inet sets; round-robin. */
	char			 qs_known[QSET_NKNOWN][IPSET_MAXNAMELEN];
	unsigned int		 qs_nknown;
	unsigned int		 qs_knext;
	char			 qs_err[IPSET_ERRORBUFLEN];

	/* Listing state, live only inside one list/names call. */
	enum qset_collect	 qs_collect;
	const char		*qs_want;	/* set name or name prefix */
	char			*qs_text;	/* unfinished output line */
	size_t			 qs_textlen, qs_textcap;
	void			*qs_items;
	size_t			 qs_nitems, qs_itemcap, qs_itemsize;
	int			 qs_cerrno;	/* first collection failure */

	/* Queued deletes (restore mode): how many, and what became of
	 * batches sent since the last qset_commit(). */
	uint32_t		 qs_queued;
	uint32_t		 qs_qfailed;	/* deletes in failed batches */
	char			 qs_qerr[IPSET_ERRORBUFLEN];
};

static int	qset_outfn(struct ipset_session *, void *, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

/* Error text whose errno the kernel sent but libipset turned into words. */
static const struct {
	const char	*m_prefix;
	int		 m_errno;
} qset_messages[] = {
	{ "The set with the given name does not exist", ENOENT },
	{ "Set cannot be created: set with the same name already exists",
	    EEXIST },
	{ "Set cannot be destroyed: it is in use", EBUSY },
	{ "Hash is full", ENOSPC },
	{ "Kernel error received: maximal number of sets reached", ENOSPC },
	{ "Kernel error received: set type not supported", EOPNOTSUPP },
	{ "Kernel error received: ipset protocol error", EPROTO },
	{ "Cannot open session to kernel", EIO },
};

static void
qset_seterr(struct qset *qs, const char *msg)
{
	size_t n;

	(void)snprintf(qs->qs_err, sizeof(qs->qs_err), "%s", msg);
	/* libipset ends every report with a newline; callers add their own. */
	n = strlen(qs->qs_err);
	while (n > 0 && qs->qs_err[n - 1] == '\n')
		qs->qs_err[--n] = '\0';
}

/*
 * After a failed ipset_cmd(): keep the session's message for
 * qset_strerror() and return the errno it stands for.  "Kernel error
 * received: %s" carries strerror() of the kernel's errno, so that one is
 * matched back through strerror().  saved is errno right after the call,
 * used only when the netlink socket could not be opened.
 */
static int
qset_errno(struct qset *qs, int saved)
{
	static const char kerr[] = "Kernel error received: ";
	const char *msg;
	size_t i;
	int e;

	msg = ipset_session_report_msg(qs->qs_session);
	qset_seterr(qs, msg);
	if (qs->qs_err[0] == '\0')
		qset_seterr(qs, "ipset: unknown error");
	ipset_session_report_reset(qs->qs_session);

	for (i = 0; i < sizeof(qset_messages) / sizeof(qset_messages[0]); i++)
		if (strncmp(qs->qs_err, qset_messages[i].m_prefix,
		    strlen(qset_messages[i].m_prefix)) == 0)
			return (qset_messages[i].m_errno == EIO && saved != 0) ?
			    saved : qset_messages[i].m_errno;
	if (strncmp(qs->qs_err, kerr, sizeof(kerr) - 1) == 0)
		for (e = 1; e <= EHWPOISON; e++)	/* Linux's last errno */
			if (strcmp(qs->qs_err + sizeof(kerr) - 1,
			    strerror(e)) == 0)
				return e;
	/* Not saved: libipset may have touched errno for unrelated reasons. */
	return EIO;
}

/* Fails with errno e and a message of our own. */
static int
qset_fail(struct qset *qs, int e, const char *msg)
{
	qset_seterr(qs, msg);
	errno = e;
	return -1;
}

/* Starts a command: clean data blob and report, name checked. */
static struct ipset_data *
qset_begin(struct qset *qs, const char *name)
{
	struct ipset_data *data;

	qs->qs_err[0] = '\0';
	ipset_session_report_reset(qs->qs_session);
	data = ipset_session_data(qs->qs_session);
	ipset_data_reset(data);
	if (name == NULL)
		return data;
	/* ipset_data_set() would silently truncate a long name. */
	if (name[0] == '\0' || strlen(name) >= IPSET_MAXNAMELEN) {
		(void)qset_fail(qs, EINVAL, "ipset: invalid set name");
		return NULL;
	}
	if (ipset_data_set(data, IPSET_SETNAME, name) < 0) {
		(void)qset_fail(qs, EINVAL, "ipset: invalid set name");
		return NULL;
	}
	return data;
}

/*
 * Sends the queued deletes, if any.  A failure is kept for qset_commit()
 * to report: the command that made us send them is not the one that
 * failed.  The kernel stops at the first element it cannot delete (an
 * absent one is not such: IPSET_ENV_EXIST), so all of them are counted.
 */
static void
qset_send_queued(struct qset *qs)
{
	const char *msg;

	if (qs->qs_queued == 0)
		return;
	if (ipset_commit(qs->qs_session) < 0) {
		msg = ipset_session_report_msg(qs->qs_session);
		(void)snprintf(qs->qs_qerr, sizeof(qs->qs_qerr), "%s",
		    msg[0] ? msg : "ipset: unknown error");
		qs->qs_qfailed += qs->qs_queued;
	}
	ipset_session_report_reset(qs->qs_session);
	qs->qs_queued = 0;
}

/* Runs cmd on the filled data blob; 0, or -1 with errno. */
static int
qset_run(struct qset *qs, enum ipset_cmd cmd)
{
	int ret;

	qset_send_queued(qs);
	errno = 0;
	ret = ipset_cmd(qs->qs_session, cmd, 0);
	if (ret < 0) {
		errno = qset_errno(qs, errno);
		return -1;
	}
	/* A warning is still success (e.g. "is in set" from TEST). */
	ipset_session_report_reset(qs->qs_session);
	return 0;
}

static int
qset_known(const struct qset *qs, const char *name)
{
	unsigned int i;

	for (i = 0; i < qs->qs_nknown; i++)
		if (strcmp(qs->qs_known[i], name) == 0)
			return 1;
	return 0;
}

static void
qset_remember(struct qset *qs, const char *name)
{
	if (qset_known(qs, name))
		return;
	(void)snprintf(qs->qs_known[qs->qs_knext], IPSET_MAXNAMELEN, "%s",
	    name);
	qs->qs_knext = (qs->qs_knext + 1) % QSET_NKNOWN;
	if (qs->qs_nknown < QSET_NKNOWN)
		qs->qs_nknown++;
}

static void
qset_forget(struct qset *qs, const char *name)
{
	unsigned int i;

	for (i = 0; i < qs->qs_nknown; i++)
		if (strcmp(qs->qs_known[i], name) == 0)
			qs->qs_known[i][0] = '\0';
}

/*
 * Asks the kernel for the set's header and checks that its type is ours.
 * Entries of another type would be sent attributes it ignores or rejects.
 * Returns 1 if ours, 0 if another type (errno EEXIST), -1 on error.
 */
static int
qset_check_type(struct qset *qs, const char *name)
{
	struct ipset_data *data;
	const char *tname;
	uint8_t family;
	int ours;

	if ((data = qset_begin(qs, name)) == NULL)
		return -1;
	if (qset_run(qs, IPSET_CMD_HEADER) < 0)
		return -1;
	tname = ipset_data_get(data, IPSET_OPT_TYPENAME);
	family = ipset_data_family(data);
	ours = tname != NULL && strcmp(tname, QSET_TYPENAME) == 0 &&
	    family == NFPROTO_IPV4;
	ipset_data_reset(data);		/* tname pointed into it */
	if (!ours) {
		(void)qset_fail(qs, EEXIST, "ipset: a set of that name exists "
		    "with another type or family");
		return 0;
	}
	qset_remember(qs, name);
	return 1;
}

/* 0 if name is known to be one of our sets, -1 with errno otherwise. */
static int
qset_ensure(struct qset *qs, const char *name)
{
	if (name != NULL && qset_known(qs, name))
		return 0;
	return qset_check_type(qs, name) == 1 ? 0 : -1;
}

struct qset *
qset_open(void)
{
	struct qset *qs;
	struct ipset_data *data;
	uint8_t family = NFPROTO_IPV4;
	int e;

	if ((qs = calloc(1, sizeof(*qs))) == NULL)
		return NULL;
	ipset_load_types();
	qs->qs_session = ipset_session_init(qset_outfn, qs);
	if (qs->qs_session == NULL) {
		free(qs);
		errno = ENOMEM;
		return NULL;
	}
	/*
	 * EXIST drops NLM_F_EXCL: adding a present entry, deleting an absent
	 * one and re-creating an identical set all succeed in the kernel.
	 */
	ipset_envopt_set(qs->qs_session, IPSET_ENV_EXIST);

	/* Resolve the type once; this also checks the kernel supports it. */
	data = qset_begin(qs, NULL);
	if (ipset_data_set(data, IPSET_OPT_TYPENAME, QSET_TYPENAME) < 0 ||
	    ipset_data_set(data, IPSET_OPT_FAMILY, &family) < 0) {
		e = EINVAL;
		goto fail;
	}
	errno = 0;
	qs->qs_type = ipset_type_get(qs->qs_session, IPSET_CMD_CREATE);
	if (qs->qs_type == NULL) {
		e = qset_errno(qs, errno);
		goto fail;
	}
	ipset_data_reset(data);
	return qs;

fail:
	qset_close(qs);
	errno = e;
	return NULL;
}

void
qset_close(struct qset *qs)
{
	if (qs == NULL)
		return;
	if (qs->qs_session != NULL) {
		qset_send_queued(qs);
		(void)ipset_session_fini(qs->qs_session);
	}
	free(qs->qs_text);
	free(qs->qs_items);
	free(qs);
}

const char *
qset_strerror(struct qset *qs)
{
	return qs->qs_err;
}

int
qset_create(struct qset *qs, const char *name, uint32_t maxelem)
{
	struct ipset_data *data;
	uint8_t family = NFPROTO_IPV4;
	int r;

	if ((data = qset_begin(qs, name)) == NULL)
		return -1;
	if (ipset_data_set(data, IPSET_OPT_TYPE, qs->qs_type) < 0 ||
	    ipset_data_set(data, IPSET_OPT_FAMILY, &family) < 0 ||
	    (maxelem != 0 &&
	    ipset_data_set(data, IPSET_OPT_MAXELEM, &maxelem) < 0))
		return qset_fail(qs, EINVAL, "ipset: cannot fill create data");
	if (qset_run(qs, IPSET_CMD_CREATE) == 0) {
		qset_remember(qs, name);
		return 0;
	}
	if (errno != EEXIST)
		return -1;
	/*
	 * The kernel keeps an existing set only if every create parameter
	 * matches; a set of our type left with another maxelem (an older
	 * config) is still kept and used.
	 */
	r = qset_check_type(qs, name);
	if (r == 1)
		return 0;
	if (r == 0)
		errno = EEXIST;
	return -1;
}

int
qset_destroy(struct qset *qs, const char *name)
{
	if (qset_begin(qs, name) == NULL)
		return -1;
	qset_forget(qs, name);
	if (qset_run(qs, IPSET_CMD_DESTROY) < 0)
		return errno == ENOENT ? 0 : -1;
	return 0;
}

int
qset_flush(struct qset *qs, const char *name)
{
	if (qset_begin(qs, name) == NULL)
		return -1;
	return qset_run(qs, IPSET_CMD_FLUSH);
}

/* Fills the data blob with one entry of the named set. */
static int
qset_fill(struct qset *qs, const char *name, uint32_t cip, uint16_t cport,
    uint32_t dip)
{
	struct ipset_data *data;
	uint8_t family = NFPROTO_IPV4, proto = IPPROTO_TCP;

	if ((data = qset_begin(qs, name)) == NULL)
		return -1;
	/* Family first: the address setters copy by the family's size. */
	if (ipset_data_set(data, IPSET_OPT_TYPE, qs->qs_type) < 0 ||
	    ipset_data_set(data, IPSET_OPT_FAMILY, &family) < 0 ||
	    ipset_data_set(data, IPSET_OPT_IP, &cip) < 0 ||
	    ipset_data_set(data, IPSET_OPT_PROTO, &proto) < 0 ||
	    ipset_data_set(data, IPSET_OPT_PORT, &cport) < 0 ||
	    ipset_data_set(data, IPSET_OPT_IP2, &dip) < 0)
		return qset_fail(qs, EINVAL, "ipset: cannot fill entry data");
	return 0;
}

/* The session's data made ready for a command on entry cip,cport,dip of
 * set name (checked to be ours). */
static int
qset_entry(struct qset *qs, const char *name, uint32_t cip, uint16_t cport,
    uint32_t dip)
{
	if (name == NULL)
		return qset_fail(qs, EINVAL, "ipset: no set name");
	if (qset_ensure(qs, name) < 0)
		return -1;
	return qset_fill(qs, name, cip, cport, dip);
}

static int
qset_adt(struct qset *qs, enum ipset_cmd cmd, const char *name, uint32_t cip,
    uint16_t cport, uint32_t dip)
{
	if (qset_entry(qs, name, cip, cport, dip) < 0)
		return -1;
	if (qset_run(qs, cmd) < 0) {
		/* The set may have been replaced: check its type next time. */
		qset_forget(qs, name);
		return -1;
	}
	return 0;
}

int
qset_add(struct qset *qs, const char *name, uint32_t cip, uint16_t cport,
    uint32_t dip)
{
	return qset_adt(qs, IPSET_CMD_ADD, name, cip, cport, dip);
}

int
qset_del(struct qset *qs, const char *name, uint32_t cip, uint16_t cport,
    uint32_t dip)
{
	return qset_adt(qs, IPSET_CMD_DEL, name, cip, cport, dip);
}

/*
 * The add as a message of our own, for a caller that sends it in one
 * datagram with its conntrack create (steer.c, nf_ct.c): libipset owns
 * its socket and reads each reply before it returns, so it cannot share
 * a system call.  The same request libipset makes for qset_add(): the
 * protocol version, the name, the element nested as hash:ip,port,ip
 * parses it (addresses and port in network order, and flagged so, or the
 * kernel refuses them); without NLM_F_EXCL, as IPSET_ENV_EXIST, an entry
 * already there is success.
 */
size_t
qset_add_build(char *buf, size_t room, uint32_t seq, const char *name,
    uint32_t cip, uint16_t cport, uint32_t dip)
{
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;
	struct nlattr *data, *ip;
	size_t nlen;

	nlen = name != NULL ? strlen(name) : 0;
	if (nlen == 0 || nlen >= IPSET_MAXNAMELEN || room < QSET_ADD_MSGLEN)
		return 0;
	memset(buf, 0, QSET_ADD_MSGLEN);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_IPSET << 8) | IPSET_CMD_ADD;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = NFPROTO_IPV4;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	mnl_attr_put_u8(nlh, IPSET_ATTR_PROTOCOL, IPSET_PROTOCOL);
	mnl_attr_put_strz(nlh, IPSET_ATTR_SETNAME, name);
	data = mnl_attr_nest_start(nlh, IPSET_ATTR_DATA);
	ip = mnl_attr_nest_start(nlh, IPSET_ATTR_IP);
	mnl_attr_put_u32(nlh, IPSET_ATTR_IPADDR_IPV4 | NLA_F_NET_BYTEORDER,
	    cip);
	mnl_attr_nest_end(nlh, ip);
	mnl_attr_put_u16(nlh, IPSET_ATTR_PORT | NLA_F_NET_BYTEORDER,
	    htons(cport));
	mnl_attr_put_u8(nlh, IPSET_ATTR_PROTO, IPPROTO_TCP);
	ip = mnl_attr_nest_start(nlh, IPSET_ATTR_IP2);
	mnl_attr_put_u32(nlh, IPSET_ATTR_IPADDR_IPV4 | NLA_F_NET_BYTEORDER,
	    dip);
	mnl_attr_nest_end(nlh, ip);
	mnl_attr_nest_end(nlh, data);
	return nlh->nlmsg_len;
}

/*
 * Before a qset_add_build() message goes: the set checked to be ours (a
 * round trip the first time a name is seen) and the queued deletes sent,
 * which may hold this very entry's delete from a flow that ended on the
 * same tuple: the kernel must see it before the add.
 */
int
qset_add_prepare(struct qset *qs, const char *name)
{
	/* The name's checks are qset_begin()'s, on the way to the type. */
	if (name == NULL)
		return qset_fail(qs, EINVAL, "ipset: no set name");
	if (qset_ensure(qs, name) < 0)
		return -1;
	qset_send_queued(qs);
	return 0;
}

/*
 * The kernel refused a qset_add_build() message with error (its ack's,
 * positive): the errno it stands for, with qset_strerror()'s text set as
 * libipset would have said it.  ipset's own codes start at 4096.
 */
int
qset_add_failed(struct qset *qs, const char *name, int error)
{
	char msg[IPSET_ERRORBUFLEN];
	int e;

	qset_forget(qs, name);	/* it may have been replaced */
	switch (error) {
	case IPSET_ERR_HASH_FULL:
		e = ENOSPC;
		(void)snprintf(msg, sizeof(msg), "Hash is full, cannot add "
		    "more elements to set %s", name);
		break;
	case ENOENT:
		e = ENOENT;
		(void)snprintf(msg, sizeof(msg), "The set with the given name "
		    "does not exist: %s", name);
		break;
	case IPSET_ERR_PROTOCOL:
		e = EPROTO;
		(void)snprintf(msg, sizeof(msg), "Kernel error received: "
		    "ipset protocol error");
		break;
	default:
		e = error > 0 && error < IPSET_ERR_PRIVATE ? error : EIO;
		if (e == error)
			(void)snprintf(msg, sizeof(msg), "Kernel error "
			    "received: %s", strerror(e));
		else
			(void)snprintf(msg, sizeof(msg), "Kernel error "
			    "received: ipset error %d", error);
		break;
	}
	qset_seterr(qs, msg);
	return e;
}

/*
 * Queues a delete for qset_commit(); deletes from one set queued one after
 * another share a message.  Fails only if the entry cannot be formed (or
 * the set is not ours); a failure in the kernel is qset_commit()'s to
 * report.
 */
int
qset_del_queue(struct qset *qs, const char *name, uint32_t cip,
    uint16_t cport, uint32_t dip)
{
	uint32_t line;

	if (qset_entry(qs, name, cip, cport, dip) < 0)
		return -1;
	/* A nonzero line number is restore mode: libipset appends the
	 * element to the message it is building, sending that first only
	 * if it is full or for another set (failures then kept as in
	 * qset_send_queued). */
	line = qs->qs_queued + 1;
	if (ipset_cmd(qs->qs_session, IPSET_CMD_DEL, line) < 0) {
		const char *msg = ipset_session_report_msg(qs->qs_session);

		(void)snprintf(qs->qs_qerr, sizeof(qs->qs_qerr), "%s",
		    msg[0] ? msg : "ipset: unknown error");
		qs->qs_qfailed += qs->qs_queued + 1;
		ipset_session_report_reset(qs->qs_session);
		qs->qs_queued = 0;
		return 0;
	}
	qs->qs_queued = line;
	return 0;
}

/*
 * Sends the queued deletes.  0, or -1 if some batch sent since the last
 * call failed (qset_strerror() says why, *failed how many deletes it
 * held); those entries may still be in their sets.
 */
int
qset_commit(struct qset *qs, uint32_t *failed)
{
	qset_send_queued(qs);
	*failed = qs->qs_qfailed;
	if (qs->qs_qfailed == 0)
		return 0;
	qset_seterr(qs, qs->qs_qerr);
	qs->qs_qfailed = 0;
	errno = EIO;
	return -1;
}

/*
 * TEST answers "absent" as an error whose report is a notice ("... is NOT
 * in set"); a real failure is reported as an error.  The notice needs the
 * session out of quiet mode, which is the default here.
 */
int
qset_test(struct qset *qs, const char *name, uint32_t cip, uint16_t cport,
    uint32_t dip)
{
	int ret, saved;

	if (name == NULL)
		return qset_fail(qs, EINVAL, "ipset: no set name");
	if (qset_ensure(qs, name) < 0)
		return -1;
	if (qset_fill(qs, name, cip, cport, dip) < 0)
		return -1;
	qset_send_queued(qs);
	errno = 0;
	ret = ipset_cmd(qs->qs_session, IPSET_CMD_TEST, 0);
	saved = errno;
	if (ret == 0) {
		ipset_session_report_reset(qs->qs_session);
		return 1;
	}
	if (ipset_session_report_type(qs->qs_session) == IPSET_NOTICE) {
		ipset_session_report_reset(qs->qs_session);
		return 0;
	}
	qset_forget(qs, name);
	errno = qset_errno(qs, saved);
	return -1;
}

/* Appends one item to the collection; ENOMEM is kept for the caller. */
static void
qset_push(struct qset *qs, const void *item)
{
	size_t ncap;
	void *n;

	if (qs->qs_nitems == qs->qs_itemcap) {
		ncap = qs->qs_itemcap ? qs->qs_itemcap * 2 : 64;
		if ((n = realloc(qs->qs_items, ncap * qs->qs_itemsize)) ==
		    NULL) {
			if (qs->qs_cerrno == 0)
				qs->qs_cerrno = ENOMEM;
			return;
		}
		qs->qs_items = n;
		qs->qs_itemcap = ncap;
	}
	memcpy((char *)qs->qs_items + qs->qs_nitems * qs->qs_itemsize, item,
	    qs->qs_itemsize);
	qs->qs_nitems++;
}

/* Copies one ','-terminated (or space/end-terminated) field. */
static const char *
qset_field(const char *p, char stop, char *buf, size_t len)
{
	size_t n = 0;

	while (*p != '\0' && *p != stop && *p != ' ') {
		if (n + 1 >= len)
			return NULL;
		buf[n++] = *p++;
	}
	buf[n] = '\0';
	if (stop != ' ' && *p != stop)
		return NULL;
	return stop != ' ' ? p + 1 : p;
}

/*
 * Parses the element of "add NAME 198.18.0.10,tcp:40000,198.18.0.1[ ...]"
 * as printed in save mode.  Returns 1 for a TCP entry, 0 for an entry of
 * another protocol (not ours: skipped), -1 if malformed.
 */
static int
qset_parse_elem(const char *p, struct qset_entry *qe)
{
	char ip[INET_ADDRSTRLEN], proto[16], port[8], ip2[INET_ADDRSTRLEN];
	struct in_addr a, b;
	unsigned long v;
	char *end;

	if ((p = qset_field(p, ',', ip, sizeof(ip))) == NULL ||
	    (p = qset_field(p, ':', proto, sizeof(proto))) == NULL ||
	    (p = qset_field(p, ',', port, sizeof(port))) == NULL ||
	    (p = qset_field(p, ' ', ip2, sizeof(ip2))) == NULL)
		return -1;
	if (inet_pton(AF_INET, ip, &a) != 1 || inet_pton(AF_INET, ip2, &b) != 1)
		return -1;
	/* The numeric form appears where /etc/protocols lacks the name. */
	if (strcmp(proto, "tcp") != 0 && strcmp(proto, "6") != 0)
		return 0;
	errno = 0;
	v = strtoul(port, &end, 10);
	if (port[0] == '\0' || *end != '\0' || errno != 0 || v > UINT16_MAX)
		return -1;
	qe->qe_cip = a.s_addr;
	qe->qe_cport = (uint16_t)v;
	qe->qe_dip = b.s_addr;
	return 1;
}

static void
qset_line(struct qset *qs, const char *line)
{
	char name[IPSET_MAXNAMELEN];
	struct qset_entry qe;
	size_t n;
	int r;

	switch (qs->qs_collect) {
	case QS_COLLECT_ENTRIES:
		if (strncmp(line, "add ", 4) != 0)
			return;		/* the "create ..." header */
		line += 4;
		n = strlen(qs->qs_want);
		if (strncmp(line, qs->qs_want, n) != 0 || line[n] != ' ')
			goto bad;
		r = qset_parse_elem(line + n + 1, &qe);
		if (r < 0)
			goto bad;
		if (r == 1)
			qset_push(qs, &qe);
		return;
	case QS_COLLECT_NAMES:
		if (line[0] == '\0')
			return;
		if (strncmp(line, qs->qs_want, strlen(qs->qs_want)) != 0)
			return;
		if (strlen(line) >= sizeof(name))
			goto bad;
		memset(name, 0, sizeof(name));
		memcpy(name, line, strlen(line));
		qset_push(qs, name);
		return;
	case QS_COLLECT_NONE:
		return;
	}
bad:
	if (qs->qs_cerrno == 0)
		qs->qs_cerrno = EPROTO;
}

/*
 * libipset's only output channel.  It hands over its print buffer in
 * pieces that need not end at a line end, so text is gathered until a
 * newline.  Items are only collected here; the caller's callbacks run
 * after the command, when the session may be used again.
 */
static int
qset_outfn(struct ipset_session *session, void *p, const char *fmt, ...)
{
	struct qset *qs = p;
	va_list ap;
	size_t need, ncap;
	char *nl, *line, *n;
	int len;

	(void)session;
	if (qs->qs_collect == QS_COLLECT_NONE)
		return 0;
	va_start(ap, fmt);
	len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (len < 0)
		goto nomem;
	need = qs->qs_textlen + (size_t)len + 1;
	if (need > qs->qs_textcap) {
		ncap = qs->qs_textcap ? qs->qs_textcap : 256;
		while (ncap < need)
			ncap *= 2;
		if ((n = realloc(qs->qs_text, ncap)) == NULL)
			goto nomem;
		qs->qs_text = n;
		qs->qs_textcap = ncap;
	}
	va_start(ap, fmt);
	(void)vsnprintf(qs->qs_text + qs->qs_textlen, (size_t)len + 1, fmt,
	    ap);
	va_end(ap);
	qs->qs_textlen += (size_t)len;

	line = qs->qs_text;
	while ((nl = memchr(line, '\n',
	    qs->qs_textlen - (size_t)(line - qs->qs_text))) != NULL) {
		*nl = '\0';
		qset_line(qs, line);
		line = nl + 1;
	}
	qs->qs_textlen -= (size_t)(line - qs->qs_text);
	memmove(qs->qs_text, line, qs->qs_textlen);
	return len;

nomem:
	if (qs->qs_cerrno == 0)
		qs->qs_cerrno = ENOMEM;
	return 0;
}

/* Runs a list command with collection on; items are left in qs_items. */
static int
qset_collect(struct qset *qs, enum qset_collect what, const char *want,
    size_t itemsize, enum ipset_cmd cmd)
{
	int ret, e = 0;

	qs->qs_collect = what;
	qs->qs_want = want;
	qs->qs_textlen = 0;
	qs->qs_nitems = 0;
	qs->qs_itemsize = itemsize;
	qs->qs_cerrno = 0;
	ret = qset_run(qs, cmd);
	if (ret < 0)
		e = errno;
	/* A last line without its newline still counts. */
	if (ret == 0 && qs->qs_textlen > 0) {
		if (qs->qs_textlen < qs->qs_textcap) {
			qs->qs_text[qs->qs_textlen] = '\0';
			qset_line(qs, qs->qs_text);
		}
		qs->qs_textlen = 0;
	}
	qs->qs_collect = QS_COLLECT_NONE;
	qs->qs_want = NULL;
	if (ret == 0 && qs->qs_cerrno != 0) {
		e = qs->qs_cerrno;
		ret = qset_fail(qs, e, e == ENOMEM ? "ipset: out of memory" :
		    "ipset: cannot parse the library's list output");
	}
	if (ret < 0)
		errno = e;
	return ret;
}

int
qset_list(struct qset *qs, const char *name, qset_entry_cb cb, void *arg)
{
	struct qset_entry *qe;
	size_t i, n;

	if (name == NULL)
		return qset_fail(qs, EINVAL, "ipset: no set name");
	if (qset_ensure(qs, name) < 0)
		return -1;
	if (qset_begin(qs, name) == NULL)
		return -1;
	(void)ipset_session_output(qs->qs_session, IPSET_LIST_SAVE);
	if (qset_collect(qs, QS_COLLECT_ENTRIES, name,
	    sizeof(struct qset_entry), IPSET_CMD_SAVE) < 0)
		return -1;
	/* cb may call qset functions: they reuse qs_items. */
	n = qs->qs_nitems;
	qe = qs->qs_items;
	qs->qs_items = NULL;
	qs->qs_nitems = qs->qs_itemcap = 0;
	for (i = 0; i < n; i++)
		cb(qe[i].qe_cip, qe[i].qe_cport, qe[i].qe_dip, arg);
	free(qe);
	return 0;
}

int
qset_names(struct qset *qs, const char *prefix, qset_name_cb cb, void *arg)
{
	char (*names)[IPSET_MAXNAMELEN];
	size_t i, n;
	int ret;

	if (qset_begin(qs, NULL) == NULL)
		return -1;
	(void)ipset_session_output(qs->qs_session, IPSET_LIST_PLAIN);
	ipset_envopt_set(qs->qs_session, IPSET_ENV_LIST_SETNAME);
	ret = qset_collect(qs, QS_COLLECT_NAMES, prefix ? prefix : "",
	    IPSET_MAXNAMELEN, IPSET_CMD_LIST);
	ipset_envopt_unset(qs->qs_session, IPSET_ENV_LIST_SETNAME);
	if (ret < 0)
		return -1;
	n = qs->qs_nitems;
	names = qs->qs_items;
	qs->qs_items = NULL;
	qs->qs_nitems = qs->qs_itemcap = 0;
	for (i = 0; i < n; i++)
		cb(names[i], arg);
	free(names);
	return 0;
}
