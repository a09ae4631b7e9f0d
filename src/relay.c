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
#include <errno.h>
#include <fcntl.h>
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

/* Releases what the relay holds; the client's descriptor stays. */
void
relay_release(struct flow *f)
{
	int i;

	if (!f->f_relay)
		return;
	ev_io_stop(qtd->loop, &f->f_up_io);
	if (f->f_up_fd != -1)
		(void)close(f->f_up_fd);
	f->f_up_fd = -1;
	for (i = 0; i < 2; i++) {
		if (f->f_pcu[i] != -1)
			(void)close(f->f_pcu[i]);
		if (f->f_puc[i] != -1)
			(void)close(f->f_puc[i]);
		f->f_pcu[i] = f->f_puc[i] = -1;
	}
	f->f_relay = 0;
}

/* A failure before the server said anything: answer as a proxy would. */
static void
relay_fail(struct flow *f, int status, const char *why)
{
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
 * (*side = 0) or dst (*side = 1).
 */
static int
relay_dir(int src, int dst, int *pipe, size_t *inpipe, int *eof, int *shut,
    int *want_src, int *want_dst, uint64_t *moved, int *side)
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
	n = splice(src, NULL, pipe[1], NULL, RELAY_CHUNK,
	    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (n == -1) {
		if (errno == EAGAIN) {
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
	for (rounds = 0; rounds < 64; rounds++) {
		rc1 = relay_dir(f->f_fd, f->f_up_fd, f->f_pcu, &f->f_ncu,
		    &f->f_eof_c, &f->f_shut_u, &ws1, &wd1, &f->f_cbytes, &side);
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
		    &f->f_eof_u, &f->f_shut_c, &ws2, &wd2, &f->f_rbytes, &side);
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
		}
		if (f->f_eof_u && f->f_nuc == 0 && f->f_rbytes == 0 &&
		    f->f_shut_c) {
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
	(void)revents;
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
	(void)revents;
	relay_step(f);
}

/*
 * Starts relaying flow f to the server at addr.  Whatever f_buf holds is
 * the start of the client's byte stream and goes to the server first.
 */
void
relay_start(struct flow *f, const struct sockaddr_storage *addr,
    socklen_t alen, int proxy)
{
	int fd;

	flow_stop_watchers(f);
	f->f_relay = 1;
	f->f_proxy = proxy;
	f->f_up_fd = -1;
	f->f_pcu[0] = f->f_pcu[1] = f->f_puc[0] = f->f_puc[1] = -1;
	f->f_preoff = 0;
	f->f_requests++;
	if (proxy)
		qtd->st.st_proxied++;
	else
		qtd->st.st_relayed++;
	if (pipe2(f->f_pcu, O_NONBLOCK | O_CLOEXEC) == -1 ||
	    pipe2(f->f_puc, O_NONBLOCK | O_CLOEXEC) == -1) {
		relay_fail(f, 502, "no pipe for the relay");
		return;
	}
	fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1) {
		relay_fail(f, 502, "no socket for the upstream");
		return;
	}
	f->f_up_fd = fd;
	ev_init(&f->f_up_io, relay_cb_up);
	ev_init(&f->f_io, relay_cb_client);
	ev_init(&f->f_timer, relay_timeout);
	f->f_timer.repeat = qtd->cf->c_upstream_timeout / 1000.0;
	ev_timer_again(qtd->loop, &f->f_timer);
	if (connect(fd, (const struct sockaddr *)addr, alen) == -1 &&
	    errno != EINPROGRESS) {
		relay_fail(f, 502, errno == ECONNREFUSED ?
		    "upstream refused the connection" : "upstream unreachable");
		return;
	}
	f->f_up_connected = 0;
	relay_arm(f, 0, EV_WRITE);
}
