/*
 * Conntrack over ctnetlink: exact-tuple deletes, filtered dumps, and the
 * creation of a steered flow's entry with its DNAT binding.
 *
 * The socket is libmnl's; libnetfilter_conntrack only builds and parses
 * the messages (nfct_nlmsg_build/parse).  Its own I/O path goes through
 * libnfnetlink, which can print to stderr and hides the kernel's errno
 * behind its sequence tracking; with libmnl an error ack is errno directly
 * (ENOENT for "no such entry").
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack_tcp.h>

#include "nf.h"

/* Large enough that the kernel packs a dump into few datagrams. */
#define QCT_BUFSIZE	32768
/* Acks read by one recvmmsg, each in its own slot of qc_buf: an error
 * ack carries the request it answers, ours at most a few hundred bytes. */
#define QCT_ACK_SLOTS	8
#define QCT_ACK_SLOT	(QCT_BUFSIZE / QCT_ACK_SLOTS)
/* A request holds at most one tuple: a few hundred bytes. */
#define QCT_REQSIZE	2048

struct qct_entry {
	uint32_t	ce_src, ce_dst, ce_rsrc;
	uint16_t	ce_sport, ce_dport, ce_rsport;
};

struct qct {
	struct mnl_socket	*qc_nl;
	unsigned int		 qc_portid;
	unsigned int		 qc_seq;
	int			 qc_dirty;	/* replies may be left unread */
	struct nf_conntrack	*qc_ct;		/* reused for every delete */
	struct nf_conntrack	*qc_new;	/* reused for every create */
	char			*qc_buf;

	/* Dump state, live only inside qct_list(). */
	uint32_t		 qc_want_dst;
	uint16_t		 qc_want_dport;
	struct qct_entry	*qc_items;
	size_t			 qc_nitems, qc_itemcap;
	int			 qc_cerrno;
};

struct qct *
qct_open(void)
{
	struct qct *qc;
	int e, one = 1;

	if ((qc = calloc(1, sizeof(*qc))) == NULL)
		return NULL;
	if ((qc->qc_buf = malloc(QCT_BUFSIZE)) == NULL ||
	    (qc->qc_ct = nfct_new()) == NULL ||
	    (qc->qc_new = nfct_new()) == NULL) {
		e = ENOMEM;
		goto fail;
	}
	if ((qc->qc_nl = mnl_socket_open(NETLINK_NETFILTER)) == NULL ||
	    mnl_socket_bind(qc->qc_nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		e = errno;
		goto fail;
	}
	/* Error acks need not echo our request back; best effort. */
	(void)mnl_socket_setsockopt(qc->qc_nl, NETLINK_CAP_ACK, &one,
	    sizeof(one));
	qc->qc_portid = mnl_socket_get_portid(qc->qc_nl);
	qc->qc_seq = (unsigned int)time(NULL);
	return qc;

fail:
	qct_close(qc);
	errno = e;
	return NULL;
}

void
qct_close(struct qct *qc)
{
	if (qc == NULL)
		return;
	if (qc->qc_nl != NULL)
		(void)mnl_socket_close(qc->qc_nl);
	if (qc->qc_ct != NULL)
		nfct_destroy(qc->qc_ct);
	if (qc->qc_new != NULL)
		nfct_destroy(qc->qc_new);
	free(qc->qc_buf);
	free(qc->qc_items);
	free(qc);
}

/*
 * Reads and drops whatever an aborted request left queued (the rest of a
 * dump, a late ack), so the next reply is matched against its own request
 * and not rejected for a stale sequence number.
 */
static void
qct_drain(struct qct *qc)
{
	ssize_t n;

	for (;;) {
		n = recv(mnl_socket_get_fd(qc->qc_nl), qc->qc_buf,
		    QCT_BUFSIZE, MSG_DONTWAIT);
		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		break;
	}
	qc->qc_dirty = 0;
}

static struct nlmsghdr *
qct_header(struct qct *qc, char *buf, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = ++qc->qc_seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_INET;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	return nlh;
}

/*
 * Sends nlh and runs cb over the replies until the ack or the end of the
 * dump.  0, or -1 with errno (the kernel's, for an error ack).
 */
static int
qct_talk(struct qct *qc, struct nlmsghdr *nlh, mnl_cb_t cb)
{
	unsigned int seq = nlh->nlmsg_seq;
	ssize_t n;
	int ret = MNL_CB_OK;

	if (qc->qc_dirty)
		qct_drain(qc);
	if (mnl_socket_sendto(qc->qc_nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	qc->qc_dirty = 1;
	do {
		n = mnl_socket_recvfrom(qc->qc_nl, qc->qc_buf, QCT_BUFSIZE);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		ret = mnl_cb_run(qc->qc_buf, (size_t)n, seq, qc->qc_portid,
		    cb, qc);
	} while (ret > MNL_CB_STOP);
	/*
	 * An error ack ends a plain request as surely as a good one; only a
	 * dump cut short or a reply we could not match leaves data queued.
	 */
	if (ret == 0 || (!(nlh->nlmsg_flags & NLM_F_DUMP) &&
	    errno != EPROTO && errno != ESRCH))
		qc->qc_dirty = 0;
	return ret < 0 ? -1 : 0;
}

/* True if the built request carries a top-level attribute of this type. */
static int
qct_has_attr(const struct nlmsghdr *nlh, uint16_t type)
{
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
		if (mnl_attr_get_type(a) == type)
			return 1;
	return 0;
}

/*
 * Builds in buf (room bytes) the delete of one exact TCP tuple.  A delete
 * without its tuple is a flush of the whole table: a build that silently
 * left it out, or outgrew its room, never goes to the kernel (NULL, errno
 * EINVAL).
 */
static struct nlmsghdr *
qct_build_delete(struct qct *qc, char *buf, size_t room, uint32_t src,
    uint16_t sport, uint32_t dst, uint16_t dport)
{
	struct nlmsghdr *nlh;

	nfct_set_attr_u8(qc->qc_ct, ATTR_ORIG_L3PROTO, AF_INET);
	nfct_set_attr_u32(qc->qc_ct, ATTR_ORIG_IPV4_SRC, src);
	nfct_set_attr_u32(qc->qc_ct, ATTR_ORIG_IPV4_DST, dst);
	nfct_set_attr_u8(qc->qc_ct, ATTR_ORIG_L4PROTO, IPPROTO_TCP);
	nfct_set_attr_u16(qc->qc_ct, ATTR_ORIG_PORT_SRC, htons(sport));
	nfct_set_attr_u16(qc->qc_ct, ATTR_ORIG_PORT_DST, htons(dport));
	nlh = qct_header(qc, buf, IPCTNL_MSG_CT_DELETE, NLM_F_ACK);
	if (nfct_nlmsg_build(nlh, qc->qc_ct) < 0 ||
	    !qct_has_attr(nlh, CTA_TUPLE_ORIG) ||
	    NLMSG_ALIGN(nlh->nlmsg_len) > room) {
		qc->qc_seq--;	/* the sequence number goes unused */
		errno = EINVAL;
		return NULL;
	}
	return nlh;
}

int
qct_delete(struct qct *qc, uint32_t src, uint16_t sport, uint32_t dst,
    uint16_t dport)
{
	char buf[QCT_REQSIZE] __attribute__((aligned));
	struct nlmsghdr *nlh;

	if (!(nlh = qct_build_delete(qc, buf, sizeof(buf), src, sport, dst,
	    dport)))
		return -1;
	if (qct_talk(qc, nlh, NULL) < 0)
		return errno == ENOENT ? 0 : -1;
	return 0;
}

/* Requests per datagram of qct_delete_many(): a delete is ~100 bytes. */
#define QCT_BATCH	64

/* The acks of a batch sent with sequence numbers first..last: all queued
 * by the time the send returned (the kernel handles the messages in the
 * sender's context), so read without waiting.  -1 with the first error
 * but ENOENT; errs, if given, gets each message's (0, or the error), as
 * far as its ack was read.  Fewer acks than want leaves the socket dirty:
 * the rest may come later. */
static int
qct_batch_acks(struct qct *qc, unsigned first, unsigned last, size_t want,
    int *errs)
{
	struct mmsghdr mm[QCT_ACK_SLOTS];
	struct iovec iov[QCT_ACK_SLOTS];
	const struct nlmsghdr *nlh;
	const struct nlmsgerr *err;
	size_t got = 0, k;
	int first_err = 0, len, n, i;

	/* Each ack is a datagram of its own: one recvmmsg takes those of a
	 * batch together (the hand-off's two, one system call fewer). */
	while (got < want) {
		k = want - got < QCT_ACK_SLOTS ? want - got : QCT_ACK_SLOTS;
		memset(mm, 0, sizeof(mm[0]) * k);
		for (i = 0; i < (int)k; i++) {
			iov[i].iov_base = qc->qc_buf + (size_t)i * QCT_ACK_SLOT;
			iov[i].iov_len = QCT_ACK_SLOT;
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(mnl_socket_get_fd(qc->qc_nl), mm, (unsigned)k,
		    MSG_DONTWAIT, NULL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (i = 0; i < n; i++) {
			len = (int)mm[i].msg_len;
			for (nlh = iov[i].iov_base; mnl_nlmsg_ok(nlh, len);
			    nlh = mnl_nlmsg_next(nlh, &len)) {
				if (nlh->nlmsg_type != NLMSG_ERROR ||
				    nlh->nlmsg_seq - first > last - first ||
				    (nlh->nlmsg_pid &&
				    nlh->nlmsg_pid != qc->qc_portid))
					continue;
				got++;
				err = mnl_nlmsg_get_payload(nlh);
				if (errs != NULL)
					errs[nlh->nlmsg_seq - first] =
					    -err->error;
				if (err->error && -err->error != ENOENT &&
				    !first_err)
					first_err = -err->error;
			}
		}
	}
	if (got < want)
		qc->qc_dirty = 1;
	if (first_err) {
		errno = first_err;
		return -1;
	}
	return 0;
}

int
qct_delete_many(struct qct *qc, const struct qct_tuple *t, size_t n)
{
	char buf[QCT_BATCH * 256] __attribute__((aligned));
	struct nlmsghdr *nlh;
	unsigned first;
	size_t i = 0, off, k;
	int rc = 0, e = 0;

	if (qc->qc_dirty)
		qct_drain(qc);
	while (i < n) {
		first = qc->qc_seq + 1;
		for (off = 0, k = 0; i < n && k < QCT_BATCH &&
		    off + 256 <= sizeof(buf); i++) {
			if (!(nlh = qct_build_delete(qc, buf + off, 256,
			    t[i].t_src, t[i].t_sport, t[i].t_dst,
			    t[i].t_dport))) {
				if (!e)
					e = EINVAL;
				continue;
			}
			off += NLMSG_ALIGN(nlh->nlmsg_len);
			k++;
		}
		if (k == 0)
			continue;
		if (mnl_socket_sendto(qc->qc_nl, buf, off) < 0) {
			if (!e)
				e = errno;
			continue;
		}
		if (qct_batch_acks(qc, first, qc->qc_seq, k, NULL) == -1 && !e)
			e = errno;
	}
	if (e) {
		errno = e;
		rc = -1;
	}
	return rc;
}

/*
 * Makes now the entry that conntrack would make from the client's next
 * packet (loose pickup, nf_conntrack_tcp_loose) run through the static
 * DNAT rule, so that steering no longer depends on that packet: a FIN or
 * an RST is never picked up (invalid without an entry), and in a full
 * table the pickup fails silently where this call fails with ENOMEM.
 *
 * - Reply tuple un-NATed, front:fport -> client:cport.  The kernel's NAT
 *   setup inverts the reply tuple to learn what the packets look like
 *   before NAT, then rewrites it to back:bport -> client:cport.  Given
 *   already NATed, the kernel sees nothing to rewrite and silently makes
 *   an entry without a binding, which would deliver the client's packets
 *   to our own stack.
 * - ESTABLISHED, and SACK_PERM | BE_LIBERAL in both directions, which is
 *   what a pickup sets (tcp_new()): we know nothing of the windows, so
 *   they must not be checked.  ctnetlink cannot set window data; the first
 *   packet fills them in.  One visible difference from a pickup follows:
 *   that packet counts as in window, so the original direction also gets
 *   MAXACK_SET.  It only ever serves to check RSTs of the reply
 *   direction, which never passes through us.
 * - No status: the kernel sets CONFIRMED and the NAT bits itself.  Not
 *   ASSURED either: a pickup that never sees a reply (ours never does:
 *   the back answers the client directly) never is.
 * - NLM_F_EXCL: without it an existing entry is updated instead, and the
 *   kernel refuses to put a binding on an existing entry.
 * - The timeout holds until the first packet; from then on conntrack's
 *   per-state TCP timeouts apply, as for a picked-up entry.
 */
static struct nlmsghdr *
qct_build_create(struct qct *qc, char *buf, uint32_t csrc, uint16_t csport,
    uint32_t fdst, uint16_t fdport, uint32_t bdst, uint16_t bdport,
    uint32_t timeout_s)
{
	struct nf_conntrack *ct = qc->qc_new;
	struct nlmsghdr *nlh;
	uint8_t tflags = IP_CT_TCP_FLAG_SACK_PERM | IP_CT_TCP_FLAG_BE_LIBERAL;

	/* A zero timeout makes an entry that is gone at once. */
	if (timeout_s == 0) {
		errno = EINVAL;
		return NULL;
	}
	/* Every call sets the same attributes: none is left from the last. */
	nfct_set_attr_u8(ct, ATTR_ORIG_L3PROTO, AF_INET);
	nfct_set_attr_u32(ct, ATTR_ORIG_IPV4_SRC, csrc);
	nfct_set_attr_u32(ct, ATTR_ORIG_IPV4_DST, fdst);
	nfct_set_attr_u8(ct, ATTR_ORIG_L4PROTO, IPPROTO_TCP);
	nfct_set_attr_u16(ct, ATTR_ORIG_PORT_SRC, htons(csport));
	nfct_set_attr_u16(ct, ATTR_ORIG_PORT_DST, htons(fdport));
	nfct_set_attr_u8(ct, ATTR_REPL_L3PROTO, AF_INET);
	nfct_set_attr_u32(ct, ATTR_REPL_IPV4_SRC, fdst);
	nfct_set_attr_u32(ct, ATTR_REPL_IPV4_DST, csrc);
	nfct_set_attr_u8(ct, ATTR_REPL_L4PROTO, IPPROTO_TCP);
	nfct_set_attr_u16(ct, ATTR_REPL_PORT_SRC, htons(fdport));
	nfct_set_attr_u16(ct, ATTR_REPL_PORT_DST, htons(csport));
	/* Both, or the library sends the address alone (CTA_NAT_DST
	 * without CTA_NAT_PROTO) and the kernel keeps the port. */
	nfct_set_attr_u32(ct, ATTR_DNAT_IPV4, bdst);
	nfct_set_attr_u16(ct, ATTR_DNAT_PORT, htons(bdport));
	nfct_set_attr_u8(ct, ATTR_TCP_STATE, TCP_CONNTRACK_ESTABLISHED);
	nfct_set_attr_u8(ct, ATTR_TCP_FLAGS_ORIG, tflags);
	nfct_set_attr_u8(ct, ATTR_TCP_MASK_ORIG, tflags);
	nfct_set_attr_u8(ct, ATTR_TCP_FLAGS_REPL, tflags);
	nfct_set_attr_u8(ct, ATTR_TCP_MASK_REPL, tflags);
	nfct_set_attr_u32(ct, ATTR_TIMEOUT, timeout_s);

	nlh = qct_header(qc, buf, IPCTNL_MSG_CT_NEW,
	    NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
	if (nfct_nlmsg_build(nlh, ct) < 0)
		return NULL;
	/* An entry without its binding would steal the flow from the back
	 * for our own stack: never send a request that lost it. */
	if (!qct_has_attr(nlh, CTA_TUPLE_ORIG) ||
	    !qct_has_attr(nlh, CTA_TUPLE_REPLY) ||
	    !qct_has_attr(nlh, CTA_NAT_DST) ||
	    NLMSG_ALIGN(nlh->nlmsg_len) > QCT_REQSIZE) {
		errno = EINVAL;
		return NULL;
	}
	return nlh;
}

int
qct_create_dnat(struct qct *qc, uint32_t csrc, uint16_t csport,
    uint32_t fdst, uint16_t fdport, uint32_t bdst, uint16_t bdport,
    uint32_t timeout_s)
{
	char buf[QCT_REQSIZE] __attribute__((aligned));
	struct nlmsghdr *nlh;

	if (!(nlh = qct_build_create(qc, buf, csrc, csport, fdst, fdport, bdst,
	    bdport, timeout_s)))
		return -1;
	return qct_talk(qc, nlh, NULL);
}

/*
 * The create, and after it in the same datagram the request built by
 * build (given its sequence number): one send and one read for both, the
 * acks all queued by the time the send returns (the kernel handles the
 * messages in order, in our context, and goes on after one fails).
 */
int
qct_create_dnat_and(struct qct *qc, uint32_t csrc, uint16_t csport,
    uint32_t fdst, uint16_t fdport, uint32_t bdst, uint16_t bdport,
    uint32_t timeout_s, qct_build_cb build, void *arg, int *err2)
{
	char buf[2 * QCT_REQSIZE] __attribute__((aligned));
	struct nlmsghdr *nlh;
	unsigned int seq1;
	size_t off, len2;
	int errs[2] = { -1, -1 };

	*err2 = -1;
	if (qc->qc_dirty)
		qct_drain(qc);
	if (!(nlh = qct_build_create(qc, buf, csrc, csport, fdst, fdport, bdst,
	    bdport, timeout_s)))
		return -1;
	seq1 = nlh->nlmsg_seq;
	off = NLMSG_ALIGN(nlh->nlmsg_len);
	if ((len2 = build(buf + off, sizeof(buf) - off, ++qc->qc_seq,
	    arg)) == 0) {
		errno = EINVAL;
		return -1;
	}
	if (mnl_socket_sendto(qc->qc_nl, buf, off + len2) < 0)
		return -1;
	(void)qct_batch_acks(qc, seq1, seq1 + 1, 2, errs);
	*err2 = errs[1];
	if (errs[0] != 0) {
		errno = errs[0] == -1 ? EIO : errs[0];
		return -1;
	}
	return 0;
}

static void
qct_push(struct qct *qc, const struct qct_entry *ce)
{
	struct qct_entry *n;
	size_t ncap;

	if (qc->qc_nitems == qc->qc_itemcap) {
		ncap = qc->qc_itemcap ? qc->qc_itemcap * 2 : 64;
		if ((n = realloc(qc->qc_items, ncap * sizeof(*n))) == NULL) {
			if (qc->qc_cerrno == 0)
				qc->qc_cerrno = ENOMEM;
			return;
		}
		qc->qc_items = n;
		qc->qc_itemcap = ncap;
	}
	qc->qc_items[qc->qc_nitems++] = *ce;
}

/* One dumped entry: kept if TCP to the wanted original destination. */
static int
qct_dump_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct qct *qc = arg;
	struct nf_conntrack *ct;
	struct qct_entry ce;

	/* A fresh object: parsing sets attributes but never clears one. */
	if ((ct = nfct_new()) == NULL) {
		if (qc->qc_cerrno == 0)
			qc->qc_cerrno = ENOMEM;
		return MNL_CB_OK;
	}
	if (nfct_nlmsg_parse(nlh, ct) < 0 ||
	    !nfct_attr_is_set(ct, ATTR_ORIG_L3PROTO) ||
	    !nfct_attr_is_set(ct, ATTR_ORIG_L4PROTO) ||
	    !nfct_attr_is_set(ct, ATTR_REPL_IPV4_SRC) ||
	    !nfct_attr_is_set(ct, ATTR_REPL_PORT_SRC))
		goto out;
	if (nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO) != AF_INET ||
	    nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO) != IPPROTO_TCP ||
	    nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_DST) != qc->qc_want_dst ||
	    ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST)) !=
	    qc->qc_want_dport)
		goto out;
	ce.ce_src = nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_SRC);
	ce.ce_sport = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_SRC));
	ce.ce_dst = qc->qc_want_dst;
	ce.ce_dport = qc->qc_want_dport;
	ce.ce_rsrc = nfct_get_attr_u32(ct, ATTR_REPL_IPV4_SRC);
	ce.ce_rsport = ntohs(nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC));
	qct_push(qc, &ce);
out:
	nfct_destroy(ct);
	return MNL_CB_OK;
}

/*
 * ctnetlink has no dump filter on ports in this library's API, so the
 * whole IPv4 table is dumped (the kernel filters on family) and filtered
 * here: cost grows with the table, fine for a restart, not per flow.
 * Entries are gathered first and handed to cb after the dump, so cb may
 * call qct_delete().
 */
int
qct_list(struct qct *qc, uint32_t dst, uint16_t dport, qct_entry_cb cb,
    void *arg)
{
	char buf[QCT_REQSIZE] __attribute__((aligned));
	struct qct_entry *items;
	struct nlmsghdr *nlh;
	size_t i, n;
	int ret, e;

	qc->qc_want_dst = dst;
	qc->qc_want_dport = dport;
	qc->qc_nitems = 0;
	qc->qc_cerrno = 0;
	nlh = qct_header(qc, buf, IPCTNL_MSG_CT_GET, NLM_F_DUMP);
	ret = qct_talk(qc, nlh, qct_dump_cb);
	e = errno;
	if (ret == 0 && qc->qc_cerrno != 0) {
		ret = -1;
		e = qc->qc_cerrno;
	}
	items = qc->qc_items;
	n = qc->qc_nitems;
	qc->qc_items = NULL;
	qc->qc_nitems = qc->qc_itemcap = 0;
	if (ret == 0)
		for (i = 0; i < n; i++)
			cb(items[i].ce_src, items[i].ce_sport, items[i].ce_dst,
			    items[i].ce_dport, items[i].ce_rsrc,
			    items[i].ce_rsport, arg);
	free(items);
	if (ret < 0) {
		errno = e;
		return -1;
	}
	return 0;
}
