/*
 * Flows: creation, lookup by hand-off token, the close path and the
 * reaper.  A flow is never freed inside a callback that may still touch
 * it: flow_close() marks it dead and the reaper frees it before the loop
 * next waits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <netinet/tcp.h>

#include "qtd.h"

struct qtd	*qtd;	/* the daemon: one per process */

static const char *const flow_states[FS_NSTATES] = {
	[FS_READING] = "reading",
	[FS_LOCAL] = "local",
	[FS_REPLAYING] = "replaying",
	[FS_HANDED_OFF] = "handed-off",
	[FS_TAKEN_BACK] = "taken-back",
	[FS_BACK] = "back",
	[FS_CLOSING] = "closing",
	[FS_GRACE] = "grace",
	[FS_PROXY] = "proxy",
};

const char *
flow_state_name(enum flow_state s)
{
	return s < FS_NSTATES ? flow_states[s] : "?";
}

struct flow *
flow_new(int back)
{
	struct flow *f;

	if (!(f = calloc(1, sizeof(*f))))
		return NULL;
	f->f_id = ++qtd->next_id;
	f->f_back = back;
	f->f_fd = -1;
	f->f_file = -1;
	f->f_up_fd = -1;
	f->f_pcu[0] = f->f_pcu[1] = f->f_puc[0] = f->f_puc[1] = -1;
	f->f_peer = -1;
	f->f_t0 = now_ms();
	TAILQ_INSERT_TAIL(&qtd->flows, f, f_entry);
	qtd->nflows++;
	qtd->nstate[f->f_state]++;	/* FS_READING */
	return f;
}

/*
 * Every change of a flow's state comes through here, so that the count
 * of each (qtctl stats, scraped every few seconds) is kept as it goes:
 * walking 50,000 flows for it held the loop for about 5 ms a scrape.
 */
void
flow_set_state(struct flow *f, enum flow_state s)
{
	if (!f->f_dead) {
		qtd->nstate[f->f_state]--;
		qtd->nstate[s]++;
	}
	f->f_state = s;
}

static void	thash_unlink(struct flow *);

#define FHASH_FIRST	1024
#define FHASH_MAX	(1u << 22)

static uint32_t
token_hv(const uint8_t t[QT_TOKEN_LEN])
{
	uint32_t v;

	memcpy(&v, t, sizeof(v));	/* tokens are random */
	return v;
}

/*
 * All 64 bits of the tuple through a full avalanche (murmur3's
 * finalizer): the table takes the low bits.  Clients differ most in the
 * last octet of their address, which in network order is the word's top
 * byte; the multiply-and-shift mix this replaces left those bits out of
 * the low ones, and 50,000 flows from 20 addresses on consecutive ports
 * came out in chains of 20 on average (40 at most) instead of 1.8
 * (tests/unit/test_flow.c).
 */
uint32_t
flow_tuple_hv(uint32_t cip, uint16_t cport, uint16_t lport)
{
	uint64_t k = (uint64_t)cip << 32 | (uint32_t)cport << 16 | lport;

	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ull;
	k ^= k >> 33;
	return (uint32_t)k;
}

static int
fhash_init(struct fhash *h)
{
	if (!(h->h_b = calloc(FHASH_FIRST, sizeof(*h->h_b))))
		return -1;
	h->h_mask = FHASH_FIRST - 1;
	h->h_n = 0;
	return 0;
}

int
flow_init(void)
{
	if (fhash_init(&qtd->front_hash) == -1 ||
	    fhash_init(&qtd->back_hash) == -1 ||
	    fhash_init(&qtd->tuple_hash) == -1)
		return -1;
	return 0;
}

/*
 * Doubles a hash that holds more flows than buckets.  Chain order is not
 * kept (flow_by_tuple does not depend on it).  Without memory the old
 * table stays: longer chains, nothing lost.
 */
static void
fhash_grow(struct fhash *h, int tuple)
{
	size_t nb = (h->h_mask + 1) * 2, i, b;
	struct flow **t, *f, *next;

	if (h->h_n <= h->h_mask + 1 || nb > FHASH_MAX ||
	    !(t = calloc(nb, sizeof(*t))))
		return;
	for (i = 0; i <= h->h_mask; i++)
		for (f = h->h_b[i]; f; f = next) {
			if (tuple) {
				next = f->f_tnext;
				b = flow_tuple_hv(f->f_cip, f->f_cport,
				    f->f_lport) & (nb - 1);
				f->f_tnext = t[b];
			} else {
				next = f->f_hnext;
				b = f->f_thv & (nb - 1);
				f->f_hnext = t[b];
			}
			t[b] = f;
		}
	free(h->h_b);
	h->h_b = t;
	h->h_mask = nb - 1;
}

void
flow_hash_add(struct flow *f)
{
	struct fhash *h = f->f_back ? &qtd->back_hash : &qtd->front_hash;
	size_t b;

	thash_unlink(f);	/* a new token for a flow already in */
	f->f_thv = token_hv(f->f_token);
	b = f->f_thv & h->h_mask;
	f->f_hnext = h->h_b[b];
	h->h_b[b] = f;
	f->f_in_thash = 1;
	h->h_n++;
	fhash_grow(h, 0);
}

void
flow_tuple_add(struct flow *f)
{
	struct fhash *h = &qtd->tuple_hash;
	size_t b;

	b = flow_tuple_hv(f->f_cip, f->f_cport, f->f_lport) & h->h_mask;
	f->f_tnext = h->h_b[b];
	h->h_b[b] = f;
	f->f_in_tuple = 1;
	h->h_n++;
	fhash_grow(h, 1);
}

/*
 * The live flow of this role on this 4-tuple.  A front may hold an older
 * record of the same tuple in its grace period: the newest one (highest
 * id) wins.
 */
struct flow *
flow_by_tuple(int back, uint32_t cip, uint16_t cport, uint16_t lport)
{
	const struct fhash *h = &qtd->tuple_hash;
	struct flow *f, *best = NULL;

	f = h->h_b[flow_tuple_hv(cip, cport, lport) & h->h_mask];
	for (; f; f = f->f_tnext)
		if (!f->f_dead && f->f_back == back && f->f_cip == cip &&
		    f->f_cport == cport && f->f_lport == lport &&
		    (!best || f->f_id > best->f_id))
			best = f;
	return best;
}

static void
thash_unlink(struct flow *f)
{
	struct fhash *h = f->f_back ? &qtd->back_hash : &qtd->front_hash;
	struct flow **pp;

	if (f->f_in_thash) {
		pp = &h->h_b[f->f_thv & h->h_mask];
		for (; *pp; pp = &(*pp)->f_hnext)
			if (*pp == f) {
				*pp = f->f_hnext;
				h->h_n--;
				break;
			}
		f->f_in_thash = 0;
	}
}

static void
flow_hash_del(struct flow *f)
{
	struct fhash *h = &qtd->tuple_hash;
	struct flow **pp;

	thash_unlink(f);
	if (f->f_in_tuple) {
		pp = &h->h_b[flow_tuple_hv(f->f_cip, f->f_cport, f->f_lport) &
		    h->h_mask];
		for (; *pp; pp = &(*pp)->f_tnext)
			if (*pp == f) {
				*pp = f->f_tnext;
				h->h_n--;
				break;
			}
		f->f_in_tuple = 0;
	}
}

struct flow *
flow_by_token(int back, const uint8_t token[QT_TOKEN_LEN])
{
	const struct fhash *h = back ? &qtd->back_hash : &qtd->front_hash;
	struct flow *f;

	for (f = h->h_b[token_hv(token) & h->h_mask]; f; f = f->f_hnext)
		if (!f->f_dead && memcmp(f->f_token, token, QT_TOKEN_LEN) == 0)
			return f;
	return NULL;
}

/* The flow's response-header buffer (FLOW_OUT bytes), NULL without
 * memory. */
char *
flow_out(struct flow *f)
{
	if (!f->f_out)
		f->f_out = malloc(FLOW_OUT);
	return f->f_out;
}

/* Appends what the socket holds to f_buf: bytes read, 0 at the peer's
 * end, -1 with errno (EAGAIN: nothing yet; ENOMEM: no buffer). */
ssize_t
flow_read(struct flow *f, uint64_t *rx_ns)
{
	union {
		struct cmsghdr	c;
		char		b[CMSG_SPACE(sizeof(struct timespec))];
	} cm;
	struct iovec iov;
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = &cm, .msg_controllen = sizeof(cm),
	};
	struct cmsghdr *c;
	struct timespec ts;
	ssize_t n;

	if (flow_buf_reserve(f, 4096) == -1) {
		errno = ENOMEM;
		return -1;
	}
	if (!rx_ns) {
		n = recv(f->f_fd, f->f_buf + f->f_blen,
		    f->f_bcap - f->f_blen, 0);
		if (n > 0)
			f->f_blen += (size_t)n;
		return n;
	}
	/* The listener asked for receive timestamps (SO_TIMESTAMPNS): the
	 * kernel says when the last segment read arrived. */
	iov.iov_base = f->f_buf + f->f_blen;
	iov.iov_len = f->f_bcap - f->f_blen;
	*rx_ns = 0;
	n = recvmsg(f->f_fd, &msg, 0);
	if (n <= 0)
		return n;
	f->f_blen += (size_t)n;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET &&
		    c->cmsg_type == SCM_TIMESTAMPNS &&
		    c->cmsg_len >= CMSG_LEN(sizeof(ts))) {
			memcpy(&ts, CMSG_DATA(c), sizeof(ts));
			*rx_ns = (uint64_t)ts.tv_sec * 1000000000u +
			    (uint64_t)ts.tv_nsec;
		}
	return n;
}

/*
 * A back's flow has handed its first response bytes to the kernel: the
 * end of the back's steps (first_byte, back_handoff).  Once per flow.
 */
void
flow_answered(struct flow *f)
{
	if (!f->f_back || !f->f_tm)
		return;
	tm_add(&qtd->tm[TM_FIRST_BYTE], tm_mono_ns() - f->f_tm);
	tm_span(&qtd->tm[TM_BACK], f->f_tm_rx, tm_real_ns());
	f->f_tm = 0;
}

int
flow_buf_reserve(struct flow *f, size_t more)
{
	size_t want = f->f_blen + more;
	char *nb;

	if (want <= f->f_bcap)
		return 0;
	if (want < 4096)
		want = 4096;
	if (want < f->f_bcap * 2)
		want = f->f_bcap * 2;
	if (!(nb = realloc(f->f_buf, want)))
		return -1;
	f->f_buf = nb;
	f->f_bcap = want;
	return 0;
}

/* Keeps the request line of r (which points into f_buf) for logs and
 * qtctl, made printable. */
void
flow_note_request(struct flow *f, const struct http_req *r)
{
	const char *p = r->hr_method_str;
	const char *end = f->f_buf + r->hr_hdrlen;
	size_t n = 0;

	for (; p < end && *p != '\r' && n < sizeof(f->f_reqline) - 1; p++)
		f->f_reqline[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
	f->f_reqline[n] = '\0';
}

void
flow_log(const struct flow *f, int level, const char *event,
    const char *fmt, ...)
{
	char msg[512], client[32];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(client, sizeof(client), "%s:%u", addr_str(f->f_cip),
	    ntohs(f->f_cport));
	/* Under journald the flow, client, peer node, event and reason are
	 * fields of their own: journalctl QT_NODE=qt2 finds a node's flows. */
	log_flow(level, f->f_id, client, f->f_peer >= 0 ?
	    qtd->cf->c_nodes[f->f_peer].n_name : NULL, event, f->f_why,
	    "flow %llu %s %s %s: %s", (unsigned long long)f->f_id,
	    f->f_back ? "back" : "front", client, event, msg);
}

void
flow_stop_watchers(struct flow *f)
{
	ev_io_stop(qtd->loop, &f->f_io);
	ev_timer_stop(qtd->loop, &f->f_timer);
}

/*
 * The queues a flow can wait in besides the flow list, one at a time
 * (f_sweep, f_sq): the front's sweep queues and grace queue, the back's
 * unheard queue.
 */
static struct flowq *
flow_queue(int q)
{
	return q == SQ_URGENT ? &qtd->urgentq : q == SQ_GRACE ?
	    &qtd->graceq : q == SQ_UNHEARD ? &qtd->unheardq : &qtd->sweepq;
}

/* Puts a flow at the tail of queue Q, out of any other. */
void
flow_queue_enter(struct flow *f, int q)
{
	flow_queue_leave(f);
	TAILQ_INSERT_TAIL(flow_queue(q), f, f_sweep);
	f->f_sq = q;
	if (q == SQ_URGENT)
		qtd->n_urgent++;
}

void
flow_queue_leave(struct flow *f)
{
	if (f->f_sq == SQ_NONE)
		return;
	TAILQ_REMOVE(flow_queue(f->f_sq), f, f_sweep);
	if (f->f_sq == SQ_URGENT)
		qtd->n_urgent--;
	f->f_sq = SQ_NONE;
}

/*
 * The one way a flow ends.  Whatever state it is in, everything it owns
 * is released here: descriptor (a frozen one silently), file, steering.
 */
void
flow_close(struct flow *f, const char *why)
{
	const char *where;

	if (f->f_dead)
		return;
	f->f_dead = 1;
	qtd->nstate[f->f_state]--;
	f->f_why = why;
	flow_queue_leave(f);
	if (f->f_serving)
		qtd->nserving--;
	flow_stop_watchers(f);
	relay_release(f);
	if (f->f_fd != -1) {
		if (f->f_frozen)
			repair_close(f->f_fd);
		else
			(void)close(f->f_fd);
		f->f_fd = -1;
	}
	if (f->f_file != -1) {
		(void)close(f->f_file);
		f->f_file = -1;
	}
	/* A handed-off flow stays steered when the daemon stops: the back
	 * is still serving it. */
	if (!f->f_back && f->f_steered &&
	    !(qtd->stopping && f->f_state == FS_HANDED_OFF))
		steer_del(f);
	if (f->f_back)
		back_flow_ended(f);
	/* The flow's one line in the default log-flows (end): where it
	 * went or came from, as its steps would have said. */
	if (f->f_peer < 0)
		where = "";
	else if (f->f_back)
		where = ", from ";
	else if (f->f_state == FS_HANDED_OFF || f->f_state == FS_GRACE)
		where = ", handed to ";
	else if (f->f_state == FS_PROXY)
		where = ", proxied to ";
	else
		where = "";		/* served here: the reason says why */
	flow_log(f, qtd->cf->c_log_flows == LF_NONE ? LOG_L_DEBUG :
	    LOG_L_INFO, "closed", "%s after %llu ms, %u requests, %llu bytes"
	    "%s%s%s%s", why, (unsigned long long)(now_ms() - f->f_t0),
	    f->f_requests, (unsigned long long)f->f_bytes, where,
	    where[0] ? qtd->cf->c_nodes[f->f_peer].n_name : "",
	    f->f_reqline[0] ? ", first " : "", f->f_reqline);
	flow_hash_del(f);
	TAILQ_REMOVE(&qtd->flows, f, f_entry);
	TAILQ_INSERT_TAIL(&qtd->dead, f, f_entry);
	qtd->nflows--;
}

void
flow_reap(void)
{
	struct flow *f;

	while ((f = TAILQ_FIRST(&qtd->dead))) {
		TAILQ_REMOVE(&qtd->dead, f, f_entry);
		free(f->f_buf);
		free(f->f_out);
		free(f);
	}
}

/*
 * The peer never finished the close: the client vanished, or cannot be
 * reached.  Our socket would linger for minutes in the kernel with its
 * unsent bytes, holding the tuple a later hand-off may need: reset it.
 */
static void
flow_abort(struct flow *f, const char *why)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	/* A back that never heard from the client may not own the
	 * connection at all (its front took it back, the confirmation
	 * lost): a reset from it could cut the front's live connection. */
	if (f->f_back && f->f_fd != -1 && back_unheard(f)) {
		f->f_frozen = 1;
		why = "close-wait expired, client never heard from";
	}
	if (f->f_fd != -1 && !f->f_frozen)
		(void)setsockopt(f->f_fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	flow_close(f, why);
}

/*
 * Closing a connection without losing the peer's last bytes or provoking
 * an RST: send our FIN, read and discard until the peer's FIN.  A back
 * waits further until the kernel's socket is fully closed (the client's
 * last ACK seen): only then may the front stop steering, or the client's
 * stray packets would reach the front's stack and be reset.
 */
static void
closing_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct flow *f = container_of(w, struct flow, f_timer);
	int st;

	(void)loop;
	(void)revents;
	st = tcp_state(f->f_fd);
	if (st == -1 || st == TCP_CLOSE) {
		flow_close(f, f->f_why ? f->f_why : "closed");
		return;
	}
	/* The client's FIN came with the hand-off and was acknowledged by
	 * the front: it will not come again.  Once ours is acknowledged the
	 * connection is over; close silently rather than linger. */
	if (f->f_peer_fin && st == TCP_FIN_WAIT2) {
		f->f_frozen = 1;
		flow_close(f, "client half-closed, response complete");
		return;
	}
	if ((ev_now(qtd->loop) - f->f_tclose) * 1000 >
	    qtd->cf->c_close_wait) {
		flow_abort(f, "close-wait expired");
		return;
	}
	ev_timer_again(qtd->loop, &f->f_timer);
}

static void
closing_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct flow *f = container_of(w, struct flow, f_io);
	char sink[4096];
	ssize_t n;

	(void)loop;
	(void)revents;
	for (;;) {
		n = recv(f->f_fd, sink, sizeof(sink), 0);
		if (n > 0)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		break;
	}
	ev_io_stop(qtd->loop, &f->f_io);
	if (n == -1) {
		flow_close(f, "reset while closing");
		return;
	}
	if (!f->f_back) {
		flow_close(f, f->f_why);
		return;
	}
	/* Back: poll until the last ACK has been seen. */
	ev_timer_stop(qtd->loop, &f->f_timer);
	ev_init(&f->f_timer, closing_poll);
	f->f_timer.repeat = 0.02;
	ev_timer_again(qtd->loop, &f->f_timer);
}

static void
closing_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct flow *f = container_of(w, struct flow, f_timer);

	(void)loop;
	(void)revents;
	flow_abort(f, "close-wait expired");
}

void
flow_finish(struct flow *f, const char *why)
{
	flow_stop_watchers(f);
	relay_release(f);
	if (f->f_file != -1) {
		(void)close(f->f_file);
		f->f_file = -1;
	}
	f->f_why = why;
	flow_set_state(f, FS_CLOSING);
	f->f_tclose = ev_now(qtd->loop);
	if (shutdown(f->f_fd, SHUT_WR) == -1 && errno != ENOTCONN) {
		flow_close(f, why);
		return;
	}
	if (f->f_peer_fin) {
		/* Nothing more will be read: only wait for our FIN's ACK. */
		ev_init(&f->f_timer, closing_poll);
		f->f_timer.repeat = 0.02;
		ev_timer_again(qtd->loop, &f->f_timer);
		return;
	}
	ev_io_init(&f->f_io, closing_read, f->f_fd, EV_READ);
	ev_io_start(qtd->loop, &f->f_io);
	ev_timer_init(&f->f_timer, closing_timeout,
	    qtd->cf->c_close_wait / 1000.0, 0);
	ev_timer_start(qtd->loop, &f->f_timer);
	closing_read(qtd->loop, &f->f_io, EV_READ);
}
