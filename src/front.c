/*
 * The front: accept a client, read its first request, pick the node that
 * serves it, and either serve it here or hand the connection off:
 *
 *   steer      the flow joins the back's set; its old conntrack entry goes
 *   freeze     TCP_REPAIR on our socket, its exact state read
 *   replay     SYN, ACK and request, as the client, marked and with the
 *              authenticated header, to the back's hand-off port
 *   confirm    the back's CONFIRM arrives: our frozen socket closes silently
 *
 * Without a confirmation after the configured tries, or on a REFUSE, the
 * front takes the connection back: unsteer, thaw, serve it here.  The
 * client then sees nothing but a slightly later response.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qtd.h"

static void	front_read(struct ev_loop *, ev_io *, int);

static int
pick_node(const struct flow *f, const struct http_req *r)
{
	const struct qt_config *cf = qtd->cf;
	struct chash_node nodes[QT_MAX_NODES];
	char path[PATH_MAX];
	size_t i;
	int len;

	(void)f;
	if ((len = http_path(r->hr_target, r->hr_target_len, path,
	    sizeof(path))) < 0)
		return -1;
	for (i = 0; i < cf->c_nnodes; i++) {
		nodes[i].cn_id = cf->c_nodes[i].n_id;
		nodes[i].cn_weight = cf->c_nodes[i].n_weight;
		nodes[i].cn_up = cf->c_nodes[i].n_up;
	}
	return chash_pick(nodes, cf->c_nnodes, chash_key(path, (size_t)len));
}

static void
take_back(struct flow *f, const char *why)
{
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
	f->f_state = FS_TAKEN_BACK;
	qtd->st.st_taken_back++;
	flow_log(f, LOG_L_WARN, "taken-back", "hand-off to %s failed (%s): "
	    "serving it here", qtd->cf->c_nodes[f->f_peer].n_name, why);
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
	if (++f->f_tries >= qtd->cf->c_handoff_tries) {
		take_back(f, "no confirmation");
		return;
	}
	qtd->st.st_resends++;
	flow_log(f, LOG_L_INFO, "resend", "try %u", f->f_tries + 1);
	if (send_replay(f) == -1) {
		take_back(f, "replay send failed");
		return;
	}
	ev_timer_again(qtd->loop, &f->f_timer);
}

static void
hand_off(struct flow *f, int peer)
{
	char extra[16384];
	size_t elen;

	qtd->st.st_handoffs++;
	f->f_peer = peer;
	auth_random(f->f_token, sizeof(f->f_token));
	flow_hash_add(f);
	flow_stop_watchers(f);
	/* Steer first: from here on the client's packets go to the back,
	 * which drops them silently until its socket exists. */
	if (steer_add(f) == -1) {
		take_back(f, "ipset add failed");
		return;
	}
	steer_ct_delete(f);
	if (repair_freeze(f->f_fd, &f->f_rs, extra, sizeof(extra),
	    &elen) == -1) {
		f->f_frozen = 1;	/* repair mode may be on */
		take_back(f, strerror(errno));
		return;
	}
	f->f_frozen = 1;
	if (elen) {
		if (flow_buf_reserve(f, elen) == -1) {
			take_back(f, "out of memory");
			return;
		}
		memcpy(f->f_buf + f->f_blen, extra, elen);
		f->f_blen += elen;
	}
	if (f->f_blen > HDR_MAX_REQ) {
		take_back(f, "request too long to replay");
		return;
	}
	f->f_isn = f->f_rs.rs_rcv_nxt - 1 - (uint32_t)f->f_blen;
	f->f_state = FS_REPLAYING;
	if (send_replay(f) == -1) {
		take_back(f, "replay send failed");
		return;
	}
	ev_init(&f->f_timer, replay_timeout);
	f->f_timer.repeat = qtd->cf->c_handoff_timeout / 1000.0;
	ev_timer_again(qtd->loop, &f->f_timer);
}

static void
front_request(struct flow *f, const struct http_req *r)
{
	int node;

	flow_note_request(f, r);
	node = pick_node(f, r);
	if (node < 0 || node == qtd->cf->c_self) {
		/* Ours, or no node can take it (or a target we will refuse
		 * anyway): the responder answers. */
		f->f_state = FS_LOCAL;
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
	f->f_state = FS_LOCAL;
	serve_error(f, 408);
}

static void
front_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct flow *f = container_of(w, struct flow, f_io);
	struct http_req r;
	ssize_t n;
	int rc;

	(void)loop;
	(void)revents;
	if (flow_buf_reserve(f, 4096) == -1) {
		flow_close(f, "out of memory");
		return;
	}
	n = recv(f->f_fd, f->f_buf + f->f_blen, f->f_bcap - f->f_blen, 0);
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		flow_close(f, "read error");
		return;
	}
	if (n == 0) {
		flow_close(f, "client closed before a request");
		return;
	}
	f->f_blen += (size_t)n;
	rc = http_parse(f->f_buf, f->f_blen, qtd->cf->c_max_header, &r);
	if (rc == 0)
		return;
	if (rc < 0) {
		flow_stop_watchers(f);
		f->f_state = FS_LOCAL;
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
		len = sizeof(local);
		if (getsockname(fd, (struct sockaddr *)&local, &len) == -1 ||
		    !(f = flow_new(0))) {
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
		f->f_state = FS_READING;
		ev_io_init(&f->f_io, front_read, fd, EV_READ);
		ev_io_start(qtd->loop, &f->f_io);
		ev_timer_init(&f->f_timer, header_timeout,
		    qtd->cf->c_header_timeout / 1000.0, 0);
		ev_timer_start(qtd->loop, &f->f_timer);
	}
}

int
front_listen(void)
{
	const struct qt_config *cf = qtd->cf;
	size_t s;

	for (s = 0; s < cf->c_nsvcs; s++) {
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
		qtd->listen_fd[s] = fd;
		ev_io_init(&qtd->listen_io[s], front_accept, fd, EV_READ);
		ev_io_start(qtd->loop, &qtd->listen_io[s]);
	}
	return 0;
}

void
front_confirmed(struct flow *f)
{
	if (f->f_state == FS_TAKEN_BACK || f->f_state == FS_LOCAL ||
	    f->f_state == FS_CLOSING) {
		/* All our tries timed out, yet the back built the socket:
		 * only one of us may own the connection. */
		(void)band_send(f->f_peer, BAND_ABORT, f->f_token, 0, 0, 0);
		return;
	}
	if (f->f_state != FS_REPLAYING)
		return;
	ev_timer_stop(qtd->loop, &f->f_timer);
	repair_close(f->f_fd);
	f->f_fd = -1;
	f->f_frozen = 0;
	f->f_state = FS_HANDED_OFF;
	qtd->st.st_handed_off++;
	flow_log(f, LOG_L_INFO, "handed-off", "to %s after %u tries: %s",
	    qtd->cf->c_nodes[f->f_peer].n_name, f->f_tries + 1, f->f_reqline);
}

void
front_refused(struct flow *f, int err)
{
	char why[128];

	if (f->f_state != FS_REPLAYING)
		return;
	qtd->st.st_refused++;
	snprintf(why, sizeof(why), "refused by the back: %s", strerror(err));
	take_back(f, why);
}

static void
grace_over(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct flow *f = container_of(w, struct flow, f_timer);

	(void)loop;
	(void)revents;
	steer_ct_delete(f);
	flow_close(f, f->f_why ? f->f_why : "back reported close");
}

/*
 * The back's socket is fully closed: stop steering now (nothing of the
 * flow is left to deliver), and drop the conntrack entry after a grace
 * period, so that a client reusing the port starts clean.
 */
void
front_closed(struct flow *f, uint64_t bytes, unsigned requests)
{
	if (f->f_state == FS_REPLAYING)
		front_confirmed(f);	/* the confirmation was lost */
	if (f->f_state != FS_HANDED_OFF)
		return;
	f->f_bytes = bytes;
	f->f_requests = requests;
	steer_del(f);
	f->f_state = FS_GRACE;
	f->f_why = "back reported close";
	ev_timer_init(&f->f_timer, grace_over, qtd->cf->c_ct_grace / 1000.0, 0);
	ev_timer_start(qtd->loop, &f->f_timer);
}
