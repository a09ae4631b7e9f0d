/*
 * The relay: a connection's bytes passed, both ways, between the client
 * and a server of the operator's (the node's own nginx, or a plain HTTP
 * node the front proxies to).  splice() through a pipe per direction, so
 * the bytes never enter user space; a half-close on one side is passed on
 * to the other; the relay is per connection, so keep-alive and pipelining
 * need no understanding here.
 *
 * Before the server has sent a byte, a failure is the client's business
 * as a proxy would make it: 502 if the server cannot be reached or drops
 * the request, 504 if it does not answer within upstream-timeout.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qtd.h"

#define RELAY_CHUNK	(64 * 1024)

static void	relay_cb_client(struct ev_loop *, ev_io *, int);
static void	relay_cb_up(struct ev_loop *, ev_io *, int);
static void	relay_step(struct flow *);
static int	relay_connect(struct flow *, const struct sockaddr_storage *,
		    socklen_t);

/*
 * Spare upstream connections.  Most of a relayed connection's time to
 * first byte is the hop to the node's own server: a loopback connect,
 * whose handshake runs in our context, and the server waking to accept
 * before it can read.  So each service with an upstream keeps
 * upstream-spare connections open ahead of need, made while the loop has
 * nothing else to do, and a relay starts by writing the request on one
 * the server has already accepted.
 *
 * A spare serves one client connection and closes with it: the relay
 * stays a byte pipe, with no reuse across clients to get wrong.  Spares
 * older than upstream-spare-age are replaced before the server's own
 * limit for a connection without a request closes them (nginx's
 * client_header_timeout, 60 s by default).  One the server closed anyway
 * is found when taken (poll), or, if it closes as our request goes out,
 * by the relay, which then sends the request again, once, on a fresh
 * connection: a client must not get a 502 a plain proxy would not give.
 */
#define SPARE_MAX		64
#define SPARE_BACKOFF_MS	1000

struct spare_pool {
	struct sockaddr_storage	 sp_addr;	/* what the spares connect to */
	socklen_t		 sp_alen;	/* 0: none yet */
	int			 sp_fd[SPARE_MAX];	/* a ring, oldest at */
	uint64_t		 sp_t0[SPARE_MAX];	/* sp_head; ms made */
	unsigned		 sp_head, sp_n;
	uint64_t		 sp_retry;	/* ms: the upstream failed a
						 * spare; none made before */
};

static struct spare_pool	spares[QT_MAX_SVCS];
static ev_idle			spare_idle;
static unsigned			relay_nawait;	/* relay_awaiting() */

static unsigned
spare_target(size_t svc)
{
	const struct qt_config *cf = qtd->cf;

	if (svc >= cf->c_nsvcs || !cf->c_svcs[svc].s_uplen)
		return 0;
	return cf->c_upstream_spare < SPARE_MAX ? cf->c_upstream_spare :
	    SPARE_MAX;
}

static int
spare_pop(struct spare_pool *sp, uint64_t *t0)
{
	int fd = sp->sp_fd[sp->sp_head];

	*t0 = sp->sp_t0[sp->sp_head];
	sp->sp_head = (sp->sp_head + 1) % SPARE_MAX;
	sp->sp_n--;
	return fd;
}

static void
spare_push(struct spare_pool *sp, int fd, uint64_t t0)
{
	unsigned i = (sp->sp_head + sp->sp_n) % SPARE_MAX;

	sp->sp_fd[i] = fd;
	sp->sp_t0[i] = t0;
	sp->sp_n++;
}

static void
spare_flush(struct spare_pool *sp)
{
	uint64_t t0;

	while (sp->sp_n)
		(void)close(spare_pop(sp, &t0));
}

/* The pool of svc, emptied first if the service's upstream has changed
 * (a reload) since its spares were made. */
static struct spare_pool *
spare_pool(size_t svc)
{
	const struct qt_service *sv = &qtd->cf->c_svcs[svc];
	struct spare_pool *sp = &spares[svc];

	if (sp->sp_alen != sv->s_uplen ||
	    memcmp(&sp->sp_addr, &sv->s_upstream, sv->s_uplen) != 0) {
		spare_flush(sp);
		memcpy(&sp->sp_addr, &sv->s_upstream, sizeof(sp->sp_addr));
		sp->sp_alen = sv->s_uplen;
		sp->sp_retry = 0;
	}
	return sp;
}

/*
 * 1 if pool s is short of spares and may make one now.  While a relay
 * waits for its server, a pool at least half full waits too: the loop
 * going idle then means only that the server has not run yet, and a
 * connect (and the server's accept) would come before its answer.
 * relay_answered() asks again.
 */
static int
spare_may_fill(size_t s, uint64_t now)
{
	unsigned target = spare_target(s);

	return spares[s].sp_n < target && now >= spares[s].sp_retry &&
	    (relay_nawait == 0 || spares[s].sp_n < (target + 1) / 2);
}

/* 1 if some pool may make a spare now. */
static int
spare_short(uint64_t now)
{
	size_t s;

	for (s = 0; s < qtd->cf->c_nsvcs; s++)
		if (spare_may_fill(s, now))
			return 1;
	return 0;
}

/*
 * A socket for a connection to a server.  A TCP one without Nagle: the
 * relay forwards the client's bytes as they come, and with Nagle the
 * tail of a request body waited for the server's ACK of what went
 * before, which a server delaying its ACKs holds 40 ms.
 */
static int
upstream_socket(int family)
{
	int fd, saved;

	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 || family == AF_UNIX)
		return fd;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 },
	    sizeof(int)) == -1) {
		saved = errno;
		(void)close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Idle: one new spare per call, for the first pool short of them, so a
 * burst of refills never holds up the loop. */
static void
spare_fill(struct ev_loop *loop, ev_idle *w, int revents)
{
	uint64_t now = now_ms();
	struct spare_pool *sp;
	size_t s;
	int fd;

	(void)revents;
	for (s = 0; s < qtd->cf->c_nsvcs; s++) {
		if (!spare_may_fill(s, now))
			continue;
		sp = spare_pool(s);
		fd = upstream_socket(sp->sp_addr.ss_family);
		if (fd == -1 || (connect(fd, (struct sockaddr *)&sp->sp_addr,
		    sp->sp_alen) == -1 && errno != EINPROGRESS)) {
			if (fd != -1)
				(void)close(fd);
			sp->sp_retry = now + SPARE_BACKOFF_MS;
			break;
		}
		spare_push(sp, fd, now);
		break;
	}
	if (!spare_short(now))
		ev_idle_stop(loop, w);
}

static void
spare_want(void)
{
	if (ev_is_active(&spare_idle) || !spare_short(now_ms()))
		return;
	ev_idle_init(&spare_idle, spare_fill);
	ev_idle_start(qtd->loop, &spare_idle);
}

/*
 * What one poll() says of a spare: writable only, connected and idle
 * (SPARE_LIVE); nothing yet, still connecting (SPARE_WAIT); readable or
 * hung up, closed by the server (its limit for an idle connection is
 * shorter than our upstream-spare-age: SPARE_DEAD) or refused (the
 * server is down: SPARE_REFUSED, and none is made for a while).
 */
enum { SPARE_LIVE, SPARE_WAIT, SPARE_DEAD, SPARE_REFUSED };

static int
spare_state(short revents)
{
	if (revents == POLLOUT)
		return SPARE_LIVE;
	if (revents == 0)
		return SPARE_WAIT;
	if (revents & (POLLERR | POLLHUP) && !(revents & POLLIN))
		return SPARE_REFUSED;
	return SPARE_DEAD;
}

#define SPARE_EVENTS	(POLLOUT | POLLIN | POLLRDHUP)

/* A connected, live spare of svc's upstream, oldest first, or -1. */
static int
spare_take(size_t svc)
{
	struct spare_pool *sp;
	struct pollfd pfd;
	uint64_t now, t0;
	unsigned n;
	int fd, st;

	if (!spare_target(svc))
		return -1;
	sp = spare_pool(svc);
	now = now_ms();
	for (n = sp->sp_n; n > 0; n--) {
		fd = spare_pop(sp, &t0);
		if (now - t0 > qtd->cf->c_upstream_spare_age) {
			(void)close(fd);
			continue;
		}
		pfd.fd = fd;
		pfd.events = SPARE_EVENTS;
		pfd.revents = 0;
		st = poll(&pfd, 1, 0) == -1 ? SPARE_DEAD :
		    spare_state(pfd.revents);
		/* Its replacement is made once the relay is answered
		 * (relay_answered): a connect now would run before the
		 * server, which has our request, can. */
		if (st == SPARE_LIVE)
			return fd;
		if (st == SPARE_WAIT) {
			spare_push(sp, fd, t0);
			continue;
		}
		if (st == SPARE_REFUSED)
			sp->sp_retry = now + SPARE_BACKOFF_MS;
		(void)close(fd);
	}
	spare_want();
	return -1;
}

/*
 * Once a second: every spare looked at in one poll() per pool; those
 * closed, refused or past their age go, pools above their (reloaded)
 * size shrink, short ones refill.  So the pool is ready when a burst
 * comes, not full of connections the server has since dropped.
 */
void
relay_sweep(void)
{
	struct pollfd pfd[SPARE_MAX];
	uint64_t now = now_ms(), t0[SPARE_MAX], t;
	struct spare_pool *sp;
	unsigned i, n, target;
	size_t s;
	int st;

	for (s = 0; s < QT_MAX_SVCS; s++) {
		sp = &spares[s];
		if (!sp->sp_n)
			continue;
		for (n = 0; sp->sp_n; n++) {
			pfd[n].fd = spare_pop(sp, &t0[n]);
			pfd[n].events = SPARE_EVENTS;
			pfd[n].revents = 0;
		}
		if (poll(pfd, n, 0) == -1)
			for (i = 0; i < n; i++)
				pfd[i].revents = POLLOUT;	/* keep; take checks */
		target = spare_target(s);
		for (i = 0; i < n; i++) {
			st = spare_state(pfd[i].revents);
			t = t0[i];
			if (st == SPARE_REFUSED)
				sp->sp_retry = now + SPARE_BACKOFF_MS;
			if (st == SPARE_DEAD || st == SPARE_REFUSED ||
			    now - t > qtd->cf->c_upstream_spare_age ||
			    sp->sp_n >= target)
				(void)close(pfd[i].fd);
			else
				spare_push(sp, pfd[i].fd, t);
		}
	}
	spare_want();
}

/*
 * Pipes kept for the next relay.  A relay splices through two, and making
 * and closing them per connection is six system calls and two pipe
 * inodes made and freed; one that a relay left empty is as good as new.
 * What is in a pipe is known exactly (f_ncu, f_nuc count the bytes
 * spliced in and not yet out), so one with bytes left, from a relay cut
 * short, is closed instead.
 */
#define PIPE_KEEP	64

static int	pipe_kept[PIPE_KEEP][2];
static unsigned	pipe_nkept;

static int
pipe_get(int p[2])
{
	if (pipe_nkept == 0)
		return pipe2(p, O_NONBLOCK | O_CLOEXEC);
	pipe_nkept--;
	p[0] = pipe_kept[pipe_nkept][0];
	p[1] = pipe_kept[pipe_nkept][1];
	return 0;
}

static void
pipe_put(int p[2], size_t inpipe)
{
	if (p[0] == -1)
		return;
	if (inpipe == 0 && pipe_nkept < PIPE_KEEP) {
		pipe_kept[pipe_nkept][0] = p[0];
		pipe_kept[pipe_nkept][1] = p[1];
		pipe_nkept++;
	} else {
		(void)close(p[0]);
		(void)close(p[1]);
	}
	p[0] = p[1] = -1;
}

/* At stop: the spares and the kept pipes. */
void
relay_spares_close(void)
{
	size_t s;

	if (ev_is_active(&spare_idle))
		ev_idle_stop(qtd->loop, &spare_idle);
	for (s = 0; s < QT_MAX_SVCS; s++)
		spare_flush(&spares[s]);
	while (pipe_nkept > 0) {
		pipe_nkept--;
		(void)close(pipe_kept[pipe_nkept][0]);
		(void)close(pipe_kept[pipe_nkept][1]);
	}
}

unsigned
relay_awaiting(void)
{
	return relay_nawait;
}

/* The request of f is with its server: the loop's next sleep is for it. */
static void
relay_asked(struct flow *f)
{
	if (f->f_up_await || f->f_rbytes != 0)
		return;
	f->f_up_await = 1;
	relay_nawait++;
}

/* f's server answered (or the relay ended): the first bytes are on their
 * way to the client, and what was left for this moment can run. */
static void
relay_answered(struct flow *f)
{
	if (!f->f_up_await)
		return;
	f->f_up_await = 0;
	relay_nawait--;
	spare_want();
}

/* Releases what the relay holds; the client's descriptor stays. */
void
relay_release(struct flow *f)
{
	if (!f->f_relay)
		return;
	relay_answered(f);
	ev_io_stop(qtd->loop, &f->f_up_io);
	if (f->f_up_fd != -1)
		(void)close(f->f_up_fd);
	f->f_up_fd = -1;
	pipe_put(f->f_pcu, f->f_ncu);
	pipe_put(f->f_puc, f->f_nuc);
	f->f_relay = 0;
}

/* A failure before the server said anything: answer as a proxy would. */
static void
relay_fail(struct flow *f, int status, const char *why)
{
	/* A spare that failed before the server said a word, with nothing
	 * of the client's sent on it but what we still hold: the server had
	 * closed it (its idle limit), so the request goes again, once, on a
	 * fresh connection. */
	if (status == 502 && f->f_up_spare && f->f_rbytes == 0 &&
	    f->f_nuc == 0 && f->f_cbytes == 0) {
		const struct qt_service *sv = &qtd->cf->c_svcs[f->f_svc];

		qtd->st.st_upstream_retries++;
		flow_log(f, flow_step_level(), "upstream", "%s on a spare "
		    "connection: sending the request again", why);
		ev_io_stop(qtd->loop, &f->f_up_io);
		(void)close(f->f_up_fd);
		f->f_up_fd = -1;
		f->f_up_spare = 0;
		f->f_preoff = 0;
		f->f_eof_u = 0;
		f->f_shut_u = 0;
		f->f_rd_u = 1;
		if (relay_connect(f, &sv->s_upstream, sv->s_uplen) == 0)
			return;
		why = errno == ECONNREFUSED ? "upstream refused the connection" :
		    "upstream unreachable";
	}
	if (status == 502)
		qtd->st.st_upstream_502++;
	else
		qtd->st.st_upstream_504++;
	flow_log(f, LOG_L_WARN, "upstream", "%s: answering %d", why, status);
	relay_release(f);
	if (f->f_rbytes == 0) {
		serve_error_quiet(f, status);
		return;
	}
	flow_finish(f, why);
}

static void
relay_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct flow *f = container_of(w, struct flow, f_timer);

	(void)loop;
	(void)revents;
	if (f->f_rbytes == 0) {
		relay_fail(f, 504, "upstream did not answer in time");
		return;
	}
	relay_release(f);
	flow_finish(f, "idle timeout");
}

static void
relay_arm(struct flow *f, int client_ev, int up_ev)
{
	if (client_ev != f->f_io.events || !ev_is_active(&f->f_io)) {
		ev_io_stop(qtd->loop, &f->f_io);
		ev_io_set(&f->f_io, f->f_fd, client_ev);
		if (client_ev)
			ev_io_start(qtd->loop, &f->f_io);
	}
	if (up_ev != f->f_up_io.events || !ev_is_active(&f->f_up_io)) {
		ev_io_stop(qtd->loop, &f->f_up_io);
		ev_io_set(&f->f_up_io, f->f_up_fd, up_ev);
		if (up_ev)
			ev_io_start(qtd->loop, &f->f_up_io);
	}
}

/*
 * One direction: src -> pipe -> dst.  Returns the events it waits for on
 * src (EV_READ) and dst (EV_WRITE) through *want_src / *want_dst, 1 when
 * it moved bytes, 0 when it is blocked or done, -1 on an error of src
 * (*side = 0) or dst (*side = 1).  src is read only while *ready (set by
 * a poll that found it readable, cleared by EAGAIN): a relay would
 * otherwise try both sources after every event, and most of those tries
 * fail, a system call each.
 */
static int
relay_dir(int src, int dst, int *pipe, size_t *inpipe, int *eof, int *shut,
    int *ready, int *want_src, int *want_dst, uint64_t *moved, int *side)
{
	ssize_t n;

	*want_src = *want_dst = 0;
	if (*inpipe) {
		n = splice(pipe[0], NULL, dst, NULL, *inpipe,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n == -1) {
			if (errno == EAGAIN) {
				*want_dst = 1;
				return 0;
			}
			*side = 1;
			return -1;
		}
		*inpipe -= (size_t)n;
		*moved += (uint64_t)n;
		return 1;
	}
	if (*eof) {
		if (!*shut) {
			(void)shutdown(dst, SHUT_WR);	/* pass the half-close on */
			*shut = 1;
		}
		return 0;
	}
	if (!*ready) {
		*want_src = 1;
		return 0;
	}
	n = splice(src, NULL, pipe[1], NULL, RELAY_CHUNK,
	    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (n == -1) {
		if (errno == EAGAIN) {
			*ready = 0;
			*want_src = 1;
			return 0;
		}
		*side = 0;
		return -1;
	}
	if (n == 0) {
		*eof = 1;
		return 1;
	}
	*inpipe += (size_t)n;
	return 1;
}

static void
relay_step(struct flow *f)
{
	int ws1, wd1, ws2, wd2, side, rc1, rc2, rounds;
	uint64_t before;
	ssize_t n;

	/* The request bytes we already hold go first. */
	while (f->f_preoff < f->f_blen) {
		n = send(f->f_up_fd, f->f_buf + f->f_preoff,
		    f->f_blen - f->f_preoff, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EAGAIN) {
				relay_arm(f, 0, EV_WRITE);
				return;
			}
			relay_fail(f, 502, "upstream dropped the request");
			return;
		}
		f->f_preoff += (size_t)n;
	}
	relay_asked(f);
	for (rounds = 0; rounds < 64; rounds++) {
		rc1 = relay_dir(f->f_fd, f->f_up_fd, f->f_pcu, &f->f_ncu,
		    &f->f_eof_c, &f->f_shut_u, &f->f_rd_c, &ws1, &wd1,
		    &f->f_cbytes, &side);
		if (rc1 == -1) {
			if (side == 1 && f->f_rbytes == 0) {
				relay_fail(f, 502, "upstream dropped the request");
				return;
			}
			relay_release(f);
			flow_close(f, side ? "upstream reset" : "client reset");
			return;
		}
		before = f->f_rbytes;
		rc2 = relay_dir(f->f_up_fd, f->f_fd, f->f_puc, &f->f_nuc,
		    &f->f_eof_u, &f->f_shut_c, &f->f_rd_u, &ws2, &wd2,
		    &f->f_rbytes, &side);
		if (rc2 == -1) {
			if (side == 0 && f->f_rbytes == 0) {
				relay_fail(f, 502, "upstream reset");
				return;
			}
			relay_release(f);
			flow_close(f, side ? "client reset" : "upstream reset");
			return;
		}
		if (f->f_rbytes != before) {
			f->f_bytes += f->f_rbytes - before;
			if (f->f_proxy)
				qtd->st.st_proxy_bytes += f->f_rbytes - before;
			else
				qtd->st.st_bytes_served += f->f_rbytes - before;
			/* Answering: from now on only idleness ends it. */
			f->f_timer.repeat = qtd->cf->c_idle_timeout / 1000.0;
			ev_timer_again(qtd->loop, &f->f_timer);
			relay_answered(f);
			flow_answered(f);
		}
		/* Before the half-close is passed on to the client, who
		 * would get a bare FIN instead of the 502. */
		if (f->f_eof_u && f->f_nuc == 0 && f->f_rbytes == 0) {
			/* The server closed without a word: as a proxy. */
			relay_fail(f, 502, "upstream closed without answering");
			return;
		}
		if (f->f_eof_c && f->f_eof_u && !f->f_ncu && !f->f_nuc) {
			relay_release(f);
			flow_finish(f, "relay complete");
			return;
		}
		if (rc1 == 0 && rc2 == 0)
			break;
	}
	relay_arm(f, (ws1 ? EV_READ : 0) | (wd2 ? EV_WRITE : 0),
	    (ws2 ? EV_READ : 0) | (wd1 ? EV_WRITE : 0));
	if (rounds == 64)	/* busy: come back after other work */
		ev_feed_event(qtd->loop, &f->f_up_io, EV_CUSTOM);
}

static void
relay_connected(struct flow *f)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(f->f_up_fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 ||
	    err != 0) {
		errno = err;
		relay_fail(f, 502, err == ECONNREFUSED ?
		    "upstream refused the connection" :
		    "upstream unreachable");
		return;
	}
	f->f_up_connected = 1;
	relay_step(f);
}

static void
relay_cb_up(struct ev_loop *loop, ev_io *w, int revents)
{
	struct flow *f = container_of(w, struct flow, f_up_io);

	(void)loop;
	if (revents & EV_READ)
		f->f_rd_u = 1;
	if (!f->f_up_connected)
		relay_connected(f);
	else
		relay_step(f);
}

static void
relay_cb_client(struct ev_loop *loop, ev_io *w, int revents)
{
	struct flow *f = container_of(w, struct flow, f_io);

	(void)loop;
	if (revents & EV_READ)
		f->f_rd_c = 1;
	relay_step(f);
}

/*
 * Opens the relay's upstream connection to addr: 0, or -1 with errno if
 * it could not even be started.
 */
static int
relay_connect(struct flow *f, const struct sockaddr_storage *addr,
    socklen_t alen)
{
	int fd;

	if ((fd = upstream_socket(addr->ss_family)) == -1)
		return -1;
	f->f_up_fd = fd;
	f->f_up_connected = 0;
	if (connect(fd, (const struct sockaddr *)addr, alen) == -1 &&
	    errno != EINPROGRESS)
		return -1;
	relay_arm(f, 0, EV_WRITE);
	return 0;
}

/*
 * Starts relaying flow f to the server at addr (proxy: a plain node; else
 * the node's own upstream, on a spare connection if one is ready).
 * Whatever f_buf holds is the start of the client's byte stream and goes
 * to the server first.
 */
void
relay_start(struct flow *f, const struct sockaddr_storage *addr,
    socklen_t alen, int proxy)
{
	flow_stop_watchers(f);
	f->f_relay = 1;
	f->f_proxy = proxy;
	f->f_up_fd = -1;
	f->f_up_spare = 0;
	f->f_up_await = 0;
	f->f_pcu[0] = f->f_pcu[1] = f->f_puc[0] = f->f_puc[1] = -1;
	f->f_preoff = 0;
	f->f_requests++;
	if (proxy)
		qtd->st.st_proxied++;
	else
		qtd->st.st_relayed++;
	f->f_ncu = f->f_nuc = 0;
	/* The client's bytes so far are in f_buf: its socket is read once a
	 * poll says there is more.  The server's is tried at once, as it may
	 * have answered by the time the request is written; waiting for a
	 * poll there measured as fewer hand-offs a second. */
	f->f_rd_c = 0;
	f->f_rd_u = 1;
	if (pipe_get(f->f_pcu) == -1 || pipe_get(f->f_puc) == -1) {
		relay_fail(f, 502, "no pipe for the relay");
		return;
	}
	ev_init(&f->f_up_io, relay_cb_up);
	ev_init(&f->f_io, relay_cb_client);
	ev_init(&f->f_timer, relay_timeout);
	f->f_timer.repeat = qtd->cf->c_upstream_timeout / 1000.0;
	ev_timer_again(qtd->loop, &f->f_timer);
	if (!proxy && (f->f_up_fd = spare_take(f->f_svc)) != -1) {
		qtd->st.st_upstream_spare++;
		f->f_up_spare = 1;
		f->f_up_connected = 1;
		relay_step(f);
		return;
	}
	if (relay_connect(f, addr, alen) == -1)
		relay_fail(f, 502, errno == ECONNREFUSED ?
		    "upstream refused the connection" : "upstream unreachable");
}
