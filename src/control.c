/*
 * The control socket: an AF_UNIX stream socket, mode 0660, where qtctl
 * (or a test, or a monitoring agent) reads the daemon's state.  One
 * request per connection, framed as include/ctl.h describes; the reply
 * is a JSON document.  Anything malformed gets an ERROR reply and the
 * connection closes: a control client can never stop the daemon, block
 * its loop, or make it read more than one bounded request.
 *
 * Like a flow, a control connection owns its descriptor, watchers and
 * buffers and ends in exactly one place, ctl_close(); it is freed by a
 * reaper before the loop next waits, never inside its own callback.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "qtd.h"

#define CTL_MAX_CONNS		64
#define CTL_REQ_TIMEOUT		2.0	/* s, to send a whole request */
#define CTL_REPLY_TIMEOUT	10.0	/* s, to take a whole reply */
#define CTL_ACCEPT_PAUSE	1.0	/* s, after EMFILE */

struct ctl_conn {
	TAILQ_ENTRY(ctl_conn)	 cc_entry;
	int			 cc_fd;
	int			 cc_dead;
	int			 cc_writing;	/* the reply is going out */
	ev_io			 cc_io;
	ev_timer		 cc_timer;
	uint8_t			 cc_in[CTL_HDR_LEN + CTL_MAX_REQ];
	size_t			 cc_inlen;
	int			 cc_have_hdr;
	struct ctl_hdr		 cc_hdr;
	struct ctl_buf		 cc_out;	/* header and JSON */
	size_t			 cc_off;	/* bytes of cc_out sent */
};

TAILQ_HEAD(ctl_connq, ctl_conn);

static struct ctl_connq	ctl_conns = TAILQ_HEAD_INITIALIZER(ctl_conns);
static struct ctl_connq	ctl_dead = TAILQ_HEAD_INITIALIZER(ctl_dead);
static size_t		ctl_nconns;
static int		ctl_fd = -1;
static ev_io		ctl_io;
static ev_timer		ctl_pause;
static ev_prepare	ctl_reaper;
static int		ctl_paused;	/* accept failed for lack of fds */
static int		ctl_stopping;
static char		ctl_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static dev_t		ctl_dev;	/* the socket we made, so that we */
static ino_t		ctl_ino;	/* never unlink another's */
static struct timespec	ctl_t0;

static const char *const ctl_levels[] = {
	[LOG_L_ERR] = "error",
	[LOG_L_WARN] = "warning",
	[LOG_L_NOTICE] = "notice",
	[LOG_L_INFO] = "info",
	[LOG_L_DEBUG] = "debug",
};

static void	ctl_write(struct ev_loop *, ev_io *, int);

/* Listen only while there is room and descriptors to spare. */
static void
ctl_listen_update(void)
{
	if (ctl_fd == -1 || ctl_stopping)
		return;
	if (!ctl_paused && ctl_nconns < CTL_MAX_CONNS)
		ev_io_start(qtd->loop, &ctl_io);
	else
		ev_io_stop(qtd->loop, &ctl_io);
}

static void
ctl_close(struct ctl_conn *cc, const char *why)
{
	if (cc->cc_dead)
		return;
	cc->cc_dead = 1;
	ev_io_stop(qtd->loop, &cc->cc_io);
	ev_timer_stop(qtd->loop, &cc->cc_timer);
	(void)close(cc->cc_fd);
	cc->cc_fd = -1;
	log_debug("control: connection closed: %s", why);
	TAILQ_REMOVE(&ctl_conns, cc, cc_entry);
	TAILQ_INSERT_TAIL(&ctl_dead, cc, cc_entry);
	ctl_nconns--;
	ctl_listen_update();
}

static void
ctl_reap(void)
{
	struct ctl_conn *cc;

	while ((cc = TAILQ_FIRST(&ctl_dead))) {
		TAILQ_REMOVE(&ctl_dead, cc, cc_entry);
		ctl_buf_free(&cc->cc_out);
		free(cc);
	}
}

static void
ctl_on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	ctl_reap();
}

/* Room for the header, filled in by ctl_send() once the length is known. */
static void
ctl_out_begin(struct ctl_conn *cc)
{
	static const uint8_t zero[CTL_HDR_LEN];

	ctl_buf_free(&cc->cc_out);
	ctl_buf_add(&cc->cc_out, zero, sizeof(zero));
}

static void
ctl_send(struct ctl_conn *cc, uint16_t type)
{
	size_t body = cc->cc_out.cb_len - CTL_HDR_LEN;

	ctl_buf_add(&cc->cc_out, "\n", 1);
	body++;
	if (cc->cc_out.cb_err || body > CTL_MAX_REPLY) {
		ctl_close(cc, "reply too large or out of memory");
		return;
	}
	ctl_hdr_encode((uint8_t *)cc->cc_out.cb_data, type, (uint32_t)body);
	cc->cc_off = 0;
	cc->cc_writing = 1;
	ev_io_stop(qtd->loop, &cc->cc_io);
	ev_io_set(&cc->cc_io, cc->cc_fd, EV_WRITE);
	ev_set_cb(&cc->cc_io, ctl_write);
	ev_io_start(qtd->loop, &cc->cc_io);
	ev_timer_stop(qtd->loop, &cc->cc_timer);
	ev_timer_set(&cc->cc_timer, CTL_REPLY_TIMEOUT, 0);
	ev_timer_start(qtd->loop, &cc->cc_timer);
	ctl_write(qtd->loop, &cc->cc_io, EV_WRITE);
}

static void
ctl_error(struct ctl_conn *cc, const char *msg)
{
	struct ctl_jw w;

	log_debug("control: request refused: %s", msg);
	ctl_out_begin(cc);
	ctl_jw_init(&w, &cc->cc_out);
	ctl_jw_obj(&w, NULL);
	ctl_jw_str(&w, "error", msg);
	ctl_jw_end(&w);
	ctl_send(cc, CTL_ERROR);
}

static uint64_t
ctl_uptime_ms(void)
{
	struct timespec now;

	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)((now.tv_sec - ctl_t0.tv_sec) * 1000 +
	    (now.tv_nsec - ctl_t0.tv_nsec) / 1000000);
}

static const char *
ctl_node_name(int i)
{
	const struct qt_config *cf = qtd->cf;

	if (i < 0 || (size_t)i >= cf->c_nnodes)
		return "-";
	return cf->c_nodes[i].n_name;
}

/* A histogram: quantiles for people, cumulative buckets for Prometheus,
 * in ns. */
static void
ctl_jw_hist(struct ctl_jw *w, const char *key, const struct tm_hist *h)
{
	char le[24];
	size_t i;

	ctl_jw_obj(w, key);
	ctl_jw_u64(w, "count", h->h_count);
	ctl_jw_u64(w, "sum_ns", h->h_sum);
	ctl_jw_u64(w, "max_ns", h->h_max);
	ctl_jw_u64(w, "p50_ns", tm_quantile(h, 0.50));
	ctl_jw_u64(w, "p90_ns", tm_quantile(h, 0.90));
	ctl_jw_u64(w, "p99_ns", tm_quantile(h, 0.99));
	ctl_jw_obj(w, "le_ns");
	for (i = 0; i < TM_NLE; i++) {
		(void)snprintf(le, sizeof(le), "%llu",
		    (unsigned long long)tm_le_ns[i]);
		ctl_jw_u64(w, le, h->h_le[i]);
	}
	ctl_jw_end(w);
	ctl_jw_end(w);
}

/* The hand-off's step timings, and the event loop's batches. */
static void
ctl_stats_timings(struct ctl_jw *w)
{
	size_t s;

	ctl_jw_obj(w, "timings");
	for (s = 0; s < TM_NSTAGES; s++)
		ctl_jw_hist(w, tm_stage_name((enum tm_stage)s), &qtd->tm[s]);
	ctl_jw_end(w);
	ctl_jw_hist(w, "loop_busy", &qtd->tm_loop);
}

static int
ctl_stats(struct ctl_jw *w)
{
	size_t i;

	ctl_jw_obj(w, NULL);
	ctl_jw_str(w, "node", config_self(qtd->cf)->n_name);
	ctl_jw_ms(w, "uptime", ctl_uptime_ms());
	ctl_jw_obj(w, "counters");
	for (i = 0; i < ctl_ncounters; i++)
		ctl_jw_u64(w, ctl_counters[i].cc_name, *(const uint64_t *)
		    ((const char *)&qtd->st + ctl_counters[i].cc_off));
	ctl_jw_end(w);
	ctl_jw_obj(w, "flows");
	for (i = 0; i < FS_NSTATES; i++)
		ctl_jw_u64(w, flow_state_name((enum flow_state)i),
		    qtd->nstate[i]);
	ctl_jw_end(w);
	ctl_jw_u64(w, "flows_total", qtd->nflows);
	ctl_stats_timings(w);
	ctl_jw_end(w);
	return 0;
}

static int
ctl_filter_check(const struct ctl_filter *flt, const char **err)
{
	const struct qt_config *cf = qtd->cf;
	size_t i;

	if (flt->cf_node[0]) {
		for (i = 0; i < cf->c_nnodes; i++)
			if (!strcmp(cf->c_nodes[i].n_name, flt->cf_node))
				break;
		if (i == cf->c_nnodes) {
			*err = "list-flows: no node by that name";
			return -1;
		}
	}
	if (flt->cf_state[0]) {
		for (i = 0; i < FS_NSTATES; i++)
			if (!strcmp(flow_state_name((enum flow_state)i),
			    flt->cf_state))
				break;
		if (i == FS_NSTATES) {
			*err = "list-flows: no such state (reading, local, "
			    "replaying, handed-off, taken-back, back, "
			    "closing, grace)";
			return -1;
		}
	}
	return 0;
}

static int
ctl_list_flows(struct ctl_jw *w, const struct ctl_filter *flt,
    const char **err)
{
	const struct qt_config *cf = qtd->cf;
	const struct flow *f;
	uint64_t now = now_ms();
	const char *peer;
	char client[32];

	if (ctl_filter_check(flt, err) == -1)
		return -1;
	ctl_jw_obj(w, NULL);
	ctl_jw_str(w, "node", config_self(cf)->n_name);
	ctl_jw_arr(w, "flows");
	TAILQ_FOREACH(f, &qtd->flows, f_entry) {
		peer = ctl_node_name(f->f_peer);
		if (flt->cf_node[0] && strcmp(flt->cf_node, peer))
			continue;
		if (flt->cf_state[0] &&
		    strcmp(flt->cf_state, flow_state_name(f->f_state)))
			continue;
		snprintf(client, sizeof(client), "%s:%u", addr_str(f->f_cip),
		    ntohs(f->f_cport));
		ctl_jw_obj(w, NULL);
		ctl_jw_u64(w, "id", f->f_id);
		ctl_jw_str(w, "role", f->f_back ? "back" : "front");
		ctl_jw_str(w, "state", flow_state_name(f->f_state));
		ctl_jw_str(w, "client", client);
		ctl_jw_str(w, "service", f->f_svc < cf->c_nsvcs ?
		    cf->c_svcs[f->f_svc].s_name : "-");
		ctl_jw_str(w, "peer", peer);
		/* The wall clock may step back: an age is never negative. */
		ctl_jw_ms(w, "age", now > f->f_t0 ? now - f->f_t0 : 0);
		ctl_jw_u64(w, "bytes", f->f_bytes);
		ctl_jw_u64(w, "requests", f->f_requests);
		ctl_jw_str(w, "request", f->f_reqline);
		ctl_jw_end(w);
	}
	ctl_jw_end(w);
	ctl_jw_end(w);
	return 0;
}

static void
ctl_node(struct ctl_jw *w, const struct qt_node *n, int self, int runtime)
{
	ctl_jw_obj(w, NULL);
	ctl_jw_str(w, "name", n->n_name);
	ctl_jw_u64(w, "id", n->n_id);
	ctl_jw_str(w, "address", addr_str(n->n_addr));
	ctl_jw_u64(w, "weight", n->n_weight);
	if (runtime) {
		const char *state;

		if (n->n_retired)
			state = "retired";
		else if (n->n_drain || n->n_drain_ctl || n->n_peer_drain)
			state = "draining";
		else if (self || n->n_up)
			state = "up";
		else
			state = "down";
		ctl_jw_bool(w, "up", self || n->n_up);
		ctl_jw_bool(w, "self", self);
		ctl_jw_str(w, "state", state);
		ctl_jw_u64(w, "load", self ? qtd->nserving : n->n_load);
		ctl_jw_u64(w, "heard_ms", self ? 0 : now_ms() - n->n_heard);
	}
	ctl_jw_end(w);
}

static int
ctl_nodes(struct ctl_jw *w)
{
	const struct qt_config *cf = qtd->cf;
	size_t i;

	ctl_jw_obj(w, NULL);
	ctl_jw_arr(w, "nodes");
	for (i = 0; i < cf->c_nnodes; i++)
		ctl_node(w, &cf->c_nodes[i], (int)i == cf->c_self, 1);
	ctl_jw_end(w);
	ctl_jw_end(w);
	return 0;
}

/*
 * The scalar options under their config file names, so that the text
 * form reads like a config file.  The key itself is never shown.
 */
static int
ctl_show_config(struct ctl_jw *w)
{
	const struct qt_config *cf = qtd->cf;
	size_t i;

	ctl_jw_obj(w, NULL);
	ctl_jw_str(w, "path", cf->c_path);
	ctl_jw_obj(w, "options");
	ctl_jw_str(w, "self", cf->c_self_name);
	ctl_jw_str(w, "key-file", cf->c_key_file);
	ctl_jw_str(w, "docroot", cf->c_docroot);
	ctl_jw_str(w, "interface", cf->c_iface);
	ctl_jw_str(w, "control-socket", cf->c_ctl_path);
	ctl_jw_str(w, "control-group", cf->c_ctl_group);
	ctl_jw_u64(w, "band-port", cf->c_band_port);
	ctl_jw_u64(w, "handoff-timeout", cf->c_handoff_timeout);
	ctl_jw_u64(w, "handoff-tries", cf->c_handoff_tries);
	ctl_jw_u64(w, "header-timeout", cf->c_header_timeout);
	ctl_jw_bool(w, "defer-accept", cf->c_defer_accept);
	ctl_jw_u64(w, "idle-timeout", cf->c_idle_timeout);
	ctl_jw_u64(w, "close-wait", cf->c_close_wait);
	ctl_jw_u64(w, "conntrack-grace", cf->c_ct_grace);
	ctl_jw_u64(w, "max-header", cf->c_max_header);
	ctl_jw_u64(w, "replay-window", cf->c_replay_window);
	ctl_jw_u64(w, "set-maxelem", cf->c_set_maxelem);
	ctl_jw_bool(w, "set-sysctls", cf->c_set_sysctls);
	ctl_jw_str(w, "log-level", cf->c_log_level >= 0 &&
	    cf->c_log_level <= LOG_L_DEBUG ? ctl_levels[cf->c_log_level] :
	    "?");
	ctl_jw_str(w, "log-flows", config_word("log-flows", cf->c_log_flows));
	ctl_jw_end(w);
	ctl_jw_arr(w, "nodes");
	for (i = 0; i < cf->c_nnodes; i++)
		ctl_node(w, &cf->c_nodes[i], 0, 0);
	ctl_jw_end(w);
	ctl_jw_arr(w, "services");
	for (i = 0; i < cf->c_nsvcs; i++) {
		ctl_jw_obj(w, NULL);
		ctl_jw_str(w, "name", cf->c_svcs[i].s_name);
		ctl_jw_u64(w, "port", cf->c_svcs[i].s_port);
		ctl_jw_u64(w, "handoff-base", cf->c_svcs[i].s_hobase);
		ctl_jw_end(w);
	}
	ctl_jw_end(w);
	ctl_jw_end(w);
	return 0;
}

static int
ctl_reload(struct ctl_jw *w, const char **err)
{
	static char msg[2048];

	if (reload(msg, sizeof(msg)) == -1) {
		size_t n = strlen(msg);

		while (n && msg[n - 1] == '\n')
			msg[--n] = '\0';
		*err = msg[0] ? msg : "reload failed, see the log";
		return -1;
	}
	ctl_jw_obj(w, NULL);
	ctl_jw_str(w, "reloaded", qtd->cf->c_path);
	ctl_jw_end(w);
	return 0;
}

/* drain NODE / undrain NODE: this daemon gives NODE no new connections;
 * draining this node itself is announced to every peer by heartbeat. */
static int
ctl_drain(struct ctl_jw *w, const uint8_t *payload, int drain,
    const char **err)
{
	char name[CTL_FILTER_LEN];
	size_t i;

	memcpy(name, payload, sizeof(name));
	name[sizeof(name) - 1] = '\0';
	for (i = 0; i < qtd->cf->c_nnodes; i++)
		if (!strcmp(qtd->cf->c_nodes[i].n_name, name))
			break;
	if (i == qtd->cf->c_nnodes) {
		*err = "no such node";
		return -1;
	}
	if (qtd->cf->c_nodes[i].n_drain_ctl != drain)
		log_notice("node %s %s by qtctl", name, drain ?
		    "drained: no new connections to it" : "undrained");
	qtd->cf->c_nodes[i].n_drain_ctl = drain;
	ctl_jw_obj(w, NULL);
	ctl_jw_str(w, "node", name);
	ctl_jw_bool(w, "drain", drain || qtd->cf->c_nodes[i].n_drain);
	ctl_jw_end(w);
	return 0;
}

/* The one place a request is understood. */
static void
ctl_dispatch(struct ctl_conn *cc)
{
	const uint8_t *payload = cc->cc_in + CTL_HDR_LEN;
	struct ctl_filter flt;
	const char *err = "internal error";
	struct ctl_jw w;
	int rc;

	if (ctl_req_check(&cc->cc_hdr, &err) == -1) {
		ctl_error(cc, err);
		return;
	}
	log_debug("control: %s request", ctl_type_name(cc->cc_hdr.ch_type));
	ctl_out_begin(cc);
	ctl_jw_init(&w, &cc->cc_out);
	switch (cc->cc_hdr.ch_type) {
	case CTL_STATS:
		rc = ctl_stats(&w);
		break;
	case CTL_LIST_FLOWS:
		rc = ctl_filter_decode(payload, cc->cc_hdr.ch_len, &flt, &err);
		if (rc == 0)
			rc = ctl_list_flows(&w, &flt, &err);
		break;
	case CTL_SHOW_CONFIG:
		rc = ctl_show_config(&w);
		break;
	case CTL_NODES:
		rc = ctl_nodes(&w);
		break;
	case CTL_RELOAD:
		rc = ctl_reload(&w, &err);
		break;
	case CTL_DRAIN:
	case CTL_UNDRAIN:
		rc = ctl_drain(&w, payload, cc->cc_hdr.ch_type == CTL_DRAIN,
		    &err);
		break;
	case CTL_STOP:
		if (payload[0] > 1) {
			err = "stop: flag is not 0 or 1";
			rc = -1;
			break;
		}
		/* Answer first; the loop ends after this iteration. */
		qtd_stop(payload[0] == 1, "qtctl stop");
		ctl_jw_obj(&w, NULL);
		ctl_jw_str(&w, "stopping", payload[0] ? "cleanup" : "keep");
		ctl_jw_end(&w);
		rc = 0;
		break;
	default:
		err = "unknown request type";
		rc = -1;
		break;
	}
	if (rc == -1) {
		ctl_error(cc, err);
		return;
	}
	ctl_send(cc, CTL_OK);
}

static void
ctl_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_conn *cc = container_of(w, struct ctl_conn, cc_io);
	const char *err = NULL;
	size_t want;
	ssize_t n;
	int rc;

	(void)loop;
	(void)revents;
	for (;;) {
		/* Never more than this frame: one request per connection,
		 * and what follows it is not ours to read. */
		want = CTL_HDR_LEN + (cc->cc_have_hdr ? cc->cc_hdr.ch_len : 0);
		n = recv(cc->cc_fd, cc->cc_in + cc->cc_inlen,
		    want - cc->cc_inlen, 0);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			ctl_close(cc, strerror(errno));
			return;
		}
		if (n == 0) {
			if (cc->cc_inlen == 0)
				ctl_close(cc, "closed without a request");
			else
				ctl_error(cc, "short request");
			return;
		}
		cc->cc_inlen += (size_t)n;
		if (!cc->cc_have_hdr) {
			rc = ctl_hdr_decode(cc->cc_in, cc->cc_inlen,
			    CTL_MAX_REQ, &cc->cc_hdr, &err);
			if (rc == -1) {
				ctl_error(cc, err);
				return;
			}
			if (rc == 0)
				continue;
			cc->cc_have_hdr = 1;
		}
		if (cc->cc_inlen == CTL_HDR_LEN + cc->cc_hdr.ch_len) {
			ctl_dispatch(cc);
			return;
		}
	}
}

static void
ctl_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_conn *cc = container_of(w, struct ctl_conn, cc_io);
	ssize_t n;

	(void)loop;
	(void)revents;
	while (cc->cc_off < cc->cc_out.cb_len) {
		n = send(cc->cc_fd, cc->cc_out.cb_data + cc->cc_off,
		    cc->cc_out.cb_len - cc->cc_off, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			ctl_close(cc, strerror(errno));
			return;
		}
		cc->cc_off += (size_t)n;
	}
	ctl_close(cc, "reply sent");
}

static void
ctl_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctl_conn *cc = container_of(w, struct ctl_conn, cc_timer);

	(void)loop;
	(void)revents;
	if (cc->cc_writing)
		ctl_close(cc, "client did not take its reply");
	else
		ctl_error(cc, "timed out waiting for a request");
}

static void
ctl_pause_over(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	ctl_paused = 0;
	ctl_listen_update();
}

static void
ctl_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_conn *cc;
	int fd, i;

	(void)loop;
	(void)w;
	(void)revents;
	for (i = 0; i < 16 && ctl_nconns < CTL_MAX_CONNS; i++) {
		fd = accept4(ctl_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			/* Out of descriptors the connection stays in the
			 * backlog and the socket stays readable: stop
			 * looking for a while rather than spin. */
			if (errno == EMFILE || errno == ENFILE) {
				log_warn("control: accept: %m: pausing for "
				    "%.0f s", CTL_ACCEPT_PAUSE);
				ctl_paused = 1;
				ev_timer_set(&ctl_pause, CTL_ACCEPT_PAUSE, 0);
				ev_timer_start(qtd->loop, &ctl_pause);
			} else if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("control: accept: %m, ignoring");
			break;
		}
		if (!(cc = calloc(1, sizeof(*cc)))) {
			log_warn("control: out of memory, connection dropped");
			(void)close(fd);
			continue;
		}
		cc->cc_fd = fd;
		TAILQ_INSERT_TAIL(&ctl_conns, cc, cc_entry);
		ctl_nconns++;
		ev_io_init(&cc->cc_io, ctl_read, fd, EV_READ);
		ev_io_start(qtd->loop, &cc->cc_io);
		ev_timer_init(&cc->cc_timer, ctl_timeout, CTL_REQ_TIMEOUT, 0);
		ev_timer_start(qtd->loop, &cc->cc_timer);
	}
	ctl_listen_update();
}

static int
ctl_group(const char *name, gid_t *gid)
{
	struct group *gr;
	unsigned long v;
	char *end;

	if ((gr = getgrnam(name))) {
		*gid = gr->gr_gid;
		return 0;
	}
	if (!isdigit((unsigned char)name[0]))
		return -1;
	errno = 0;
	v = strtoul(name, &end, 10);
	if (errno || *end || v != (gid_t)v)
		return -1;
	*gid = (gid_t)v;
	return 0;
}

/*
 * A socket left by a daemon that died is removed; one that a running
 * daemon answers on is not, and we do not start: two daemons would
 * fight over the kernel's state.
 */
static int
ctl_unlink_stale(const struct sockaddr_un *sun)
{
	struct stat st;
	int fd, e;

	if (lstat(sun->sun_path, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		log_err("control socket \"%s\": %m", sun->sun_path);
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_err("control socket \"%s\": exists and is not a socket, "
		    "not removing it", sun->sun_path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		log_err("control socket: %m");
		return -1;
	}
	/* Non-blocking: a live daemon with a full backlog says EAGAIN
	 * rather than hold us here. */
	e = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0 ?
	    0 : errno;
	(void)close(fd);
	if (e != ECONNREFUSED) {
		if (e == 0 || e == EAGAIN)
			log_err("control socket \"%s\": another quicktwitchd "
			    "answers on it, not started", sun->sun_path);
		else
			log_err("control socket \"%s\": %s", sun->sun_path,
			    strerror(e));
		return -1;
	}
	if (unlink(sun->sun_path) == -1 && errno != ENOENT) {
		log_err("control socket \"%s\": cannot remove the stale "
		    "socket: %m", sun->sun_path);
		return -1;
	}
	log_notice("control socket \"%s\": removed a stale socket",
	    sun->sun_path);
	return 0;
}

int
control_open(void)
{
	const struct qt_config *cf = qtd->cf;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	gid_t gid;
	int fd, rc;

	if (strlen(cf->c_ctl_path) >= sizeof(sun.sun_path)) {
		log_err("control socket \"%s\": path too long (at most %zu "
		    "bytes)", cf->c_ctl_path, sizeof(sun.sun_path) - 1);
		return -1;
	}
	strcpy(sun.sun_path, cf->c_ctl_path);
	if (ctl_group(cf->c_ctl_group, &gid) == -1) {
		log_err("control-group \"%s\": no such group", cf->c_ctl_group);
		return -1;
	}
	if (ctl_unlink_stale(&sun) == -1)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		log_err("control socket: %m");
		return -1;
	}
	/* Born 0660: no moment where others could connect. */
	old = umask(0117);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc == -1) {
		log_err("control socket \"%s\": bind: %m", sun.sun_path);
		goto fail;
	}
	if (stat(sun.sun_path, &st) == -1 ||
	    (st.st_gid != gid && chown(sun.sun_path, (uid_t)-1, gid) == -1) ||
	    chmod(sun.sun_path, 0660) == -1) {
		log_err("control socket \"%s\": group %s, mode 0660: %m",
		    sun.sun_path, cf->c_ctl_group);
		(void)unlink(sun.sun_path);
		goto fail;
	}
	if (listen(fd, 16) == -1) {
		log_err("control socket \"%s\": listen: %m", sun.sun_path);
		(void)unlink(sun.sun_path);
		goto fail;
	}
	ctl_fd = fd;
	ctl_dev = st.st_dev;
	ctl_ino = st.st_ino;
	strcpy(ctl_path, sun.sun_path);
	(void)clock_gettime(CLOCK_MONOTONIC, &ctl_t0);
	ev_io_init(&ctl_io, ctl_accept, fd, EV_READ);
	ev_timer_init(&ctl_pause, ctl_pause_over, CTL_ACCEPT_PAUSE, 0);
	ev_prepare_init(&ctl_reaper, ctl_on_prepare);
	ev_prepare_start(qtd->loop, &ctl_reaper);
	ctl_listen_update();
	log_info("control socket \"%s\" listening", ctl_path);
	return 0;
fail:
	(void)close(fd);
	return -1;
}

void
control_close(void)
{
	struct ctl_conn *cc;
	struct stat st;

	if (ctl_fd == -1)
		return;
	ctl_stopping = 1;
	while ((cc = TAILQ_FIRST(&ctl_conns)))
		ctl_close(cc, "daemon stopping");
	ctl_reap();
	ev_io_stop(qtd->loop, &ctl_io);
	ev_timer_stop(qtd->loop, &ctl_pause);
	ev_prepare_stop(qtd->loop, &ctl_reaper);
	(void)close(ctl_fd);
	ctl_fd = -1;
	/* Only the socket we made: a daemon started since may own the
	 * path now. */
	if (stat(ctl_path, &st) == 0 && st.st_dev == ctl_dev &&
	    st.st_ino == ctl_ino)
		(void)unlink(ctl_path);
}
