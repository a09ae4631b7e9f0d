/*
 * The front: accept a client, read its first request, pick the node that
 * serves it, and either serve it here or hand the connection off:
 *
 *   steer      the flow joins the back's set; its old conntrack entry goes
 *   freeze     TCP_REPAIR on our socket, its exact state read; the
 *              socket closes silently, its state kept
 *   replay     SYN, ACK and request, as the client, marked and with the
 *              authenticated header, to the back's hand-off port
 *   confirm    the back's CONFIRM arrives: the flow is handed off
 *
 * Without a confirmation after the configured tries, or on a REFUSE, the
 * front takes the connection back: rebuild our socket from the kept
 * state, unsteer, serve it here.  The client then sees nothing but a
 * slightly later response.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/tcp.h>

#include "qtd.h"
#include "route.h"

static void	front_read(struct ev_loop *, ev_io *, int);
static void	front_reused(uint32_t, uint16_t, uint16_t);
static void	sweep_enter(struct flow *, int);

/* The node for this request, or -1 to answer it here; *status set for a
 * reject route. */
static int
pick_node(const struct http_req *r, int *status)
{
	const struct qt_config *cf = qtd->cf;
	int usable[QT_MAX_NODES];
	uint64_t load[QT_MAX_NODES];
	size_t i;

	for (i = 0; i < cf->c_nnodes; i++) {
		usable[i] = health_usable((int)i);
		load[i] = (int)i == cf->c_self ? qtd->nserving :
		    cf->c_nodes[i].n_load;
	}
	return route_pick(cf, r, usable, load, status);
}

enum tb_reason { TB_TIMEOUT, TB_REFUSED, TB_ERROR };

/* A node without quicktwitch, or one whose hand-offs fail: be its proxy.
 * Its cost is the front's, and counted apart. */
static void
front_proxy(struct flow *f, int node)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = qtd->cf->c_nodes[node].n_addr;
	sin->sin_port = htons(qtd->cf->c_svcs[f->f_svc].s_port);
	f->f_peer = node;
	flow_set_state(f, FS_PROXY);
	if (!f->f_serving) {
		f->f_serving = 1;
		qtd->nserving++;
	}
	relay_start(f, &ss, sizeof(*sin), 1);
}

/*
 * The tokens of the last hand-offs we took back, so that a confirmation
 * that comes after the flow's record is gone is still answered ABORT
 * (see back.c, unheard): the back's socket must not outlive the
 * connection we served in its place.  A record is kept TB_KEEP_MS.
 */
#define TB_RING		256
#define TB_KEEP_MS	60000

static struct {
	uint8_t		t_token[QT_TOKEN_LEN];
	int		t_node;
	uint64_t	t_at;
} tb_ring[TB_RING];
static unsigned tb_next;

static void
tb_remember(const struct flow *f)
{
	memcpy(tb_ring[tb_next].t_token, f->f_token, QT_TOKEN_LEN);
	tb_ring[tb_next].t_node = f->f_peer;
	tb_ring[tb_next].t_at = now_ms();
	tb_next = (tb_next + 1) % TB_RING;
}

static int
tb_known(int node, const uint8_t *token)
{
	uint64_t now = now_ms();
	unsigned i;

	for (i = 0; i < TB_RING; i++)
		if (tb_ring[i].t_at && tb_ring[i].t_node == node &&
		    now - tb_ring[i].t_at < TB_KEEP_MS &&
		    memcmp(tb_ring[i].t_token, token, QT_TOKEN_LEN) == 0)
			return 1;
	return 0;
}

/*
 * Our side of a connection whose frozen socket we closed, rebuilt from the
 * state read at the freeze: the request bytes are all in f_buf, none in
 * the new socket, and a client's FIN counted in rcv_nxt will not come
 * again (f_peer_fin, as on a back).
 */
static int
front_rebuild(struct flow *f)
{
	struct sockaddr_in local = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = f->f_laddr,
		.sin_port = f->f_lport,
	};
	struct sockaddr_in peer = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = f->f_cip,
		.sin_port = f->f_cport,
	};
	int fd;

	if ((fd = repair_restore(-1, &local, &peer, &f->f_rs)) == -1)
		return -1;
	f->f_fd = fd;
	f->f_peer_fin = f->f_rs.rs_fin;
	return 0;
}

/*
 * A rebuild needs a route to the client, a thaw did not: with our link
 * down (a take-back's likeliest cause) connect() fails.  The flow stays
 * steered, which costs nothing while the link is down, and the rebuild
 * is tried again until the link is back or flow-timeout has passed.
 */
#define REBUILD_RETRY	0.1	/* s */

static void	take_back_finish(struct flow *, const char *);

static void
rebuild_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct flow *f = container_of(w, struct flow, f_timer);

	(void)loop;
	(void)revents;
	take_back_finish(f, "the client was unreachable for a while");
}

static void
take_back(struct flow *f, enum tb_reason reason, const char *why)
{
	ev_timer_stop(qtd->loop, &f->f_timer);
	/* The back may have built the connection, its confirmation lost:
	 * it must drop it.  If this ABORT is lost as well, the back asks
	 * again (its unheard queue) and front_band answers. */
	if (reason != TB_REFUSED) {
		tb_remember(f);
		(void)band_send_flow(f, BAND_ABORT, 0, 0, 0);
	}
	/* From here a late CONFIRM is answered with ABORT
	 * (front_confirmed). */
	flow_set_state(f, FS_TAKEN_BACK);
	f->f_tb_at = now_ms();
	qtd->st.st_taken_back++;
	if (reason == TB_TIMEOUT)
		qtd->st.st_tb_timeout++;
	else if (reason == TB_REFUSED)
		qtd->st.st_tb_refused++;
	else
		qtd->st.st_tb_error++;
	take_back_finish(f, why);
}

static void
take_back_finish(struct flow *f, const char *why)
{
	const char *peer = qtd->cf->c_nodes[f->f_peer].n_name;

	/* Our socket was closed before the replay went: it is rebuilt, in
	 * the state it was frozen in, while the client's packets still go
	 * to the back (unsteered first, one reaching us with no socket
	 * would meet the listener, which answers with a reset). */
	if (f->f_fd == -1 && front_rebuild(f) == -1) {
		if ((errno == ENETUNREACH || errno == EHOSTUNREACH ||
		    errno == ENETDOWN || errno == EADDRNOTAVAIL) &&
		    now_ms() - f->f_tb_at < qtd->cf->c_flow_timeout) {
			/* Stopped first: a retry runs from this very timer,
			 * which libev still holds (a repeating one), and
			 * ev_init() on it then put it in the heap twice, to
			 * run twice as often at each retry and, once the
			 * rebuild went through, to serve the flow again. */
			ev_timer_stop(qtd->loop, &f->f_timer);
			ev_init(&f->f_timer, rebuild_retry);
			f->f_timer.repeat = REBUILD_RETRY;
			ev_timer_again(qtd->loop, &f->f_timer);
			return;
		}
		log_warn("take-back: rebuilding our socket: %m");
		steer_del(f);
		steer_ct_delete(f);
		flow_close(f, "rebuild failed");
		return;
	}
	ev_timer_stop(qtd->loop, &f->f_timer);
	steer_del(f);
	/* Client packets that arrived while steered created an entry with
	 * the DNAT: it must go, or the connection stays bent to the back. */
	steer_ct_delete(f);
	if (f->f_frozen) {
		if (repair_thaw(f->f_fd) == -1) {
			flow_close(f, "thaw failed");
			return;
		}
		f->f_frozen = 0;
	}
	if (qtd->cf->c_nodes[f->f_peer].n_mode == NM_HANDOFF_PROXY) {
		flow_log(f, LOG_L_DEBUG, "taken-back", "hand-off to %s failed "
		    "(%s): proxying to it", peer, why);
		/* The same text for every flow, so a storm of them is
		 * logged with a count, not line by line. */
		log_warn("hand-offs to %s fail (%s): proxying to it", peer,
		    why);
		front_proxy(f, f->f_peer);
		return;
	}
	flow_log(f, LOG_L_DEBUG, "taken-back", "hand-off to %s failed (%s): "
	    "serving it here", peer, why);
	log_warn("hand-offs to %s fail (%s): serving them here", peer, why);
	serve_start(f);
}

static int
send_replay(struct flow *f)
{
	const struct qt_config *cf = qtd->cf;
	struct hdr_tuple t = {
		.t_cip = f->f_cip,
		.t_cport = f->f_cport,
		.t_bip = cf->c_nodes[f->f_peer].n_addr,
		.t_bport = htons(config_hoport(cf, f->f_svc,
		    config_self(cf)->n_id)),
	};
	struct hdr h = {
		.h_origin = config_self(cf)->n_id,
		.h_svc = (uint32_t)f->f_svc,
		.h_time_ms = now_ms(),
		.h_isn = f->f_isn,
		.h_req_len = (uint32_t)f->f_blen,
		/* This try's timeout and those of the tries left (a reload
		 * may have lowered the tries below those made: 0, not said). */
		.h_budget_ms = f->f_tries < cf->c_handoff_tries ?
		    (cf->c_handoff_tries - f->f_tries) * cf->c_handoff_timeout :
		    0,
		.h_rs = f->f_rs,
	};

	/* A fresh time on every try: a resend must pass the back's
	 * freshness check as the first did. */
	memcpy(h.h_token, f->f_token, QT_TOKEN_LEN);
	hdr_encode(&h, &t, f->f_buf, cf->c_key, f->f_hdr);
	return replay_send(qtd->replay, &t, f->f_isn, &f->f_rs, f->f_hdr,
	    f->f_buf, f->f_blen);
}

static void
replay_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct flow *f = container_of(w, struct flow, f_timer);

	(void)loop;
	(void)revents;
	/* The confirmation may be waiting in the band socket, come since
	 * this loop turn polled: a take-back then would leave the
	 * connection with two owners. */
	band_poll();
	if (f->f_dead || f->f_state != FS_REPLAYING)
		return;
	if (++f->f_tries >= qtd->cf->c_handoff_tries) {
		take_back(f, TB_TIMEOUT, "no confirmation");
		return;
	}
	qtd->st.st_resends++;
	flow_log(f, flow_step_level(), "resend", "try %u", f->f_tries + 1);
	if (send_replay(f) == -1) {
		take_back(f, TB_ERROR, "replay send failed");
		return;
	}
	ev_timer_again(qtd->loop, &f->f_timer);
}

static void
hand_off(struct flow *f, int peer)
{
	char extra[16384];
	uint64_t t0, t1;	/* the step timings' clock */
	size_t elen;

	qtd->st.st_handoffs++;
	f->f_peer = peer;
	auth_random(f->f_token, sizeof(f->f_token));
	flow_hash_add(f);
	flow_stop_watchers(f);
	/* Steer first: from here on the client's packets go to the back,
	 * which drops them silently until its socket exists. */
	t0 = tm_mono_ns();
	if (steer_add(f) == -1) {
		qtd->st.st_steer_failed++;
		take_back(f, TB_ERROR, errno == ENOMEM ?
		    "conntrack table full" : errno == ENOSPC ?
		    "steering set full (set-maxelem)" : "steering failed");
		return;
	}
	t1 = tm_mono_ns();
	tm_add(&qtd->tm[TM_STEER], t1 - t0);
	if (repair_freeze(f->f_fd, &f->f_rs, extra, sizeof(extra),
	    &elen) == -1) {
		f->f_frozen = 1;	/* repair mode may be on */
		take_back(f, TB_ERROR, strerror(errno));
		return;
	}
	f->f_frozen = 1;
	if (elen) {
		if (flow_buf_reserve(f, elen) == -1) {
			take_back(f, TB_ERROR, "out of memory");
			return;
		}
		memcpy(f->f_buf + f->f_blen, extra, elen);
		f->f_blen += elen;
	}
	if (f->f_blen > HDR_MAX_REQ) {
		take_back(f, TB_ERROR, "request too long to replay");
		return;
	}
	/* rcv_nxt counts the SYN, the request and, after a half-close,
	 * the client's FIN: the ISN is what the client really sent, which
	 * the SYN watch compares with a late-captured SYN. */
	f->f_isn = f->f_rs.rs_rcv_nxt - 1 - (uint32_t)f->f_blen -
	    (f->f_rs.rs_fin ? 1 : 0);
	flow_set_state(f, FS_REPLAYING);
	/* The frozen socket goes now, before the replay, not at the
	 * confirmation: while it exists, a client that is done and reuses
	 * its port (the back's response and the client's close can beat
	 * the CONFIRM to us) has its new SYN met by this socket, not by the
	 * listener: a challenge ACK and a reconnect 10 ms later, or, if the
	 * SYN comes as we close it, no answer for a second.  Closed just
	 * after the replay, it still met 2 SYNs in 200 quick reuses: this
	 * process was not run again for the 0.5 ms the back took to answer
	 * and the client to close.  Before the replay, the client cannot be
	 * done yet.  Its state is in f_rs: a take-back rebuilds it
	 * (front_rebuild).  Still in repair mode: the close puts nothing on
	 * the wire. */
	repair_drop(f->f_fd);
	f->f_fd = -1;
	f->f_frozen = 0;
	t0 = tm_mono_ns();
	tm_add(&qtd->tm[TM_FREEZE], t0 - t1);
	if (send_replay(f) == -1) {
		take_back(f, TB_ERROR, "replay send failed");
		return;
	}
	f->f_tm = tm_mono_ns();
	tm_add(&qtd->tm[TM_REPLAY], f->f_tm - t0);
	tm_span(&qtd->tm[TM_FRONT], f->f_tm_rx, tm_real_ns());
	ev_init(&f->f_timer, replay_timeout);
	f->f_timer.repeat = qtd->cf->c_handoff_timeout / 1000.0;
	ev_timer_again(qtd->loop, &f->f_timer);
}

static void
front_request(struct flow *f, const struct http_req *r)
{
	int node, status;

	flow_note_request(f, r);
	node = pick_node(r, &status);
	if (status) {
		flow_set_state(f, FS_LOCAL);
		flow_stop_watchers(f);
		serve_error(f, status);
		return;
	}
	if (node >= 0 && node != qtd->cf->c_self &&
	    (qtd->cf->c_nodes[node].n_mode == NM_PROXY ||
	    (qtd->cf->c_nodes[node].n_mode == NM_HANDOFF_PROXY &&
	    !qtd->cf->c_nodes[node].n_up))) {
		front_proxy(f, node);
		return;
	}
	if (node < 0 || node == qtd->cf->c_self) {
		/* Ours, or no node can take it (or a target we will refuse
		 * anyway): the responder answers. */
		flow_set_state(f, FS_LOCAL);
		qtd->st.st_local++;
		flow_stop_watchers(f);
		serve_start(f);
		return;
	}
	hand_off(f, node);
}

static void
header_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct flow *f = container_of(w, struct flow, f_timer);

	(void)loop;
	(void)revents;
	if (f->f_blen == 0) {
		flow_close(f, "no request");
		return;
	}
	flow_set_state(f, FS_LOCAL);
	serve_error(f, 408);
}

static void
front_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct flow *f = container_of(w, struct flow, f_io);
	struct http_req r;
	uint64_t rx;
	ssize_t n;
	int rc;

	(void)loop;
	(void)revents;
	if ((n = flow_read(f, &rx)) == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		flow_close(f, errno == ENOMEM ? "out of memory" : "read error");
		return;
	}
	if (n == 0) {
		flow_close(f, "client closed before a request");
		return;
	}
	/* The request's last segment: when it reached the kernel starts
	 * the hand-off's clock. */
	if (rx) {
		f->f_tm_rx = rx;
		tm_span(&qtd->tm[TM_FRONT_WAKE], rx, tm_real_ns());
	}
	rc = http_parse(f->f_buf, f->f_blen, qtd->cf->c_max_header, &r);
	if (rc == 0)
		return;
	if (rc < 0) {
		flow_stop_watchers(f);
		flow_set_state(f, FS_LOCAL);
		serve_error(f, -rc);
		return;
	}
	front_request(f, &r);
}

static void
front_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	size_t svc = (size_t)(w - qtd->listen_io);
	struct sockaddr_in peer, local;
	socklen_t len;
	struct flow *f;
	int fd, i;

	(void)loop;
	(void)revents;
	for (i = 0; i < 64; i++) {
		len = sizeof(peer);
		fd = accept4(qtd->listen_fd[svc], (struct sockaddr *)&peer,
		    &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE)
				log_warn("accept: %m: connections wait in "
				    "the backlog");
			return;
		}
		/* The listener is bound to our address and the service's
		 * port: that is the local end, no getsockname() needed. */
		local.sin_addr.s_addr = config_self(qtd->cf)->n_addr;
		local.sin_port = htons(qtd->cf->c_svcs[svc].s_port);
		if (!(f = flow_new(0))) {
			(void)close(fd);
			continue;
		}
		qtd->st.st_accepted++;
		f->f_fd = fd;
		f->f_svc = svc;
		f->f_cip = peer.sin_addr.s_addr;
		f->f_cport = peer.sin_port;
		f->f_laddr = local.sin_addr.s_addr;
		f->f_lport = local.sin_port;
		flow_set_state(f, FS_READING);
		front_reused(f->f_cip, f->f_cport, f->f_lport);
		flow_tuple_add(f);
		ev_io_init(&f->f_io, front_read, fd, EV_READ);
		ev_timer_init(&f->f_timer, header_timeout,
		    qtd->cf->c_header_timeout / 1000.0, 0);
		ev_timer_start(qtd->loop, &f->f_timer);
		/* The request has usually come with or right after the
		 * handshake's last ACK: read it now, and watch the socket
		 * (an epoll_ctl) only if it is not all there. */
		front_read(qtd->loop, &f->f_io, EV_READ);
		if (!f->f_dead && f->f_state == FS_READING &&
		    !ev_is_active(&f->f_io))
			ev_io_start(qtd->loop, &f->f_io);
	}
}

/*
 * Listener settings that follow the config (at start and at each reload).
 * defer-accept: woken when the request is there, not at the handshake's
 * last ACK, which the request follows within microseconds: a wake-up, a
 * failed read and an epoll_ctl fewer per connection, the accept's work
 * now on the request's path (about 20 us of time to first byte in the
 * benchmark).  A client that says nothing is accepted once the kernel
 * stops waiting (about header-timeout), and then has header-timeout to
 * speak.  Delayed ACKs, inherited by every accepted socket from its
 * first segment: the request is answered by the response (served here)
 * or by the back (handed off), whose segments acknowledge it; a quick
 * ACK from us would be a packet for nothing on every hand-off.
 */
static void
listen_tune(int fd)
{
	const struct qt_config *cf = qtd->cf;
	int defer = cf->c_defer_accept ?
	    (int)((cf->c_header_timeout + 999) / 1000) : 0;

	if (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer,
	    sizeof(defer)) == -1)
		log_warn("listener: TCP_DEFER_ACCEPT: %m");
	if (setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &(int){ 0 },
	    sizeof(int)) == -1)
		log_warn("listener: TCP_QUICKACK: %m");
	/* No Nagle, inherited by every accepted socket.  A relay forwards
	 * what its server writes as it comes: nginx writes a header, then
	 * the body, and with Nagle the body waited for the client's ACK of
	 * the header, which a client in delayed-ACK mode holds 40 ms (every
	 * keep-alive request after the first took 44 ms, sequentially).
	 * The built-in responder sends header and body with MSG_MORE, which
	 * still holds the header for the body. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 },
	    sizeof(int)) == -1)
		log_warn("listener: TCP_NODELAY: %m");
	/* Receive timestamps, inherited by every accepted socket: when the
	 * request reached the kernel starts the hand-off's step timings
	 * (front_wake, front_handoff).  The kernel then stamps every packet
	 * it receives, a clock read each. */
	if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &(int){ 1 },
	    sizeof(int)) == -1)
		log_warn("listener: SO_TIMESTAMPNS: %m");
}

/* The running listeners take the reloaded config's settings. */
void
front_listen_retune(size_t n)
{
	size_t s;

	for (s = 0; s < n; s++)
		if (ev_is_active(&qtd->listen_io[s]))
			listen_tune(qtd->listen_fd[s]);
}

int
front_listen(size_t from)
{
	const struct qt_config *cf = qtd->cf;
	size_t s;

	for (s = from; s < cf->c_nsvcs; s++) {
		struct sockaddr_in sin = {
			.sin_family = AF_INET,
			.sin_addr.s_addr = config_self(cf)->n_addr,
			.sin_port = htons(cf->c_svcs[s].s_port),
		};
		int fd;

		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
		if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR,
		    &(int){ 1 }, sizeof(int)) == -1 ||
		    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
		    listen(fd, 4096) == -1) {
			log_err("service %s: listen on %s:%u: %m",
			    cf->c_svcs[s].s_name, addr_str(sin.sin_addr.s_addr),
			    cf->c_svcs[s].s_port);
			if (fd != -1)
				(void)close(fd);
			return -1;
		}
		listen_tune(fd);
		qtd->listen_fd[s] = fd;
		ev_io_init(&qtd->listen_io[s], front_accept, fd, EV_READ);
		ev_io_start(qtd->loop, &qtd->listen_io[s]);
	}
	return 0;
}

static void
front_confirmed(struct flow *f)
{
	if (f->f_state == FS_HANDED_OFF || f->f_state == FS_GRACE)
		return;		/* a duplicate */
	if (f->f_state != FS_REPLAYING) {
		/* All our tries timed out (served here or proxied since),
		 * yet the back built the socket: only one of us may own
		 * the connection. */
		(void)band_send_flow(f, BAND_ABORT, 0, 0, 0);
		return;
	}
	ev_timer_stop(qtd->loop, &f->f_timer);
	/* A first try's only: after a resend, which try this answers is
	 * not known. */
	if (f->f_tries == 0)
		tm_span(&qtd->tm[TM_CONFIRM], f->f_tm, tm_mono_ns());
	/* Our socket went with the replay (hand_off).  The request was
	 * kept for a take-back, which cannot come now: its buffer (4 KB or
	 * more) would be most of a live flow's memory. */
	free(f->f_buf);
	f->f_buf = NULL;
	f->f_blen = f->f_bcap = 0;
	flow_set_state(f, FS_HANDED_OFF);
	f->f_checked = now_ms();
	sweep_enter(f, SQ_NORMAL);
	qtd->st.st_handed_off++;
	flow_log(f, flow_step_level(), "handed-off", "to %s after %u tries: %s",
	    qtd->cf->c_nodes[f->f_peer].n_name, f->f_tries + 1, f->f_reqline);
}

static void
front_refused(struct flow *f, int err)
{
	char why[128];

	if (f->f_state != FS_REPLAYING)
		return;
	qtd->st.st_refused++;
	snprintf(why, sizeof(why), "refused by the back: %s", strerror(err));
	take_back(f, TB_REFUSED, why);
}

/*
 * The end of flows' conntrack grace: their entries go in one batch, then
 * the flows.  Runs at the head's end, but no sooner than GRACE_BATCH_MS
 * after the last run, so that ends close together share a batch.
 */
#define GRACE_BATCH_MS	10

static void
grace_run(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct flow *fl[64], *f;
	uint64_t now = now_ms();
	size_t n, i;
	double next;

	(void)revents;
	do {
		for (n = 0; n < 64 && (f = TAILQ_FIRST(&qtd->graceq)) &&
		    f->f_grace_end <= now; n++) {
			flow_queue_leave(f);
			fl[n] = f;
		}
		steer_ct_delete_many(fl, n);
		for (i = 0; i < n; i++)
			flow_close(fl[i], fl[i]->f_why);
	} while (n == 64);
	if ((f = TAILQ_FIRST(&qtd->graceq))) {
		next = f->f_grace_end > now ? (f->f_grace_end - now) / 1e3 : 0;
		if (next < GRACE_BATCH_MS / 1e3)
			next = GRACE_BATCH_MS / 1e3;
		ev_timer_set(w, next, 0);
		ev_timer_start(loop, w);
	}
}

/*
 * A handed-off flow is over: stop steering now (nothing of it is left to
 * deliver, or nobody is left to deliver it to), and drop the conntrack
 * entry after a grace period, so that a client reusing the port starts
 * clean.  Every end of a handed-off flow comes through here.
 */
static void
front_teardown(struct flow *f, const char *why)
{
	if (f->f_state != FS_HANDED_OFF)
		return;
	flow_queue_leave(f);
	steer_del_later(f);
	flow_set_state(f, FS_GRACE);
	f->f_why = why;
	f->f_grace_end = now_ms() + qtd->cf->c_ct_grace;
	flow_queue_enter(f, SQ_GRACE);
	if (!ev_is_active(&qtd->grace_timer)) {
		ev_timer_init(&qtd->grace_timer, grace_run,
		    qtd->cf->c_ct_grace / 1000.0, 0);
		ev_timer_start(qtd->loop, &qtd->grace_timer);
	}
}

static void
front_closed(struct flow *f, uint64_t bytes, unsigned requests)
{
	if (f->f_state == FS_REPLAYING)
		front_confirmed(f);	/* the confirmation was lost */
	if (f->f_state != FS_HANDED_OFF)
		return;
	f->f_bytes = bytes;
	f->f_requests = requests;
	qtd->st.st_td_report++;
	front_teardown(f, "back reported close");
}

/* The back no longer has a flow we asked about. */
static void
front_gone(struct flow *f)
{
	if (f->f_rst) {
		qtd->st.st_td_rst++;
		front_teardown(f, "client reset, back has no flow");
	} else if (f->f_fin) {
		qtd->st.st_td_fin++;
		front_teardown(f, "client closed, back has no flow");
	} else {
		qtd->st.st_td_sweep++;
		front_teardown(f, "swept: back has no flow");
	}
}

static void
check_reply(int node, const struct band_msg *bm)
{
	const struct qt_config *cf = qtd->cf;
	size_t i;

	for (i = 0; i + BAND_ENTRY <= bm->bm_plen; i += BAND_ENTRY) {
		const uint8_t *e = bm->bm_payload + i;
		struct flow *f;
		uint32_t cip;
		uint16_t cport, svc;
		int alive;

		memcpy(&cip, e, 4);
		memcpy(&cport, e + 4, 2);
		svc = (uint16_t)(e[6] << 8 | e[7]);
		alive = (svc & BAND_ALIVE) != 0;
		svc &= (uint16_t)~BAND_ALIVE;
		if (svc >= cf->c_nsvcs)
			continue;
		f = flow_by_tuple(0, cip, cport, htons(cf->c_svcs[svc].s_port));
		/* Only a flow the back vouched for before we asked: a newer
		 * flow on the same tuple may have been handed off since. */
		if (!f || f->f_peer != node || f->f_state != FS_HANDED_OFF ||
		    f->f_checked >= bm->bm_a)
			continue;
		if (alive)
			f->f_checked = now_ms();
		else
			front_gone(f);
	}
}

/* Which front flow a band message is about: by token, or by tuple for a
 * flow adopted after a restart, whose token we never knew. */
static struct flow *
band_flow(int node, const struct band_msg *bm)
{
	const struct qt_config *cf = qtd->cf;
	static const uint8_t zero[QT_TOKEN_LEN];
	struct flow *f;

	f = flow_by_token(0, bm->bm_token);
	if (!f)
		f = flow_by_tuple(0, bm->bm_cip, bm->bm_cport,
		    htons(cf->c_svcs[bm->bm_svc].s_port));
	if (!f || f->f_peer != node)
		return NULL;
	if (memcmp(f->f_token, bm->bm_token, QT_TOKEN_LEN) != 0 &&
	    memcmp(f->f_token, zero, QT_TOKEN_LEN) != 0)
		return NULL;
	return f;
}

/* A back's batch of close reports (back_flow_ended). */
static void
closed_batch(int node, const struct band_msg *bm)
{
	struct band_closed c;
	struct band_msg one = { .bm_type = BAND_CLOSED };
	struct flow *f;
	size_t i;

	for (i = 0; i + BAND_CLOSED_ENTRY <= bm->bm_plen;
	    i += BAND_CLOSED_ENTRY) {
		band_closed_get(bm->bm_payload + i, &c);
		if (c.c_svc >= qtd->cf->c_nsvcs)
			continue;
		memcpy(one.bm_token, c.c_token, QT_TOKEN_LEN);
		one.bm_cip = c.c_cip;
		one.bm_cport = c.c_cport;
		one.bm_svc = c.c_svc;
		if ((f = band_flow(node, &one)))
			front_closed(f, c.c_bytes, c.c_requests);
	}
}

static void	front_band_one(int, const struct band_msg *);

/* A back's batch of confirmations (back.c): each as its own CONFIRM. */
static void
confirm_batch(int node, const struct band_msg *bm)
{
	struct band_msg one;
	size_t i;

	for (i = 0; i + BAND_CONFIRM_ENTRY <= bm->bm_plen;
	    i += BAND_CONFIRM_ENTRY) {
		band_confirm_get(bm->bm_payload + i, &one);
		if (one.bm_svc >= qtd->cf->c_nsvcs)
			continue;
		front_band_one(node, &one);
	}
}

void
front_band(int node, const struct band_msg *bm)
{
	if (bm->bm_type == BAND_CHECK_REPLY) {
		check_reply(node, bm);
		return;
	}
	if (bm->bm_type == BAND_CLOSED) {
		closed_batch(node, bm);
		return;
	}
	if (bm->bm_type == BAND_CONFIRMS) {
		confirm_batch(node, bm);
		return;
	}
	front_band_one(node, bm);
}

/* One CONFIRM or REFUSE. */
static void
front_band_one(int node, const struct band_msg *bm)
{
	struct flow *f;

	if (!(f = band_flow(node, bm))) {
		/* Late or duplicate: nothing to do, unless it confirms a
		 * hand-off we took back and have since finished serving. */
		if (bm->bm_type == BAND_CONFIRM && tb_known(node,
		    bm->bm_token)) {
			struct band_msg ab = *bm;

			ab.bm_type = BAND_ABORT;
			ab.bm_status = 0;
			ab.bm_a = ab.bm_b = 0;
			ab.bm_payload = NULL;
			ab.bm_plen = 0;
			(void)band_send(node, &ab);
		}
		return;
	}
	switch (bm->bm_type) {
	case BAND_CONFIRM:
		front_confirmed(f);
		return;
	case BAND_REFUSE:
		front_refused(f, (int)bm->bm_status);
		return;
	default:
		return;
	}
}

/*
 * The front's watch of its steered flows, fed by NFLOG rules in our raw
 * chain (steer.c) that match only tuples in a steering set: a SYN on one
 * (a client reusing its port, at once), and the clients' FIN and RST (in
 * batches).  The back normally reports an end first; a FIN or RST only
 * makes the next sweep ask about the flow at once, so a flow whose back
 * has died is torn down in a second or two, not a flow-timeout.
 */
/*
 * The client opens a new connection on the tuple of a flow we still steer
 * or keep in grace: for the client, that flow is over.  Its steering must
 * go at once, before the new connection's next packet would follow it to
 * the old back (its SYN already reached us: SYNs are never steered), and
 * its record too, whose late teardown would hit the new flow's entries.
 */
static void
front_reused(uint32_t cip, uint16_t cport, uint16_t lport)
{
	struct flow *f;

	while ((f = flow_by_tuple(0, cip, cport, lport)) &&
	    (f->f_state == FS_HANDED_OFF || f->f_state == FS_GRACE ||
	    f->f_state == FS_REPLAYING ||
	    (f->f_state == FS_TAKEN_BACK && f->f_fd == -1))) {
		/* Still unconfirmed (the response and the client's close
		 * can beat the CONFIRM here): a CONFIRM that comes now is
		 * answered with ABORT, as after a take-back. */
		if (f->f_state == FS_REPLAYING)
			tb_remember(f);
		steer_del(f);
		steer_ct_delete(f);
		qtd->st.st_td_reuse++;
		flow_close(f, "client reused its port");
	}
}

static void
fin_pkt(const struct cap_pkt *p, void *arg)
{
	struct flow *f;

	(void)arg;
	if ((p->p_flags & (TH_SYN | TH_ACK)) == TH_SYN) {
		/* A duplicate of the SYN of the very connection we have
		 * since handed off (same ISN) is no reuse at all. */
		f = flow_by_tuple(0, p->p_src, htons(p->p_sport),
		    htons(p->p_dport));
		if (f && f->f_isn == p->p_seq && f->f_state != FS_GRACE)
			return;
		front_reused(p->p_src, htons(p->p_sport), htons(p->p_dport));
		return;
	}
	f = flow_by_tuple(0, p->p_src, htons(p->p_sport), htons(p->p_dport));
	if (!f || f->f_state != FS_HANDED_OFF)
		return;
	if (p->p_flags & TH_RST)
		f->f_rst = 1;
	else
		f->f_fin = 1;
	sweep_enter(f, SQ_URGENT);
}

static void
fin_ready(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	capture_dispatch(qtd->fin_cap);
}

void
front_watch_stop(void)
{
	if (!qtd->fin_cap)
		return;
	ev_io_stop(qtd->loop, &qtd->fin_cap_io);
	capture_close(qtd->fin_cap);
	qtd->fin_cap = NULL;
}

int
front_watch_start(void)
{
	char dev[32], err[512];

	/* Our raw-table rules (steer.c) log what the watch wants to the
	 * group: no filter here. */
	snprintf(dev, sizeof(dev), "nflog:%u", qtd->cf->c_nflog_group);
	qtd->fin_cap = capture_open(dev, "", fin_pkt, NULL, err, sizeof(err));
	if (!qtd->fin_cap) {
		log_err("FIN/RST watch on nflog group %u (nflog-group; is "
		    "another program bound to it?): %s",
		    qtd->cf->c_nflog_group, err);
		return -1;
	}
	ev_io_init(&qtd->fin_cap_io, fin_ready, capture_fd(qtd->fin_cap),
	    EV_READ);
	ev_io_start(qtd->loop, &qtd->fin_cap_io);
	return 0;
}

struct check_batch {
	uint8_t		cb_buf[BAND_PAYLOAD_MAX];
	size_t		cb_len;
};

static void
check_flush(int node, struct check_batch *cb, uint64_t now)
{
	struct band_msg bm = {
		.bm_type = BAND_CHECK,
		.bm_a = now,
		.bm_payload = cb->cb_buf,
		.bm_plen = (uint16_t)cb->cb_len,
	};

	if (cb->cb_len && band_send(node, &bm) == -1)
		log_debug("check to %s: %m", qtd->cf->c_nodes[node].n_name);
	cb->cb_len = 0;
}

/*
 * One handed-off flow the sweep looks at: torn down if its back has not
 * vouched for it within flow-timeout, else put in its back's CHECK batch.
 * Returns 0 if the flow is gone.
 */
static int
sweep_ask(struct flow *f, struct check_batch *batch, uint64_t now)
{
	struct check_batch *cb;

	if (now - f->f_checked > qtd->cf->c_flow_timeout) {
		qtd->st.st_td_sweep++;
		front_teardown(f, "swept: back silent");
		return 0;
	}
	cb = &batch[f->f_peer];
	memcpy(cb->cb_buf + cb->cb_len, &f->f_cip, 4);
	memcpy(cb->cb_buf + cb->cb_len + 4, &f->f_cport, 2);
	cb->cb_buf[cb->cb_len + 6] = (uint8_t)(f->f_svc >> 8);
	cb->cb_buf[cb->cb_len + 7] = (uint8_t)f->f_svc;
	cb->cb_len += BAND_ENTRY;
	f->f_asked = now;
	if (cb->cb_len + BAND_ENTRY > sizeof(cb->cb_buf))
		check_flush(f->f_peer, cb, now);
	return 1;
}

/*
 * Ask the backs about the handed-off flows that are due: each flow every
 * sweep-interval, and every second those whose client was seen to close
 * or reset (or that were adopted at start).  Only due flows are walked:
 * the queues are in order of asking, so a walk stops at the first flow
 * that is not, and its cost does not grow with the number of live flows.
 *
 * The walk runs when the next flow falls due, but no sooner than
 * SWEEP_BATCH_MS after the last one.  Run once a second, it held the loop
 * for 2-3 ms (8 ms once) at 50,000 live flows, a second's worth of them
 * at a time, and the hand-offs behind it waited that long.  The price is
 * wake-ups: at 50,000 flows the idle daemon woke 80 times a second, not
 * 20 (each walk, then each back's reply), 0.5% of a core more on this
 * VM.  Spacing walks by the rate flows fell due at in the last one was
 * worse: after a quiet walk, the next took a second's worth again.
 */
#define SWEEP_BATCH_MS	50
#define URGENT_EVERY_MS	1000

static ev_timer	sweep_timer;
static uint64_t	urgent_at;	/* ms: the last pass over urgentq */

static void	sweep_run(struct ev_loop *, ev_timer *, int);

/* Puts a flow in a sweep queue, and makes sure a walk will come. */
static void
sweep_enter(struct flow *f, int q)
{
	flow_queue_enter(f, q);
	if (ev_is_active(&sweep_timer))
		return;
	ev_timer_init(&sweep_timer, sweep_run, SWEEP_BATCH_MS / 1e3, 0);
	ev_timer_start(qtd->loop, &sweep_timer);
}

static void
sweep_run(struct ev_loop *loop, ev_timer *w, int revents)
{
	const struct qt_config *cf = qtd->cf;
	static struct check_batch batch[QT_MAX_NODES];
	uint64_t now, since, next = URGENT_EVERY_MS;
	struct flow *f;
	size_t i, n;

	(void)revents;
	/* Replies waiting behind this timer in the loop turn first: a flow
	 * at the end of its flow-timeout may be vouched for there.  The
	 * time after them: they stamp f_checked with it. */
	band_poll();
	now = now_ms();
	/* Urgent ones, each asked at most once a second: one pass, bounded
	 * by their number now, as each goes back to the tail. */
	if (now - urgent_at >= URGENT_EVERY_MS) {
		urgent_at = now;
		for (n = qtd->n_urgent; n > 0 &&
		    (f = TAILQ_FIRST(&qtd->urgentq)); n--) {
			if (now - f->f_asked < 1000)
				flow_queue_enter(f, SQ_URGENT);	/* not yet */
			else if (sweep_ask(f, batch, now))
				flow_queue_enter(f, f->f_fin || f->f_rst ?
				    SQ_URGENT : SQ_NORMAL);
		}
	}
	while ((f = TAILQ_FIRST(&qtd->sweepq))) {
		since = f->f_asked > f->f_checked ? f->f_asked : f->f_checked;
		if (now - since < cf->c_sweep_interval) {
			/* At most a second away, so that a reload that
			 * shortens sweep-interval takes hold soon. */
			if (since + cf->c_sweep_interval - now < next)
				next = since + cf->c_sweep_interval - now;
			break;
		}
		if (sweep_ask(f, batch, now))
			flow_queue_enter(f, SQ_NORMAL);
	}
	for (i = 0; i < cf->c_nnodes; i++)
		check_flush((int)i, &batch[i], now);
	if (qtd->n_urgent && urgent_at + URGENT_EVERY_MS - now < next)
		next = urgent_at + URGENT_EVERY_MS - now;
	if (!qtd->n_urgent && TAILQ_EMPTY(&qtd->sweepq))
		return;		/* the next sweep_enter() arms it */
	if (next < SWEEP_BATCH_MS)
		next = SWEEP_BATCH_MS;
	ev_timer_set(w, next / 1e3, 0);
	ev_timer_start(loop, w);
}

struct adopt_ctx {
	size_t	svc;
	int	peer;
	size_t	n;
};

static void
adopt_entry(uint32_t cip, uint16_t cport, uint32_t dip, void *arg)
{
	struct adopt_ctx *ac = arg;
	const struct qt_config *cf = qtd->cf;
	struct flow *f;

	if (dip != config_self(cf)->n_addr || !(f = flow_new(0)))
		return;
	flow_set_state(f, FS_HANDED_OFF);
	f->f_svc = ac->svc;
	f->f_peer = ac->peer;
	f->f_cip = cip;
	f->f_cport = htons(cport);
	f->f_laddr = dip;
	f->f_lport = htons(cf->c_svcs[ac->svc].s_port);
	f->f_steered = 1;
	/* Due for a check at the first sweep, with a whole flow-timeout
	 * for the back to answer. */
	f->f_checked = now_ms() - cf->c_sweep_interval;
	snprintf(f->f_reqline, sizeof(f->f_reqline), "(adopted)");
	flow_tuple_add(f);
	sweep_enter(f, SQ_URGENT);
	qtd->st.st_adopted++;
	ac->n++;
}

struct stale_ctx {
	size_t	svc;
	size_t	n;
};

/* A DNATed conntrack entry to our service whose flow is in no set: left
 * by a previous instance, it would bend a new connection on that port. */
static void
stale_ct(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport,
    uint32_t rsrc, uint16_t rsport, void *arg)
{
	struct stale_ctx *sc = arg;
	struct flow *f;

	(void)rsport;
	if (rsrc == dst)
		return;		/* not DNATed: not ours */
	f = flow_by_tuple(0, src, htons(sport), htons(dport));
	if (f && f->f_steered)
		return;
	if (qct_delete(qtd->ct, src, sport, dst, dport) == 0)
		sc->n++;
}

/*
 * After a restart: the kernel still steers the flows a previous instance
 * handed off.  Rebuild their records from the sets, so that the backs'
 * reports and the sweep tear them down in time; drop conntrack entries
 * no set entry needs any more.
 */
void
front_adopt(void)
{
	const struct qt_config *cf = qtd->cf;
	struct adopt_ctx ac = { 0 };
	struct stale_ctx sc = { 0 };
	char name[32];
	size_t s, p;

	for (s = 0; s < cf->c_nsvcs; s++)
		for (p = 0; p < cf->c_nnodes; p++) {
			if ((int)p == cf->c_self ||
			    cf->c_nodes[p].n_mode == NM_PROXY)
				continue;
			steer_set_name(s, cf->c_nodes[p].n_id, name,
			    sizeof(name));
			ac.svc = s;
			ac.peer = (int)p;
			if (qset_list(qtd->set, name, adopt_entry, &ac) == -1)
				log_warn("listing set %s: %s, ignoring", name,
				    qset_strerror(qtd->set));
		}
	for (s = 0; s < cf->c_nsvcs; s++) {
		sc.svc = s;
		if (qct_list(qtd->ct, config_self(cf)->n_addr,
		    cf->c_svcs[s].s_port, stale_ct, &sc) == -1)
			log_warn("listing conntrack entries: %m, ignoring");
	}
	if (ac.n || sc.n)
		log_notice("adopted %zu handed-off flows from a previous "
		    "instance, removed %zu stale conntrack entries", ac.n,
		    sc.n);
}
