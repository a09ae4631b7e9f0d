/*
 * The netfilter state this node owns, and per-flow steering.
 *
 * Static rules, in our own chains (nf_ipt.c), derived from the config:
 *
 * As a front, for each service S and each peer P:
 *   raw PREROUTING   flows in set qt-S-P: RETURN (tracked), then every
 *                    other flow to our S port: NOTRACK.  Connections we
 *                    serve ourselves cost no conntrack work, and once a
 *                    flow leaves its set its stray packets and a new
 *                    connection on the same port reach our own stack at
 *                    once, whatever conntrack entry still lingers.
 *                    Before each RETURN, NFLOG to nflog-group (front.c's
 *                    watch): a SYN on a steered tuple (a client reusing
 *                    its port) at once, a FIN or RST of a steered flow in
 *                    batches.  The daemon wakes for nothing else: not for
 *                    the connections it serves, not for every SYN.
 *   nat PREROUTING   -d us --dport S -m set qt-S-P -> DNAT P:(S.hobase+our id)
 *   raw OUTPUT       our replies from port S: NOTRACK; replay packets
 *                    (marker option): NOTRACK, so the packets we send as
 *                    the client never collide with a steered flow's entry.
 * As a back, for each service S, on our hand-off ports S.hobase+1..+63:
 *   raw PREROUTING   marked packets (replays): DROP before TCP sees them
 *                    (the capture still gets them); the rest: NOTRACK, or
 *                    their entries would clash with the SNAT's.
 *   nat POSTROUTING  --sport S.hobase+O -> SNAT O:S for each origin O.
 *   filter INPUT     packets with a socket: ACCEPT; the rest: DROP, never
 *                    an RST, which would leave as the origin's address.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qtd.h"

void
steer_set_name(size_t svc, uint32_t peer_id, char *buf, size_t len)
{
	snprintf(buf, len, "qt-%zu-%u", svc, peer_id);
}

struct rules {
	struct ipt_rule	*r;
	size_t		 n, cap;
	char		(*names)[32];
};

static struct ipt_rule *
rule_add(struct rules *rl, enum ipt_hook hook, enum ipt_verdict v)
{
	struct ipt_rule *r;

	if (rl->n == rl->cap)
		return NULL;
	r = &rl->r[rl->n++];
	memset(r, 0, sizeof(*r));
	r->ir_hook = hook;
	r->ir_verdict = v;
	return r;
}

static size_t	rules_nsets;	/* names rules_build() filled in */

/* Of each packet logged, enough for the IP and TCP headers. */
#define NFLOG_SIZE	128
/* FINs and RSTs the kernel holds before it wakes us, unless a SYN or its
 * one-second flush comes first: the back's close report usually precedes
 * them, so they need not wake the daemon one by one. */
#define NFLOG_BATCH	64

/*
 * The watch's rules for the flows of one steering set: SYN alone at
 * once; FIN, RST batched.  (--tcp-flags cannot say "FIN or RST": two
 * rules.)
 */
static int
nflog_rules(struct rules *rl, const struct qt_config *cf, uint32_t addr,
    uint16_t port, const char *set)
{
	static const struct {
		uint8_t		mask, cmp;
		uint16_t	threshold;
	} w[] = {
		{ 0x17, 0x02, 1 },		/* SYN alone */
		{ 0x01, 0x01, NFLOG_BATCH },	/* FIN */
		{ 0x04, 0x04, NFLOG_BATCH },	/* RST */
	};
	struct ipt_rule *r;
	size_t i;

	for (i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		if (!(r = rule_add(rl, IPT_RAW_PRE, IPT_V_NFLOG)))
			return -1;
		r->ir_dst = addr;
		r->ir_dport_lo = r->ir_dport_hi = port;
		r->ir_set = set;
		r->ir_tcp_flg_mask = w[i].mask;
		r->ir_tcp_flg_cmp = w[i].cmp;
		r->ir_nflog_group = (uint16_t)cf->c_nflog_group;
		r->ir_nflog_threshold = w[i].threshold;
		r->ir_nflog_size = NFLOG_SIZE;
	}
	return 0;
}

static int
rules_build(const struct qt_config *cf, struct rules *rl)
{
	const struct qt_node *self = config_self(cf);
	struct ipt_rule *r;
	size_t s, p, nnames = 0;

	for (s = 0; s < cf->c_nsvcs; s++) {
		const struct qt_service *sv = &cf->c_svcs[s];
		uint16_t lo = sv->s_hobase + 1;
		uint16_t hi = sv->s_hobase + QT_MAX_NODES - 1;

		/* front: a SYN is always a new connection of ours, even on
		 * the tuple of a flow still steered (a client reusing its
		 * port): it must reach our listener, not the old back. */
		if (!(r = rule_add(rl, IPT_RAW_PRE, IPT_V_NOTRACK)))
			return -1;
		r->ir_dst = self->n_addr;
		r->ir_dport_lo = r->ir_dport_hi = sv->s_port;
		r->ir_tcp_flg_mask = 0x17;	/* FIN, SYN, RST, ACK */
		r->ir_tcp_flg_cmp = 0x02;	/* SYN alone */
		for (p = 0; p < cf->c_nnodes; p++) {
			const struct qt_node *peer = &cf->c_nodes[p];
			char *name;

			if ((int)p == cf->c_self || peer->n_mode == NM_PROXY)
				continue;
			name = rl->names[nnames++];
			steer_set_name(s, peer->n_id, name, 32);
			if (nflog_rules(rl, cf, self->n_addr, sv->s_port,
			    name) == -1)
				return -1;
			if (!(r = rule_add(rl, IPT_RAW_PRE, IPT_V_RETURN)))
				return -1;
			r->ir_dst = self->n_addr;
			r->ir_dport_lo = r->ir_dport_hi = sv->s_port;
			r->ir_set = name;
			if (!(r = rule_add(rl, IPT_NAT_PRE, IPT_V_DNAT)))
				return -1;
			r->ir_dst = self->n_addr;
			r->ir_dport_lo = r->ir_dport_hi = sv->s_port;
			r->ir_set = name;
			r->ir_nat_addr = peer->n_addr;
			r->ir_nat_port = config_hoport(cf, s, self->n_id);
		}
		if (!(r = rule_add(rl, IPT_RAW_PRE, IPT_V_NOTRACK)))
			return -1;
		r->ir_dst = self->n_addr;
		r->ir_dport_lo = r->ir_dport_hi = sv->s_port;
		if (!(r = rule_add(rl, IPT_RAW_OUT, IPT_V_NOTRACK)))
			return -1;
		r->ir_src = self->n_addr;
		r->ir_sport_lo = r->ir_sport_hi = sv->s_port;

		/* back */
		if (!(r = rule_add(rl, IPT_RAW_PRE, IPT_V_DROP)))
			return -1;
		r->ir_dst = self->n_addr;
		r->ir_dport_lo = lo;
		r->ir_dport_hi = hi;
		r->ir_tcp_option = QT_MARK_KIND;
		if (!(r = rule_add(rl, IPT_RAW_PRE, IPT_V_NOTRACK)))
			return -1;
		r->ir_dst = self->n_addr;
		r->ir_dport_lo = lo;
		r->ir_dport_hi = hi;
		for (p = 0; p < cf->c_nnodes; p++) {
			const struct qt_node *origin = &cf->c_nodes[p];

			if ((int)p == cf->c_self || origin->n_mode == NM_PROXY)
				continue;
			if (!(r = rule_add(rl, IPT_NAT_POST, IPT_V_SNAT)))
				return -1;
			r->ir_src = self->n_addr;
			r->ir_sport_lo = r->ir_sport_hi =
			    config_hoport(cf, s, origin->n_id);
			r->ir_nat_addr = origin->n_addr;
			r->ir_nat_port = sv->s_port;
		}
		if (!(r = rule_add(rl, IPT_FILTER_IN, IPT_V_ACCEPT)))
			return -1;
		r->ir_dst = self->n_addr;
		r->ir_dport_lo = lo;
		r->ir_dport_hi = hi;
		r->ir_socket = 1;
		if (!(r = rule_add(rl, IPT_FILTER_IN, IPT_V_DROP)))
			return -1;
		r->ir_dst = self->n_addr;
		r->ir_dport_lo = lo;
		r->ir_dport_hi = hi;
	}
	if (!(r = rule_add(rl, IPT_RAW_OUT, IPT_V_NOTRACK)))
		return -1;
	r->ir_tcp_option = QT_MARK_KIND;
	rules_nsets = nnames;
	return 0;
}

struct names {
	char	(*n)[32];
	size_t	 len, cap;
};

static void
collect_name(const char *name, void *arg)
{
	struct names *ns = arg;

	if (ns->len < ns->cap)
		snprintf(ns->n[ns->len++], 32, "%s", name);
}

/* Sets of ours that the config no longer names (a peer or service was
 * removed): no rule refers to them once ipt_apply() is done. */
static void
steer_drop_stale_sets(char (*keep)[32], size_t nkeep)
{
	struct names ns = { .cap = 4096 };
	size_t i, j;

	if (!(ns.n = calloc(ns.cap, sizeof(*ns.n))))
		return;
	if (qset_names(qtd->set, "qt-", collect_name, &ns) == -1)
		log_warn("listing our ipsets: %s, ignoring",
		    qset_strerror(qtd->set));
	for (i = 0; i < ns.len; i++) {
		for (j = 0; j < nkeep; j++)
			if (!strcmp(ns.n[i], keep[j]))
				break;
		if (j < nkeep)
			continue;
		if (qset_destroy(qtd->set, ns.n[i]) == -1)
			log_warn("destroying stale ipset %s: %s, ignoring",
			    ns.n[i], qset_strerror(qtd->set));
		else
			log_notice("destroyed stale ipset %s", ns.n[i]);
	}
	free(ns.n);
}

int
steer_setup(void)
{
	const struct qt_config *cf = qtd->cf;
	struct rules rl = { 0 };
	size_t s, p;
	char name[32];
	int rc = -1;

	rl.cap = 16 + cf->c_nsvcs * (10 + 6 * cf->c_nnodes);
	rl.r = calloc(rl.cap, sizeof(*rl.r));
	rl.names = calloc(cf->c_nsvcs * cf->c_nnodes + 1, sizeof(*rl.names));
	if (!rl.r || !rl.names) {
		log_err("%s: out of memory", __func__);
		goto out;
	}
	/* Sets first: a rule can only name a set that exists.  Existing
	 * sets are kept with their entries: a restarted daemon must not cut
	 * the flows a previous instance steered. */
	for (s = 0; s < cf->c_nsvcs; s++)
		for (p = 0; p < cf->c_nnodes; p++) {
			if ((int)p == cf->c_self ||
			    cf->c_nodes[p].n_mode == NM_PROXY)
				continue;
			steer_set_name(s, cf->c_nodes[p].n_id, name,
			    sizeof(name));
			if (qset_create(qtd->set, name, cf->c_set_maxelem)) {
				log_err("cannot create ipset %s: %s", name,
				    qset_strerror(qtd->set));
				goto out;
			}
		}
	if (rules_build(cf, &rl) == -1) {
		log_err("%s: rule table overflow", __func__);
		goto out;
	}
	if (ipt_apply(rl.r, rl.n) == -1) {
		log_err("cannot install iptables rules: %s", ipt_strerror());
		goto out;
	}
	log_info("installed %zu rules in our chains", rl.n);
	steer_drop_stale_sets(rl.names, rules_nsets);
	rc = 0;
out:
	free(rl.r);
	free(rl.names);
	return rc;
}

/* Removes every rule, chain and set this daemon owns. */
void
steer_teardown(void)
{
	struct names ns = { .cap = 4096 };
	size_t i;

	if (ipt_remove() == -1)
		log_warn("removing our iptables chains: %s, ignoring",
		    ipt_strerror());
	if (!(ns.n = calloc(ns.cap, sizeof(*ns.n))))
		return;
	if (qset_names(qtd->set, "qt-", collect_name, &ns) == -1)
		log_warn("listing our ipsets: %s, ignoring",
		    qset_strerror(qtd->set));
	for (i = 0; i < ns.len; i++)
		if (qset_destroy(qtd->set, ns.n[i]) == -1)
			log_warn("destroying ipset %s: %s, ignoring", ns.n[i],
			    qset_strerror(qtd->set));
	free(ns.n);
}

struct set_add {
	const char	*sa_name;
	const struct flow *sa_f;
};

static size_t
set_add_build(char *buf, size_t room, uint32_t seq, void *arg)
{
	const struct set_add *sa = arg;

	return qset_add_build(buf, room, seq, sa->sa_name, sa->sa_f->f_cip,
	    ntohs(sa->sa_f->f_cport), sa->sa_f->f_laddr);
}

/*
 * The common case in one netlink exchange: the conntrack create and the
 * set entry in one datagram, entry after entry (the kernel takes them in
 * order).  1 if both are made; 0 if the create failed with EEXIST and
 * nothing is left of the attempt (steer_add() goes the long way); -1
 * with errno otherwise, nothing left either.
 */
static int
steer_add_one(struct flow *f, const char *name, uint32_t bip, uint16_t bport)
{
	struct set_add sa = { .sa_name = name, .sa_f = f };
	int rc, serr, e;

	if (qset_add_prepare(qtd->set, name) == -1)
		return -1;
	rc = qct_create_dnat_and(qtd->ct, f->f_cip, ntohs(f->f_cport),
	    f->f_laddr, ntohs(f->f_lport), bip, bport, 120, set_add_build, &sa,
	    &serr);
	if (rc == 0 && serr == 0)
		return 1;
	if (rc == 0) {
		e = serr == -1 ? EIO : qset_add_failed(qtd->set, name, serr);
		steer_ct_delete(f);
		errno = e;
		return -1;
	}
	/* No entry, or a stale one with an old binding: the set entry must
	 * not pick up a packet meanwhile. */
	e = errno;
	if (serr == 0 && qset_del(qtd->set, name, f->f_cip, ntohs(f->f_cport),
	    f->f_laddr) == -1) {
		log_warn("flow %llu: cannot undo its set entry: %s",
		    (unsigned long long)f->f_id, qset_strerror(qtd->set));
		e = EIO;
	}
	errno = e;
	return e == EEXIST ? 0 : -1;
}

/*
 * Steers f to its back.  The conntrack entry is made here, with its DNAT
 * binding, rather than left to the pickup of the client's next packet:
 * a FIN or RST as that packet would not be picked up (conntrack counts it
 * invalid) and would reach our own stack, which would reset the client;
 * and a full table fails here, cleanly, instead of dropping the flow's
 * packets later.  The set entry comes last (in the same datagram, after
 * the create), so no packet is picked up in between.  Returns 0, or -1 with errno (ENOMEM: the table is full).
 */
int
steer_add(struct flow *f)
{
	const struct qt_config *cf = qtd->cf;
	uint32_t bip = cf->c_nodes[f->f_peer].n_addr;
	uint16_t bport = config_hoport(cf, f->f_svc, config_self(cf)->n_id);
	char name[32];
	int rc, tries;

	steer_set_name(f->f_svc, cf->c_nodes[f->f_peer].n_id, name,
	    sizeof(name));
	if ((rc = steer_add_one(f, name, bip, bport)) != 0) {
		if (rc == 1)
			f->f_steered = 1;
		return rc == 1 ? 0 : -1;
	}
	/*
	 * Service traffic is untracked unless steered, so there is normally
	 * no entry on this tuple.  A stale one of an earlier flow would keep
	 * its old binding: the exclusive create refuses it (EEXIST), and only
	 * then is it deleted and the create tried again.  One netlink round
	 * trip in the common case instead of two.
	 */
	for (tries = 0; tries < 3; tries++) {
		rc = qct_create_dnat(qtd->ct, f->f_cip, ntohs(f->f_cport),
		    f->f_laddr, ntohs(f->f_lport), bip, bport, 120);
		if (rc == 0 || errno != EEXIST)
			break;
		if (qct_delete(qtd->ct, f->f_cip, ntohs(f->f_cport),
		    f->f_laddr, ntohs(f->f_lport)) == -1)
			return -1;
	}
	if (rc == -1)
		return -1;
	if (qset_add(qtd->set, name, f->f_cip, ntohs(f->f_cport),
	    f->f_laddr) == -1) {
		int e = errno;

		steer_ct_delete(f);
		errno = e;
		return -1;
	}
	f->f_steered = 1;
	return 0;
}

void
steer_del(struct flow *f)
{
	char name[32];

	if (!f->f_steered)
		return;
	steer_set_name(f->f_svc, qtd->cf->c_nodes[f->f_peer].n_id, name,
	    sizeof(name));
	if (qset_del(qtd->set, name, f->f_cip, ntohs(f->f_cport),
	    f->f_laddr) == -1)
		flow_log(f, LOG_L_WARN, "unsteer", "ipset del: %s, ignoring",
		    qset_strerror(qtd->set));
	f->f_steered = 0;
}

/*
 * Steering stopped for flows that ended together (a back's batch of close
 * reports, the watch's batch of FINs): their set deletes are queued and go
 * in one message when the loop has run every callback it woke for, before
 * it waits again (an ev_prepare), not in a round trip each.  Nothing of
 * the flow is left to deliver, so the microseconds to the end of the loop
 * iteration are no difference to its packets; a command on the sets in
 * between sends the queue first (nf_set.c), so none overtakes it.
 */
static ev_prepare	unsteer_prep;

static void
unsteer_flush(struct ev_loop *loop, ev_prepare *w, int revents)
{
	uint32_t failed;

	(void)revents;
	ev_prepare_stop(loop, w);
	if (qset_commit(qtd->set, &failed) == -1)
		log_warn("ipset: %u deletes failed: %s, ignoring", failed,
		    qset_strerror(qtd->set));
}

void
steer_del_later(struct flow *f)
{
	char name[32];

	if (!f->f_steered)
		return;
	steer_set_name(f->f_svc, qtd->cf->c_nodes[f->f_peer].n_id, name,
	    sizeof(name));
	if (qset_del_queue(qtd->set, name, f->f_cip, ntohs(f->f_cport),
	    f->f_laddr) == -1) {
		flow_log(f, LOG_L_WARN, "unsteer", "ipset del: %s, ignoring",
		    qset_strerror(qtd->set));
		return;
	}
	f->f_steered = 0;
	if (!ev_is_active(&unsteer_prep)) {
		ev_prepare_init(&unsteer_prep, unsteer_flush);
		ev_prepare_start(qtd->loop, &unsteer_prep);
	}
}

/* The conntrack entries of n flows, in one batch (the grace's end). */
void
steer_ct_delete_many(struct flow *const *fl, size_t n)
{
	struct qct_tuple t[64];
	size_t i, k;

	while (n > 0) {
		k = n < 64 ? n : 64;
		for (i = 0; i < k; i++) {
			t[i].t_src = fl[i]->f_cip;
			t[i].t_sport = ntohs(fl[i]->f_cport);
			t[i].t_dst = fl[i]->f_laddr;
			t[i].t_dport = ntohs(fl[i]->f_lport);
		}
		if (qct_delete_many(qtd->ct, t, k) == -1)
			log_warn("conntrack: deleting %zu entries: %m, ignoring",
			    k);
		fl += k;
		n -= k;
	}
}

void
steer_ct_delete(struct flow *f)
{
	if (qct_delete(qtd->ct, f->f_cip, ntohs(f->f_cport), f->f_laddr,
	    ntohs(f->f_lport)) == -1)
		flow_log(f, LOG_L_WARN, "conntrack", "delete: %m, ignoring");
}
