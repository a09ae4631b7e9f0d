/*
 * The back: capture the replays fronts send, reassemble each one, check
 * it, rebuild the connection with TCP_REPAIR, confirm, and serve.
 *
 * Nothing in a replay is trusted before the whole of it (header, 4-tuple,
 * request) has passed the MAC under the cluster key: its source address
 * is the client's, so only the key can tell a front's replay from a
 * forgery, and a back that rebuilt a forged one would send data to any
 * address an attacker named.  Replays are not reliable delivery: a front
 * resends a lost one, and a duplicate is confirmed again, never rebuilt.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/tcp.h>

#include "qtd.h"

#define ASM_MAX		1024	/* replays being reassembled at once */
#define ASM_TTL_MS	2000
#define SEEN_SLOTS	65536

/* One replay being reassembled, keyed by the client's address and port
 * and our hand-off port. */
struct reasm {
	TAILQ_ENTRY(reasm)	 a_entry;
	uint32_t		 a_cip, a_bip;
	uint16_t		 a_cport, a_bport;	/* network order */
	uint64_t		 a_t0;
	uint64_t		 a_ts;		/* the SYN's arrival (wall
						 * clock ns) */
	uint8_t			 a_hdrbuf[HDR_LEN];
	struct hdr		 a_hdr;
	uint8_t			*a_req;
	uint8_t			*a_have;	/* one bit per request byte */
	size_t			 a_got;
	size_t			 a_svc;
	int			 a_origin;
};

TAILQ_HEAD(reasmq, reasm);

static struct reasmq	asms = TAILQ_HEAD_INITIALIZER(asms);
static size_t		nasms;

/* Tokens of hand-offs already served: a replay of one of them within the
 * freshness window is a duplicate, not a new connection. */
static struct {
	uint8_t		token[QT_TOKEN_LEN];
	uint64_t	t;
} seen[SEEN_SLOTS];

static unsigned
seen_slot(const uint8_t t[QT_TOKEN_LEN])
{
	uint32_t v;

	memcpy(&v, t + 4, sizeof(v));
	return v % SEEN_SLOTS;
}

static int
seen_test(const uint8_t t[QT_TOKEN_LEN])
{
	unsigned i = seen_slot(t);

	return seen[i].t && memcmp(seen[i].token, t, QT_TOKEN_LEN) == 0;
}

static void
seen_add(const uint8_t t[QT_TOKEN_LEN])
{
	unsigned i = seen_slot(t);

	memcpy(seen[i].token, t, QT_TOKEN_LEN);
	seen[i].t = now_ms();
}

static void
asm_free(struct reasm *a)
{
	TAILQ_REMOVE(&asms, a, a_entry);
	nasms--;
	free(a->a_req);
	free(a->a_have);
	free(a);
}

static struct reasm *
asm_find(const struct cap_pkt *p)
{
	struct reasm *a;

	TAILQ_FOREACH(a, &asms, a_entry)
		if (a->a_cip == p->p_src && a->a_cport == htons(p->p_sport) &&
		    a->a_bport == htons(p->p_dport))
			return a;
	return NULL;
}

static void
asm_reply(const struct reasm *a, enum band_type type, uint32_t status)
{
	struct band_msg bm = {
		.bm_type = type,
		.bm_status = status,
		.bm_cip = a->a_cip,
		.bm_cport = a->a_cport,
		.bm_svc = (uint16_t)a->a_svc,
	};

	memcpy(bm.bm_token, a->a_hdr.h_token, QT_TOKEN_LEN);
	(void)band_send(a->a_origin, &bm);
}

/* A datagram of fixed-size entries for one front, being filled. */
struct band_batch {
	uint8_t	b_buf[BAND_PAYLOAD_MAX];
	size_t	b_len;
};

/*
 * Sends b's entries (each entry bytes, what they are for the log) to
 * node as one type datagram and empties it: the number sent, 0 if there
 * were none or the send failed.
 */
static size_t
batch_flush(int node, struct band_batch *b, enum band_type type,
    size_t entry, const char *what)
{
	struct band_msg bm = {
		.bm_type = type,
		.bm_payload = b->b_buf,
		.bm_plen = (uint16_t)b->b_len,
	};
	size_t n = b->b_len / entry;

	if (n == 0)
		return 0;
	b->b_len = 0;
	if (band_send(node, &bm) == -1) {
		log_warn("cannot send %zu %s to %s: %m", n, what,
		    qtd->cf->c_nodes[node].n_name);
		return 0;
	}
	return n;
}

/*
 * Confirmations of the hand-offs one loop turn rebuilt go to each front in
 * one CONFIRMS datagram, sent before the loop waits again (an ev_prepare):
 * under load a turn rebuilds several, and a datagram each was a send whose
 * whole path to the front runs in our context, and a wake-up, a read and
 * a MAC check on the front.  Nothing waits on a confirmation but the
 * front's bookkeeping (the client's packets reach us already), and the
 * turn ends within microseconds.  Only fronts whose heartbeat says they take
 * CONFIRMS get them; others, one CONFIRM a hand-off.
 */
static struct band_batch	confirms[QT_MAX_NODES];
static ev_prepare		confirm_prep;
/*
 * But not while a relay's request is with our server (relay_awaiting):
 * the server runs only once we sleep, and the send, whose path to the
 * front runs in our context, would come before the client's first byte.
 * They go at the end of the turn that answers it, or after CONFIRM_HOLD
 * at most: far below any handoff-timeout (10 ms at least).
 */
#define CONFIRM_HOLD	0.001
static ev_timer			confirm_hold;

static void
confirm_flush_node(int node)
{
	size_t n = batch_flush(node, &confirms[node], BAND_CONFIRMS,
	    BAND_CONFIRM_ENTRY, "confirmations");

	if (n > 0) {
		qtd->st.st_confirm_batches++;
		qtd->st.st_confirm_batched += n;
	}
}

static void
confirm_flush(void)
{
	size_t i;

	for (i = 0; i < QT_MAX_NODES && i < qtd->cf->c_nnodes; i++)
		confirm_flush_node((int)i);
	if (ev_is_active(&confirm_prep))
		ev_prepare_stop(qtd->loop, &confirm_prep);
	if (ev_is_active(&confirm_hold))
		ev_timer_stop(qtd->loop, &confirm_hold);
}

static void
confirm_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)w;
	(void)revents;
	if (relay_awaiting() > 0) {
		if (!ev_is_active(&confirm_hold)) {
			ev_timer_set(&confirm_hold, CONFIRM_HOLD, 0.);
			ev_timer_start(loop, &confirm_hold);
		}
		return;
	}
	confirm_flush();
}

static void
confirm_held(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	confirm_flush();
}

static void
asm_confirm(const struct reasm *a)
{
	struct band_batch *cb = &confirms[a->a_origin];
	struct band_msg bm = {
		.bm_cip = a->a_cip,
		.bm_cport = a->a_cport,
		.bm_svc = (uint16_t)a->a_svc,
	};

	if (!qtd->cf->c_nodes[a->a_origin].n_peer_confirms) {
		asm_reply(a, BAND_CONFIRM, 0);
		return;
	}
	memcpy(bm.bm_token, a->a_hdr.h_token, QT_TOKEN_LEN);
	band_confirm_put(cb->b_buf + cb->b_len, &bm);
	cb->b_len += BAND_CONFIRM_ENTRY;
	if (cb->b_len + BAND_CONFIRM_ENTRY > sizeof(cb->b_buf)) {
		confirm_flush_node(a->a_origin);
		return;
	}
	if (!ev_is_active(&confirm_prep)) {
		ev_prepare_init(&confirm_prep, confirm_prepare);
		ev_init(&confirm_hold, confirm_held);
		ev_prepare_start(qtd->loop, &confirm_prep);
	}
}

/*
 * A confirmation can be lost (the front's link down for a moment), and
 * the front then takes the connection back after its last try: two
 * sockets for one connection, ours serving a client whose packets no
 * longer reach us.  Until the client is heard from (it acknowledges or
 * sends a byte: the front's steering brings it to us), a flow is in the
 * unheard queue and its confirmation goes again every UNHEARD_MS,
 * doubling to UNHEARD_MAX_MS: a front that took the connection back
 * answers ABORT, and our socket vanishes without a packet.  Most flows
 * leave the queue at their first look, or close before it.
 */
#define UNHEARD_MS	200
#define UNHEARD_MAX_MS	1600

static ev_timer	unheard_timer;

static void
unheard_run(struct ev_loop *loop, ev_timer *w, int revents)
{
	uint64_t now = now_ms(), wait;
	struct flow *f, *next;

	(void)loop;
	(void)w;
	(void)revents;
	for (f = TAILQ_FIRST(&qtd->unheardq); f; f = next) {
		next = TAILQ_NEXT(f, f_sweep);
		if (f->f_reconfirm > now)
			continue;
		if (tcp_heard(f->f_fd) != 0) {
			flow_queue_leave(f);
			continue;
		}
		(void)band_send_flow(f, BAND_CONFIRM, 0, 0, 0);
		wait = (uint64_t)UNHEARD_MS << (f->f_confirms < 4 ?
		    f->f_confirms : 4);
		f->f_reconfirm = now + (wait < UNHEARD_MAX_MS ? wait :
		    UNHEARD_MAX_MS);
		f->f_confirms++;
	}
	if (TAILQ_EMPTY(&qtd->unheardq))
		ev_timer_stop(qtd->loop, &unheard_timer);
}

static void
unheard_enter(struct flow *f)
{
	flow_queue_enter(f, SQ_UNHEARD);
	f->f_reconfirm = now_ms() + UNHEARD_MS;
	if (!ev_is_active(&unheard_timer)) {
		ev_timer_init(&unheard_timer, unheard_run, UNHEARD_MS / 1e3,
		    UNHEARD_MS / 1e3);
		ev_timer_start(qtd->loop, &unheard_timer);
	}
}

/* Whether a back flow has heard nothing from its client since it was
 * rebuilt: its socket must then close without a packet, for the client's
 * connection may be the front's again (flow_abort). */
int
back_unheard(struct flow *f)
{
	if (f->f_sq != SQ_UNHEARD)
		return 0;
	if (tcp_heard(f->f_fd) == 0)
		return 1;
	flow_queue_leave(f);
	return 0;
}

/*
 * Sockets made ahead for rebuilds (repair_socket): the loop makes one
 * before it sleeps, while the pool is short, so that a replay finds the
 * flow-independent steps done.  Not while a relay's request is with our
 * server, for the same reason the confirmations wait (the server runs
 * only once we sleep); the next turn's prepare makes it.  If one cannot
 * be made (descriptors out), the watcher stops until the next rebuild,
 * which then makes its own.
 */
#define RSOCK_POOL	4
static int			rsock[RSOCK_POOL];
static unsigned			rsock_n;
static ev_prepare		rsock_prep;

static void
rsock_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
	int fd;

	(void)revents;
	if (relay_awaiting() > 0)
		return;
	if (rsock_n < RSOCK_POOL && (fd = repair_socket()) != -1)
		rsock[rsock_n++] = fd;
	else
		ev_prepare_stop(loop, w);
	if (rsock_n == RSOCK_POOL)
		ev_prepare_stop(loop, w);
}

/* A socket for a rebuild, -1 if none is ready; the pool refills. */
static int
rsock_take(void)
{
	int fd = rsock_n > 0 ? rsock[--rsock_n] : -1;

	if (!ev_is_active(&rsock_prep)) {
		ev_prepare_init(&rsock_prep, rsock_prepare);
		ev_prepare_start(qtd->loop, &rsock_prep);
	}
	return fd;
}

static void
rebuild(struct reasm *a)
{
	const struct qt_config *cf = qtd->cf;
	struct sockaddr_in local = { .sin_family = AF_INET };
	struct sockaddr_in peer = { .sin_family = AF_INET };
	struct flow *f;
	uint64_t t0, t1;
	int fd;

	local.sin_addr.s_addr = a->a_bip;
	local.sin_port = a->a_bport;
	peer.sin_addr.s_addr = a->a_cip;
	peer.sin_port = a->a_cport;
	/* A flow of ours still on this tuple from an earlier connection (a
	 * new ISN: its client opened another).  Already closed, it only
	 * waits for closing_poll: end it as that would.  Otherwise it is
	 * over for the client, whose front saw the new SYN and unsteered
	 * it: a client that closes and reuses its port at once does so
	 * before our FIN, which then goes unanswered, and our socket would
	 * sit in LAST-ACK for minutes refusing every hand-off on the tuple.
	 * It goes now, without a packet or a report: the front ended it. */
	f = flow_by_tuple(1, a->a_cip, a->a_cport, a->a_bport);
	if (f && f->f_isn != a->a_hdr.h_isn) {
		int st = tcp_state(f->f_fd);	/* -1 without a socket */

		if (st == TCP_CLOSE || st == -1) {
			flow_close(f, f->f_why ? f->f_why : "closed");
		} else {
			f->f_aborted = 1;
			f->f_frozen = 1;
			qtd->st.st_superseded++;
			flow_log(f, flow_step_level(), "superseded",
			    "socket in %s, the client has reused its port",
			    tcp_state_name(st));
			flow_close(f, "client reused its port");
		}
	}
	t0 = tm_mono_ns();
	fd = repair_restore(rsock_take(), &local, &peer, &a->a_hdr.h_rs);
	t1 = tm_mono_ns();
	tm_add(&qtd->tm[TM_REBUILD], t1 - t0);
	if (fd == -1) {
		int e = errno;

		qtd->st.st_refused++;
		log_warn("hand-off from %s for %s:%u refused: rebuild: %m",
		    cf->c_nodes[a->a_origin].n_name, addr_str(a->a_cip),
		    ntohs(a->a_cport));
		asm_reply(a, BAND_REFUSE, (uint32_t)e);
		return;
	}
	if (!(f = flow_new(1)) || flow_buf_reserve(f, a->a_hdr.h_req_len)) {
		if (f)
			f->f_fd = fd, f->f_frozen = 1;
		else
			repair_close(fd);
		if (f)
			flow_close(f, "out of memory");
		asm_reply(a, BAND_REFUSE, ENOMEM);
		return;
	}
	f->f_fd = fd;
	f->f_cip = a->a_cip;
	f->f_cport = a->a_cport;
	f->f_laddr = a->a_bip;
	f->f_lport = a->a_bport;
	f->f_svc = a->a_svc;
	f->f_peer = a->a_origin;
	flow_set_state(f, FS_BACK);
	f->f_peer_fin = a->a_hdr.h_rs.rs_fin;
	f->f_isn = a->a_hdr.h_isn;
	f->f_tm_rx = a->a_ts;
	f->f_tm = t1;
	memcpy(f->f_token, a->a_hdr.h_token, QT_TOKEN_LEN);
	memcpy(f->f_buf, a->a_req, a->a_hdr.h_req_len);
	f->f_blen = a->a_hdr.h_req_len;
	flow_hash_add(f);
	flow_tuple_add(f);
	qtd->st.st_back_flows++;
	f->f_confirms = 1;
	unheard_enter(f);
	flow_log(f, flow_step_level(), "materialized", "from %s on port %u",
	    cf->c_nodes[a->a_origin].n_name, ntohs(a->a_bport));
	/* The response first, then the confirmation: sending a datagram
	 * runs its whole way to the front's socket (veth, bridge, the
	 * front's netfilter) in our context, time the client's first byte
	 * need not wait for.  The front cannot act on the connection
	 * meanwhile: it is steered here, its socket frozen.  serve_start
	 * may close the flow; the reply needs only the replay. */
	serve_start(f);
	asm_confirm(a);
}

/* The whole replay is here: check it, then act on it. */
static void
asm_complete(struct reasm *a)
{
	const struct qt_config *cf = qtd->cf;
	struct hdr_tuple t = {
		.t_cip = a->a_cip, .t_cport = a->a_cport,
		.t_bip = a->a_bip, .t_bport = a->a_bport,
	};
	const struct hdr *h = &a->a_hdr;
	uint64_t now = now_ms();
	struct flow *f;

	if ((hdr_verify(a->a_hdrbuf, &t, a->a_req, h->h_req_len,
	    cf->c_key) == -1 && (!cf->c_have_key2 ||
	    hdr_verify(a->a_hdrbuf, &t, a->a_req, h->h_req_len,
	    cf->c_key2) == -1)) ||
	    h->h_origin != cf->c_nodes[a->a_origin].n_id ||
	    h->h_svc != a->a_svc) {
		qtd->st.st_forged++;
		log_warn("forged replay for %s:%u on port %u rejected",
		    addr_str(a->a_cip), ntohs(a->a_cport), ntohs(a->a_bport));
		return;
	}
	if (h->h_time_ms + cf->c_replay_window < now ||
	    h->h_time_ms > now + cf->c_replay_window) {
		qtd->st.st_stale++;
		log_warn("stale replay from %s for %s:%u rejected (%lld ms "
		    "off)", cf->c_nodes[a->a_origin].n_name,
		    addr_str(a->a_cip), ntohs(a->a_cport),
		    (long long)(now - h->h_time_ms));
		return;
	}
	if ((f = flow_by_token(1, h->h_token))) {
		/* The front resent: our confirmation was lost or late. */
		qtd->st.st_dup_replays++;
		asm_reply(a, BAND_CONFIRM, 0);
		return;
	}
	if (seen_test(h->h_token)) {
		qtd->st.st_dup_replays++;
		return;
	}
	/* Too late to be confirmed before the front gives up on it (this
	 * daemon was stopped, or its capture far behind): rebuilt, the
	 * connection would send until the front's ABORT came, bytes on the
	 * sequence numbers of the front's own answer.  Dropped without a
	 * REFUSE, which would end a hand-off whose later, fresher try may
	 * still be on its way; the front takes the connection back at its
	 * deadline.  The margin, a quarter, is for the confirmation's way
	 * back and the clocks' skew. */
	if (h->h_budget_ms && now + h->h_budget_ms / 4 >=
	    h->h_time_ms + h->h_budget_ms) {
		qtd->st.st_stale++;
		log_warn("late replay from %s for %s:%u dropped (%lld ms old, "
		    "taken back after %u)", cf->c_nodes[a->a_origin].n_name,
		    addr_str(a->a_cip), ntohs(a->a_cport),
		    (long long)(now - h->h_time_ms), h->h_budget_ms);
		return;
	}
	seen_add(h->h_token);
	rebuild(a);
}

/* Request bytes at offset OFF: kept if they lie within the request the
 * header announced, each byte counted once (resends overlap). */
static void
asm_data(struct reasm *a, size_t off, const uint8_t *data, size_t len)
{
	size_t i;

	if (len == 0 || off >= a->a_hdr.h_req_len ||
	    len > a->a_hdr.h_req_len - off)
		return;
	memcpy(a->a_req + off, data, len);
	for (i = off; i < off + len; i++)
		if (!(a->a_have[i / 8] & (1u << (i % 8)))) {
			a->a_have[i / 8] |= (uint8_t)(1u << (i % 8));
			a->a_got++;
		}
}

static void
back_pkt(const struct cap_pkt *p, void *arg)
{
	const struct qt_config *cf = qtd->cf;
	struct reasm *a;
	size_t svc;
	int origin;

	(void)arg;
	if (p->p_dst != config_self(cf)->n_addr ||
	    config_hoport_owner(cf, p->p_dport, &svc, &origin) == -1 ||
	    origin == cf->c_self)
		return;
	a = asm_find(p);
	if (p->p_flags & TH_SYN) {
		struct hdr h;

		if (p->p_len < HDR_LEN || hdr_decode(p->p_data, p->p_len,
		    &h) == -1 || h.h_isn != p->p_seq) {
			qtd->st.st_forged++;
			return;
		}
		tm_span(&qtd->tm[TM_CAPTURE], p->p_ts, tm_real_ns());
		if (a && memcmp(a->a_hdr.h_token, h.h_token,
		    QT_TOKEN_LEN) == 0)
			return;		/* a resend of what we are building */
		if (a)
			asm_free(a);
		if (nasms >= ASM_MAX) {
			/* Under a flood of SYNs the oldest half-built replay
			 * goes; its front will resend. */
			asm_free(TAILQ_FIRST(&asms));
		}
		if (!(a = calloc(1, sizeof(*a))) ||
		    !(a->a_req = malloc(h.h_req_len + 1)) ||
		    !(a->a_have = calloc(h.h_req_len / 8 + 1, 1))) {
			if (a) {
				free(a->a_req);
				free(a);
			}
			return;
		}
		a->a_cip = p->p_src;
		a->a_cport = htons(p->p_sport);
		a->a_bip = p->p_dst;
		a->a_bport = htons(p->p_dport);
		a->a_t0 = now_ms();
		a->a_ts = p->p_ts;
		a->a_svc = svc;
		a->a_origin = origin;
		a->a_hdr = h;
		memcpy(a->a_hdrbuf, p->p_data, HDR_LEN);
		TAILQ_INSERT_TAIL(&asms, a, a_entry);
		nasms++;
		/* The request's first bytes may follow the header. */
		asm_data(a, 0, p->p_data + HDR_LEN, p->p_len - HDR_LEN);
	} else {
		if (!a)
			return;
		asm_data(a, (uint32_t)(p->p_seq - a->a_hdr.h_isn - 1),
		    p->p_data, p->p_len);
	}
	if (a->a_got == a->a_hdr.h_req_len) {
		asm_complete(a);
		asm_free(a);
	}
}

static void
cap_ready(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	capture_dispatch(qtd->cap);
}

void
back_capture_stop(void)
{
	/* Unbound and unconnected: their close sends nothing. */
	if (ev_is_active(&rsock_prep))
		ev_prepare_stop(qtd->loop, &rsock_prep);
	while (rsock_n > 0)
		(void)close(rsock[--rsock_n]);
	if (!qtd->cap)
		return;
	ev_io_stop(qtd->loop, &qtd->cap_io);
	capture_close(qtd->cap);
	qtd->cap = NULL;
}

int
back_capture_start(void)
{
	const struct qt_config *cf = qtd->cf;
	char filter[1024], err[512];
	size_t s, n;

	n = (size_t)snprintf(filter, sizeof(filter),
	    "ip dst host %s and tcp and (tcp[12] & 0xf0) > 0x50 and "
	    "tcp[20] = %d and tcp[21] = 4 and tcp[22:2] = %u and (",
	    addr_str(config_self(cf)->n_addr), QT_MARK_KIND, QT_MARK_EXID);
	for (s = 0; s < cf->c_nsvcs && n < sizeof(filter); s++)
		n += (size_t)snprintf(filter + n, sizeof(filter) - n,
		    "%sdst portrange %u-%u", s ? " or " : "",
		    cf->c_svcs[s].s_hobase + 1,
		    cf->c_svcs[s].s_hobase + QT_MAX_NODES - 1);
	if (n < sizeof(filter))
		snprintf(filter + n, sizeof(filter) - n, ")");
	qtd->cap = capture_open(qtd->iface, filter, back_pkt, NULL, err,
	    sizeof(err));
	if (!qtd->cap) {
		log_err("replay capture: %s", err);
		return -1;
	}
	ev_io_init(&qtd->cap_io, cap_ready, capture_fd(qtd->cap), EV_READ);
	/* First in its loop turn: a replay's client waits for our first
	 * byte, while what else woke us with it can wait for the rebuild.
	 * A client that closes and opens its next connection at once
	 * (sequential requests) has its last flow's end (closing poll, log
	 * line, close report) wake us with the next replay; run first,
	 * those took 30-50 us off the replay's client in a third of such
	 * hand-offs. */
	ev_set_priority(&qtd->cap_io, EV_MAXPRI);
	ev_io_start(qtd->loop, &qtd->cap_io);
	log_info("capturing replays on %s", qtd->iface);
	return 0;
}

void
back_sweep(void)
{
	uint64_t now = now_ms();
	struct reasm *a;

	while ((a = TAILQ_FIRST(&asms)) && a->a_t0 + ASM_TTL_MS < now)
		asm_free(a);
}

/*
 * Close reports go out in batches, one datagram per front every
 * CLOSE_BATCH_MS at most (or when one is full), not one per flow: under
 * load a report per hand-off was a packet each way and a MAC for the
 * front to check, and nothing waits on a report but the front's teardown.
 */
#define CLOSE_BATCH_MS	5

static struct band_batch	closes[QT_MAX_NODES];
static ev_timer			close_timer;
static int			close_timer_ready;

static void
close_flush_node(int node)
{
	(void)batch_flush(node, &closes[node], BAND_CLOSED, BAND_CLOSED_ENTRY,
	    "close reports");
}

/* Sends every pending close report and confirmation now (timer, reload,
 * stop). */
void
back_close_flush(void)
{
	size_t i;

	confirm_flush();
	for (i = 0; i < QT_MAX_NODES && i < qtd->cf->c_nnodes; i++)
		close_flush_node((int)i);
	if (close_timer_ready)
		ev_timer_stop(qtd->loop, &close_timer);
}

static void
close_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	back_close_flush();
}

/* A back flow ends: the front may stop steering once our socket is fully
 * closed, which flow_finish() waited for.  An aborted flow was closed
 * silently on the front's word: nothing to report. */
void
back_flow_ended(struct flow *f)
{
	struct band_batch *cl;
	struct band_closed c = {
		.c_cip = f->f_cip,
		.c_cport = f->f_cport,
		.c_svc = (uint16_t)f->f_svc,
		.c_bytes = f->f_bytes,
		.c_requests = (uint32_t)f->f_requests,
	};

	if (f->f_aborted || f->f_peer < 0)
		return;
	memcpy(c.c_token, f->f_token, QT_TOKEN_LEN);
	cl = &closes[f->f_peer];
	band_closed_put(cl->b_buf + cl->b_len, &c);
	cl->b_len += BAND_CLOSED_ENTRY;
	if (cl->b_len + BAND_CLOSED_ENTRY > sizeof(cl->b_buf)) {
		close_flush_node(f->f_peer);
		return;
	}
	if (!close_timer_ready) {
		ev_timer_init(&close_timer, close_timeout, CLOSE_BATCH_MS / 1e3,
		    0);
		close_timer_ready = 1;
	}
	if (!ev_is_active(&close_timer)) {
		ev_timer_set(&close_timer, CLOSE_BATCH_MS / 1e3, 0);
		ev_timer_start(qtd->loop, &close_timer);
	}
}

/*
 * A front asks which of the flows it handed us we still serve.  We echo
 * each entry, marked alive or not: the front stops steering the others.
 */
static void
back_check(int node, const struct band_msg *bm)
{
	const struct qt_config *cf = qtd->cf;
	uint8_t out[BAND_PAYLOAD_MAX];
	struct band_msg r = {
		.bm_type = BAND_CHECK_REPLY,
		.bm_a = bm->bm_a,	/* the front's time of asking */
		.bm_payload = out,
	};
	const uint8_t *e;
	size_t i, n = 0;

	for (i = 0; i + BAND_ENTRY <= bm->bm_plen; i += BAND_ENTRY) {
		uint32_t cip;
		uint16_t cport, svc;

		e = bm->bm_payload + i;
		memcpy(&cip, e, 4);
		memcpy(&cport, e + 4, 2);
		svc = (uint16_t)(e[6] << 8 | e[7]);
		if (svc >= cf->c_nsvcs)
			continue;
		memcpy(out + n, e, BAND_ENTRY);
		if (flow_by_tuple(1, cip, cport, htons(config_hoport(cf, svc,
		    cf->c_nodes[node].n_id))))
			out[n + 6] |= BAND_ALIVE >> 8;
		n += BAND_ENTRY;
	}
	r.bm_plen = (uint16_t)n;
	(void)band_send(node, &r);
}

void
back_band(int node, const struct band_msg *bm)
{
	struct flow *f;

	switch (bm->bm_type) {
	case BAND_CHECK:
		back_check(node, bm);
		return;
	case BAND_ABORT:
		f = flow_by_token(1, bm->bm_token);
		if (!f || f->f_peer != node)
			return;
		/* The front serves this connection itself: ours must vanish
		 * without a packet. */
		f->f_aborted = 1;
		f->f_frozen = 1;
		flow_close(f, "aborted by the front");
		return;
	default:
		return;
	}
}
