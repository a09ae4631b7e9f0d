/*
 * quicktwitchd's run-time state: the daemon context, the flow, and the
 * prototypes of the files that work on them, grouped by file.
 */
#ifndef QTD_H
#define QTD_H

#include <sys/queue.h>
#include <sys/socket.h>

#include <ev.h>

#include "http.h"
#include "nf.h"
#include "qt.h"

#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

/*
 * A flow is one client connection as this node sees it: on the front from
 * accept() to the moment the back reports it closed, on the back from the
 * rebuilt socket to its full close.  It owns its descriptor, its watchers
 * and its buffers, and it ends in exactly one place: flow_close().
 */
enum flow_state {
	FS_READING,	/* front: reading the first request */
	FS_LOCAL,	/* front: serving it itself */
	FS_REPLAYING,	/* front: steered, frozen, waiting for the back */
	FS_HANDED_OFF,	/* front: the back serves it */
	FS_TAKEN_BACK,	/* front: hand-off failed, serving it itself */
	FS_BACK,	/* back: serving a handed-off connection */
	FS_CLOSING,	/* our FIN is out: waiting for the peer's end */
	FS_GRACE,	/* front: unsteered, conntrack entry kept a while */
	FS_PROXY,	/* front: proxying to a plain HTTP node */
	FS_NSTATES
};

struct flow {
	TAILQ_ENTRY(flow)	 f_entry;
	TAILQ_ENTRY(flow)	 f_sweep;	/* in a sweep queue (front) or
						 * the unheard queue (back) */
	int			 f_sq;		/* which: SQ_* */
	struct flow		*f_hnext;	/* token hash chain */
	struct flow		*f_tnext;	/* tuple hash chain */
	uint64_t		 f_id;
	int			 f_back;	/* 1: we are this flow's back */
	enum flow_state		 f_state;
	int			 f_fd;
	int			 f_frozen;	/* f_fd is in repair mode */
	int			 f_steered;	/* our set entry exists */
	int			 f_dead;	/* closed, freed by the reaper */
	unsigned		 f_in_thash:1;	/* in its token hash */
	uint32_t		 f_thv;		/* its hash value there */
	unsigned		 f_in_tuple:1;	/* in the tuple hash */
	int			 f_serving;	/* counted in nserving */
	int			 f_aborted;	/* back: dropped on the front's
						 * word, nothing to report */
	uint32_t		 f_cip;		/* client, network order */
	uint16_t		 f_cport;
	uint32_t		 f_laddr;	/* our local address and port */
	uint16_t		 f_lport;
	size_t			 f_svc;
	int			 f_peer;	/* back (front flows) or origin
						 * (back flows): node index */
	uint8_t			 f_token[QT_TOKEN_LEN];
	char			*f_buf;		/* bytes read, not yet consumed */
	size_t			 f_blen, f_bcap;
	ev_io			 f_io;
	ev_timer		 f_timer;
	/* hand-off */
	struct repair_state	 f_rs;
	uint32_t		 f_isn;	/* the client's ISN: on a front what
					 * its replay says, on a back which
					 * connection holds the tuple */
	uint8_t			 f_hdr[HDR_LEN];
	unsigned		 f_tries;
	uint64_t		 f_tb_at;	/* front: when (ms) a take-back began */
	uint64_t		 f_checked;	/* front: when (ms) the back
						 * last vouched for the flow */
	uint64_t		 f_asked;	/* front: when (ms) we last
						 * asked it */
	uint64_t		 f_grace_end;	/* front: ms, in SQ_GRACE */
	int			 f_fin, f_rst;	/* front: the client's FIN or
						 * RST went past us */
	int			 f_peer_fin;	/* back: the client's FIN came
						 * with the hand-off */
	uint64_t		 f_reconfirm;	/* back, in SQ_UNHEARD: when
						 * (ms) to confirm again */
	unsigned		 f_confirms;	/* back: confirmations sent */
	/* step timings (timing.c), ns; 0: not being timed */
	uint64_t		 f_tm_rx;	/* wall clock: the request's
						 * (front) or the replay's
						 * (back) arrival in the kernel */
	uint64_t		 f_tm;		/* monotonic: the replay sent
						 * (front), the rebuild done
						 * (back) */
	/* responder */
	int			 f_file;	/* file being sent, or -1 */
	off_t			 f_foff, f_fend;
	char			*f_out;		/* response header, FLOW_OUT
						 * bytes, made when needed: a
						 * handed-off flow has none */
	size_t			 f_olen, f_ooff;
	int			 f_keepalive;
	double			 f_tclose;	/* when our FIN went out */
	size_t			 f_consume;	/* bytes of f_buf this request
						 * takes, freed when sent */
	/* relay (relay.c) */
	int			 f_relay;	/* relaying to f_up_fd */
	int			 f_proxy;	/* ... a plain HTTP node */
	int			 f_up_fd;
	int			 f_up_connected;
	int			 f_up_spare;	/* f_up_fd was a spare (relay.c) */
	int			 f_up_await;	/* request sent, no answer yet */
	ev_io			 f_up_io;
	int			 f_pcu[2], f_puc[2];	/* pipes: client to
						 * upstream, and back */
	size_t			 f_ncu, f_nuc;	/* bytes in each pipe */
	int			 f_eof_c, f_eof_u, f_shut_c, f_shut_u;
	int			 f_rd_c, f_rd_u;	/* may have bytes to
						 * read: polled ready, no
						 * EAGAIN since */
	size_t			 f_preoff;	/* bytes of f_buf sent up */
	uint64_t		 f_rbytes;	/* upstream to client */
	uint64_t		 f_cbytes;	/* client to upstream */
	/* accounting */
	uint64_t		 f_t0;		/* ms */
	uint64_t		 f_bytes;	/* body bytes we sent */
	unsigned		 f_requests;
	char			 f_reqline[96];
	const char		*f_why;
};

TAILQ_HEAD(flowq, flow);

struct qt_stats {
	uint64_t	st_accepted;
	uint64_t	st_local;
	uint64_t	st_handoffs;
	uint64_t	st_handed_off;
	uint64_t	st_taken_back;
	uint64_t	st_resends;
	uint64_t	st_back_flows;
	uint64_t	st_forged;
	uint64_t	st_stale;
	uint64_t	st_dup_replays;
	uint64_t	st_refused;
	uint64_t	st_superseded;
	uint64_t	st_bad_requests;
	uint64_t	st_bytes_served;
	uint64_t	st_band_bad;
	uint64_t	st_tb_timeout;	/* taken back: no confirmation */
	uint64_t	st_tb_refused;	/* taken back: the back refused */
	uint64_t	st_tb_error;	/* taken back: a local step failed */
	uint64_t	st_td_report;	/* torn down: the back reported */
	uint64_t	st_td_fin;	/* torn down: client FIN, back gone */
	uint64_t	st_td_rst;	/* torn down: client RST, back gone */
	uint64_t	st_td_sweep;	/* torn down: the back disowned it
					 * or went silent */
	uint64_t	st_td_reuse;	/* torn down: the client opened a
					 * new connection on the tuple */
	uint64_t	st_steer_failed;	/* steering refused (e.g. a full
						 * conntrack table) */
	uint64_t	st_adopted;	/* flows rebuilt from the kernel */
	uint64_t	st_relayed;	/* connections relayed to an upstream */
	uint64_t	st_proxied;	/* connections proxied to a node */
	uint64_t	st_proxy_bytes;	/* bytes proxied to clients */
	uint64_t	st_upstream_502;
	uint64_t	st_upstream_504;
	uint64_t	st_upstream_spare;	/* relays begun on a spare */
	uint64_t	st_upstream_retries;	/* requests sent again after a
						 * spare failed unanswered */
	uint64_t	st_confirm_batches;	/* CONFIRMS datagrams sent */
	uint64_t	st_confirm_batched;	/* confirmations in them */
};

/* A flow hash: chained, power-of-two buckets, doubled when it holds more
 * flows than buckets, so that lookups stay O(1) at any flow count. */
struct fhash {
	struct flow		**h_b;
	size_t			 h_mask;	/* buckets - 1 */
	size_t			 h_n;		/* flows in it */
};

struct qtd {
	struct ev_loop		*loop;
	struct qt_config	*cf;
	char			 iface[IF_NAMESIZE];
	struct qset		*set;
	struct qct		*ct;
	struct replay		*replay;
	struct capture		*cap;
	ev_io			 cap_io;
	int			 band_fd;
	ev_io			 band_io;
	int			 listen_fd[QT_MAX_SVCS];
	ev_io			 listen_io[QT_MAX_SVCS];
	ev_signal		 sig_int, sig_term, sig_hup;
	ev_prepare		 reaper;
	ev_timer		 sweep;
	ev_timer		 hb_timer;
	ev_timer		 watchdog;
	uint64_t		 nserving;	/* flows we serve (load) */
	uint64_t		 band_last[QT_MAX_NODES];	/* highest
						 * stamp seen, by node id */
	struct flowq		 flows;
	struct flowq		 dead;
	/* Handed-off flows the sweep asks backs about, so that it walks
	 * only the flows that are due, not every flow: by time of asking
	 * (every sweep-interval), and those to ask every second (the
	 * client's FIN or RST seen, or adopted after a restart). */
	struct flowq		 sweepq;
	struct flowq		 urgentq;
	size_t			 n_urgent;
	/* Flows in their conntrack grace, in order of its end: their
	 * entries go in batches (grace_run), not one netlink round trip
	 * each. */
	struct flowq		 graceq;
	/* Back flows that have heard nothing from their client yet: their
	 * front may have taken the connection back (back.c, unheard). */
	struct flowq		 unheardq;
	ev_timer		 grace_timer;
	size_t			 nflows;
	size_t			 nstate[FS_NSTATES];	/* of nflows, by
						 * state */
	struct fhash		 front_hash;	/* by token, our hand-offs */
	struct fhash		 back_hash;	/* by token, flows we serve
						 * for another front */
	struct fhash		 tuple_hash;	/* by client tuple, both */
	struct capture		*fin_cap;	/* front: clients' FIN and RST */
	ev_io			 fin_cap_io;
	uint64_t		 next_id;
	int			 stopping;
	int			 stop_cleanup;
	struct qt_stats		 st;
	struct tm_hist		 tm[TM_NSTAGES];	/* step timings */
	struct tm_hist		 tm_loop;	/* each batch of callbacks */
};

extern struct qtd	*qtd;

enum { SQ_NONE, SQ_NORMAL, SQ_URGENT, SQ_GRACE, SQ_UNHEARD };
#define FLOW_OUT	1024

/* flow.c */
int		 flow_init(void);
struct flow	*flow_new(int back);
void		 flow_close(struct flow *, const char *why);
void		 flow_finish(struct flow *, const char *why);
void		 flow_stop_watchers(struct flow *);
void		 flow_hash_add(struct flow *);
struct flow	*flow_by_token(int back, const uint8_t token[QT_TOKEN_LEN]);
void		 flow_tuple_add(struct flow *);
uint32_t	 flow_tuple_hv(uint32_t cip, uint16_t cport, uint16_t lport);
struct flow	*flow_by_tuple(int back, uint32_t cip, uint16_t cport,
		    uint16_t lport);
int		 flow_buf_reserve(struct flow *, size_t more);
char		*flow_out(struct flow *);
/* The flow's wait queue (SQ_*): one at a time, left when it closes. */
void		 flow_queue_enter(struct flow *, int q);
void		 flow_queue_leave(struct flow *);
/* Reads what the client sent into f_buf; with rx_ns, also when the last
 * segment read reached the kernel (wall clock ns, 0 if not known). */
ssize_t		 flow_read(struct flow *, uint64_t *rx_ns);
void		 flow_answered(struct flow *);
void		 flow_reap(void);
void		 flow_note_request(struct flow *, const struct http_req *);
const char	*flow_state_name(enum flow_state);
void		 flow_set_state(struct flow *, enum flow_state);
/* The level of a flow's intermediate steps, by log-flows. */
#define flow_step_level() \
	(qtd->cf->c_log_flows == LF_ALL ? LOG_L_INFO : LOG_L_DEBUG)
void		 flow_log(const struct flow *, int level, const char *event,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* serve.c: the built-in static file responder */
void	serve_start(struct flow *);
void	serve_error(struct flow *, int status);
void	serve_error_quiet(struct flow *, int status);

/* relay.c: bytes both ways between a client and a server, by splice */
void	relay_start(struct flow *, const struct sockaddr_storage *,
	    socklen_t, int proxy);
void	relay_release(struct flow *);
/* Relays whose request is with their server, not yet answered: work that
 * can wait (a back's confirmations, new spares) waits for them, as the
 * server runs only once we sleep. */
unsigned	relay_awaiting(void);
/* Spare upstream connections: aged out and refilled once a second;
 * closed when the daemon stops. */
void	relay_sweep(void);
void	relay_spares_close(void);

/* front.c */
int	front_listen(size_t from_svc);
void	front_listen_retune(size_t nsvcs);
int	front_watch_start(void);
void	front_watch_stop(void);
void	front_adopt(void);
struct band_msg;
void	front_band(int node, const struct band_msg *);

/* back.c */
int	back_capture_start(void);
void	back_capture_stop(void);
void	back_sweep(void);
void	back_flow_ended(struct flow *);
void	back_close_flush(void);
void	back_band(int node, const struct band_msg *);
int	back_unheard(struct flow *);

/* band.c: authenticated UDP between daemons */
enum band_type {
	BAND_CONFIRM = 1,	/* back: the connection is rebuilt */
	BAND_REFUSE,		/* back: it could not be (status: errno) */
	BAND_CLOSED,		/* back: our socket is fully closed */
	BAND_ABORT,		/* front: I took it back; drop yours silently */
	BAND_CHECK,		/* front: do you still serve these flows? */
	BAND_CHECK_REPLY,	/* back: of those, these are gone */
	BAND_HEARTBEAT,		/* any: alive; a = load, status = flags */
	BAND_CONFIRMS,		/* back: these connections are rebuilt */
};
/* HEARTBEAT flags (status) */
#define HB_DRAINING	0x1	/* no new hand-offs to me */
#define HB_CONFIRMS	0x2	/* I take CONFIRMS: send confirmations so */
#define BAND_PAYLOAD_MAX	1200
#define BAND_ENTRY		8	/* client ip, client port, service */
#define BAND_ALIVE		0x8000	/* in a reply's service: still served */

struct band_msg {
	enum band_type	 bm_type;
	uint8_t		 bm_token[QT_TOKEN_LEN];
	uint32_t	 bm_status;
	uint64_t	 bm_a, bm_b;
	uint64_t	 bm_time;
	uint32_t	 bm_cip;	/* network order */
	uint16_t	 bm_cport;	/* network order */
	uint16_t	 bm_svc;
	uint16_t	 bm_plen;
	const uint8_t	*bm_payload;
};

int	band_open(void);
void	band_poll(void);
/* Checks framing and MAC, then decodes; no daemon state (fuzzed). */
int	band_parse(const uint8_t *, size_t, const uint8_t key[QT_KEY_LEN],
	    const uint8_t *key2, struct band_msg *, uint16_t *sender_id,
	    uint64_t *stamp);
int	band_send(int node, const struct band_msg *);
/* A CLOSED message's payload: entries of BAND_CLOSED_ENTRY bytes, token,
 * client address and port (network order), service, bytes, requests. */
#define BAND_CLOSED_ENTRY	28
struct band_closed {
	uint8_t		 c_token[QT_TOKEN_LEN];
	uint32_t	 c_cip;
	uint16_t	 c_cport;
	uint16_t	 c_svc;
	uint64_t	 c_bytes;
	uint32_t	 c_requests;
};
void	band_closed_put(uint8_t *, const struct band_closed *);
void	band_closed_get(const uint8_t *, struct band_closed *);
/* A CONFIRMS message's payload: entries of BAND_CONFIRM_ENTRY bytes,
 * token, client address and port (network order), service: each what a
 * CONFIRM says in its header. */
#define BAND_CONFIRM_ENTRY	16
void	band_confirm_put(uint8_t *, const struct band_msg *);
void	band_confirm_get(const uint8_t *, struct band_msg *);
int	band_send_flow(const struct flow *, enum band_type, uint32_t status,
	    uint64_t a, uint64_t b);

/* reload.c: a new config, swapped in without cutting a flow */
int	reload(char *err, size_t errlen);
void	reload_retire_check(void);

/* health.c: heartbeats, node state, drain */
void	health_start(void);
void	health_band(int node, const struct band_msg *);
int	health_usable(int node);

/* steer.c: the netfilter state this node owns */
int	steer_setup(void);
void	steer_teardown(void);
void	steer_set_name(size_t svc, uint32_t peer_id, char *buf, size_t len);
int	steer_add(struct flow *);
void	steer_del(struct flow *);
void	steer_del_later(struct flow *);	/* queued to the loop's turn */
void	steer_ct_delete(struct flow *);
void	steer_ct_delete_many(struct flow *const *, size_t);

/* main.c */
/* Ends the event loop; with cleanup, everything this node owns in the
 * kernel goes too, cutting the flows it steers. */
void	qtd_stop(int cleanup, const char *why);

/* control.c: the control socket qtctl talks to */
int	control_open(void);
void	control_close(void);

#endif
