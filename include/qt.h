/*
 * quicktwitch: the core header.  Prototypes are grouped by the file that
 * defines them, so a name always tells where it lives.
 */
#ifndef QT_H
#define QT_H

#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define QT_MAX_NODES	64	/* node ids are 1..63 */
#define QT_MAX_SVCS	8
#define QT_MAX_GROUPS	32
#define QT_MAX_ROUTES	128
#define QT_NAME_MAX	32
#define QT_KEY_LEN	32
#define QT_TOKEN_LEN	8

#define QT_MARK_KIND	253	/* RFC 6994 experimental TCP option */
#define QT_MARK_EXID	0x5154	/* "QT" */

/* config.c */

struct qt_node {
	char		 n_name[QT_NAME_MAX];
	uint32_t	 n_id;
	uint32_t	 n_addr;	/* network order */
	uint32_t	 n_weight;
	int		 n_drain;	/* no new hand-offs (config) */
	int		 n_drain_ctl;	/* no new hand-offs (qtctl drain) */
	/* runtime, this daemon's view: */
	int		 n_up;		/* heartbeats heard in time */
	int		 n_peer_drain;	/* the node says it is draining */
	int		 n_peer_confirms;	/* ... that it takes CONFIRMS */
	uint64_t	 n_heard;	/* ms, last heartbeat */
	uint64_t	 n_load;	/* connections it serves, per its
					 * last heartbeat */
	int		 n_retired;	/* removed by a reload, kept while
					 * flows still use it */
	int		 n_mode;	/* enum qt_node_mode */
};

/* How a front gives a node its connections. */
enum qt_node_mode {
	NM_HANDOFF,		/* hand-offs; taken back if they fail */
	NM_PROXY,		/* a plain HTTP server: proxied */
	NM_HANDOFF_PROXY,	/* hand-offs; proxied if they fail */
};

struct qt_group {
	char		 g_name[QT_NAME_MAX];
	uint64_t	 g_ids;		/* bit N: node id N is a member */
};

enum qt_route_action { RT_GROUP, RT_NODE, RT_LOCAL, RT_REJECT };

/* route [host H] [prefix P] (group G | node N | local | reject STATUS) */
struct qt_route {
	char			 r_host[128];	/* "" any; "*.x" suffix */
	char			 r_prefix[256];	/* "" any; decoded path */
	enum qt_route_action	 r_action;
	uint32_t		 r_arg;	/* group index, node id or status */
	int			 r_line;
};

enum qt_hash_key { HK_PATH, HK_PATH_QUERY, HK_HOST_PATH };
/* Which flow events are logged at info: every step, or one line at the
 * flow's end (an access log), or none (steps and ends at debug). */
enum qt_log_flows { LF_END, LF_ALL, LF_NONE };

struct qt_service {
	char		 s_name[QT_NAME_MAX];
	uint16_t	 s_port;	/* what clients connect to */
	uint16_t	 s_hobase;	/* hand-off port = s_hobase + origin id */
	char		 s_upname[128];	/* "" or what the config says */
	struct sockaddr_storage s_upstream;	/* the node's own server */
	socklen_t	 s_uplen;	/* 0: the built-in responder */
};

struct qt_config {
	char			 c_path[PATH_MAX];
	char			 c_self_name[QT_NAME_MAX];
	int			 c_self;	/* index in c_nodes */
	struct qt_node		 c_nodes[QT_MAX_NODES];
	size_t			 c_nnodes;
	struct qt_service	 c_svcs[QT_MAX_SVCS];
	size_t			 c_nsvcs;
	struct qt_group		 c_groups[QT_MAX_GROUPS];
	size_t			 c_ngroups;
	struct qt_route		 c_routes[QT_MAX_ROUTES];
	size_t			 c_nroutes;
	int			 c_hash_key;		/* enum qt_hash_key */
	unsigned		 c_bounded_load;	/* percent, 0: off */
	unsigned		 c_hb_interval;		/* ms */
	unsigned		 c_dead_after;		/* ms */
	unsigned		 c_upstream_timeout;	/* ms */
	unsigned		 c_upstream_spare;	/* per service */
	unsigned		 c_upstream_spare_age;	/* ms */
	char			 c_key_file[PATH_MAX];
	uint8_t			 c_key[QT_KEY_LEN];
	/* key rotation: a second key accepted, never used to sign */
	char			 c_key2_file[PATH_MAX];
	uint8_t			 c_key2[QT_KEY_LEN];
	int			 c_have_key2;
	char			 c_docroot[PATH_MAX];
	char			 c_iface[IF_NAMESIZE];
	char			 c_ctl_path[PATH_MAX];
	char			 c_ctl_group[64];	/* owns the socket */
	uint16_t		 c_band_port;
	unsigned		 c_nflog_group;	/* the front's watch */
	unsigned		 c_handoff_timeout;	/* ms per try */
	unsigned		 c_handoff_tries;
	unsigned		 c_header_timeout;	/* ms */
	int			 c_defer_accept;	/* wake at the request */
	unsigned		 c_idle_timeout;	/* ms, keep-alive idle */
	unsigned		 c_close_wait;		/* ms, cap on a close */
	unsigned		 c_ct_grace;		/* ms */
	unsigned		 c_sweep_interval;	/* ms */
	unsigned		 c_flow_timeout;	/* ms */
	unsigned		 c_max_header;
	unsigned		 c_replay_window;	/* ms, header freshness */
	unsigned		 c_set_maxelem;
	int			 c_set_sysctls;
	int			 c_stop_cleanup;	/* stop removes our state */
	int			 c_log_level;
	int			 c_log_flows;		/* enum qt_log_flows */
};

/* Parses path into *cf.  Every error is logged as file:line: message;
 * returns the number of errors (0: the config is usable). */
int	config_load(const char *path, struct qt_config *cf);
/* The same, also collecting the error lines in errbuf (for qtctl). */
int	config_load_errors(const char *path, struct qt_config *cf,
	    char *errbuf, size_t errlen);
const struct qt_node	*config_self(const struct qt_config *);
/* The name of a keyword option's value (hash-key, log-flows). */
const char		*config_word(const char *option, int value);
int	config_node_by_id(const struct qt_config *, uint32_t id);
int	config_node_by_addr(const struct qt_config *, uint32_t addr);
/* Hand-off port on a back for connections from origin, service svc. */
uint16_t	config_hoport(const struct qt_config *, size_t svc, uint32_t origin);
/* Reverse: which origin and service a back's local port belongs to. */
int	config_hoport_owner(const struct qt_config *, uint16_t port,
	    size_t *svc, int *origin);

/* log.c */

enum { LOG_L_ERR, LOG_L_WARN, LOG_L_NOTICE, LOG_L_INFO, LOG_L_DEBUG };

void	log_init(const char *ident, int level);
void	log_set_level(int level);
void	log_set_plain(int on);
int	log_level_parse(const char *);
/* The call site's file, line and function reach journald as CODE_FILE,
 * CODE_LINE and CODE_FUNC. */
void	log_msg_at(const char *file, int line, const char *func, int level,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define log_msg(level, ...) \
	log_msg_at(__FILE__, __LINE__, __func__, (level), __VA_ARGS__)
/* A flow event: under journald it carries QT_FLOW, QT_CLIENT, QT_NODE,
 * QT_EVENT and QT_REASON (node and reason may be NULL: left out). */
void	log_flow_at(const char *file, int line, const char *func, int level,
	    uint64_t flow_id, const char *client, const char *node,
	    const char *event, const char *reason, const char *fmt, ...)
	    __attribute__((format(printf, 10, 11)));
#define log_flow(level, ...) \
	log_flow_at(__FILE__, __LINE__, __func__, (level), __VA_ARGS__)
/* Summaries of rate-limited messages whose window is over; they also go
 * out with the next message and at exit. */
void	log_flush_repeats(void);
void	log_flush_expired(void);
/* systemd's service notifications (libsystemd lives in log.c): no-ops
 * when not run by systemd.  sysd_watchdog() is the interval at which
 * WATCHDOG=1 must be sent, in seconds, 0 if none is expected. */
void	sysd_notify(const char *state);
double	sysd_watchdog(void);
#define log_err(...)	log_msg(LOG_L_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_L_WARN, __VA_ARGS__)
#define log_notice(...)	log_msg(LOG_L_NOTICE, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_L_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_L_DEBUG, __VA_ARGS__)
const char	*addr_str(uint32_t addr);	/* rotating static buffers */

/* auth.c: the only user of libsodium */

int	auth_init(void);
void	auth_mac(const uint8_t key[QT_KEY_LEN], const void *a, size_t alen,
	    const void *b, size_t blen, const void *c, size_t clen,
	    uint8_t mac[32]);
int	auth_verify(const uint8_t key[QT_KEY_LEN], const void *a, size_t alen,
	    const void *b, size_t blen, const void *c, size_t clen,
	    const uint8_t mac[32]);
void	auth_random(void *buf, size_t len);
int	auth_key_parse(const char *text, uint8_t key[QT_KEY_LEN]);

/* hdr.c: the hand-off header carried in the replayed SYN */

#define HDR_MAGIC	0x51544831u	/* "QTH1" */
#define HDR_VERSION	1
#define HDR_LEN		104		/* encoded size, MAC included */
#define HDR_MAX_REQ	65536

/* Everything the back needs that the client's own packets do not show. */
struct repair_state {
	uint32_t	rs_snd_seq;	/* front's write_seq */
	uint32_t	rs_rcv_nxt;
	uint32_t	rs_ts;		/* front's TCP timestamp clock */
	uint32_t	rs_snd_wl1, rs_snd_wnd, rs_max_window;
	uint32_t	rs_rcv_wnd, rs_rcv_wup;
	uint16_t	rs_mss;		/* MSS clamp */
	uint8_t		rs_snd_wscale, rs_rcv_wscale;
	uint8_t		rs_opts;	/* TCPI_OPT_* */
	uint8_t		rs_fin;		/* the client's FIN is in rcv_nxt */
};

struct hdr {
	uint32_t		h_origin;	/* origin node id */
	uint32_t		h_svc;		/* service index */
	uint8_t			h_token[QT_TOKEN_LEN];
	uint64_t		h_time_ms;	/* origin's wall clock */
	uint32_t		h_isn;		/* client's ISN */
	uint32_t		h_req_len;
	/* The front takes the connection back this long after h_time_ms
	 * at the earliest, unless confirmed (0: not said; 65535 at most). */
	uint32_t		h_budget_ms;
	struct repair_state	h_rs;
};

/* The 4-tuple the MAC binds the header to, in network order. */
struct hdr_tuple {
	uint32_t	t_cip;
	uint16_t	t_cport;
	uint32_t	t_bip;
	uint16_t	t_bport;
};

void	hdr_encode(const struct hdr *, const struct hdr_tuple *,
	    const void *req, const uint8_t key[QT_KEY_LEN],
	    uint8_t out[HDR_LEN]);
/* Decodes without checking the MAC (the request may not be complete). */
int	hdr_decode(const uint8_t *buf, size_t len, struct hdr *);
/* Checks the MAC over header, tuple and request: 0 ok, -1 forged. */
int	hdr_verify(const uint8_t buf[HDR_LEN], const struct hdr_tuple *,
	    const void *req, size_t reqlen, const uint8_t key[QT_KEY_LEN]);

/* repair.c: TCP_REPAIR, the kernel's connection freezer */

/* Freezes fd and reads its state; extra receives bytes still queued. */
int	repair_freeze(int fd, struct repair_state *, char *extra,
	    size_t extra_max, size_t *extra_len);
int	repair_thaw(int fd);
/* Loads the rebuilds' socket filter: at start, before privileges go. */
void	repair_init(void);
/* A socket ready for repair_restore (SO_REUSEADDR, then repair mode). */
int	repair_socket(void);
/* Socket fd (from repair_socket, or -1: a new one) bound to local and
 * connected to peer, in exactly rs; on failure it is closed. */
int	repair_restore(int fd, const struct sockaddr_in *local,
	    const struct sockaddr_in *peer, const struct repair_state *);
/* A frozen socket closes with nothing sent. */
void	repair_close(int fd);
/* The same, for a socket repair_freeze() froze and nothing thawed. */
void	repair_drop(int fd);
int	tcp_state(int fd);	/* TCP_INFO tcpi_state, -1 on error */
const char *tcp_state_name(int);	/* "ESTABLISHED", "LAST-ACK", ... */
/* 1 if the peer has acknowledged or sent a byte since the socket was
 * made (or rebuilt), 0 if not, -1 on error. */
int	tcp_heard(int fd);

/* replay.c: the only user of libnet */

struct replay;
struct replay	*replay_open(char *err, size_t errlen);
void		 replay_close(struct replay *);
/*
 * Sends, as the client cip:cport, to bip:bport: SYN (isn, options of rs,
 * payload hdr), ACK, then the request in marked segments.
 */
int	replay_send(struct replay *, const struct hdr_tuple *, uint32_t isn,
	    const struct repair_state *, const uint8_t hdr[HDR_LEN],
	    const void *req, size_t reqlen);
/* The request segments alone (replay_send ends with them). */
int	replay_send_data(struct replay *, const struct hdr_tuple *,
	    uint32_t isn, const struct repair_state *, const void *req,
	    size_t reqlen);

/* capture.c: the only user of libpcap */

struct cap_pkt {
	uint32_t	 p_src, p_dst;
	uint16_t	 p_sport, p_dport;	/* host order */
	uint32_t	 p_seq, p_ack;
	uint8_t		 p_flags;
	const uint8_t	*p_data;
	size_t		 p_len;
	uint64_t	 p_ts;	/* arrival, wall clock ns (0: unknown) */
};
struct capture;
typedef void (*cap_cb)(const struct cap_pkt *, void *arg);
/* Packets the node receives on iface (never those it sends), or those
 * logged to NFLOG group N if iface is "nflog:N", that match filter, each
 * handed to cb. */
struct capture	*capture_open(const char *iface, const char *filter,
	    cap_cb, void *arg, char *err, size_t errlen);
int		 capture_fd(struct capture *);
void		 capture_dispatch(struct capture *);
void		 capture_close(struct capture *);

/* privs.c */

/* Keeps CAP_NET_ADMIN, CAP_NET_RAW, CAP_NET_BIND_SERVICE; drops the rest
 * for good.  0 or -1 with errno. */
int	privs_drop(void);

/* sysctl.c */

/* Checks (or with fix, sets) the kernel settings a node relies on;
 * logs each one that is wrong.  Returns the number still wrong. */
int	sysctl_check(const char *iface, int fix);

/* timing.c */

/* The hand-off's steps, each timed on the node that does it. */
enum tm_stage {
	TM_FRONT_WAKE,	/* request in the kernel -> read by the daemon */
	TM_STEER,	/* steer_add */
	TM_FREEZE,	/* repair_freeze and the close */
	TM_REPLAY,	/* the replay's first send */
	TM_FRONT,	/* request in the kernel -> replay sent */
	TM_CONFIRM,	/* replay sent -> confirmation read */
	TM_CAPTURE,	/* replay in the kernel -> read by the capture */
	TM_REBUILD,	/* repair_restore */
	TM_FIRST_BYTE,	/* rebuilt -> first response byte sent */
	TM_BACK,	/* replay in the kernel -> first response byte sent */
	TM_NSTAGES
};

#define TM_NBUCKETS	512
#define TM_NLE		14

struct tm_hist {
	uint64_t	h_count, h_sum, h_max;	/* ns */
	uint64_t	h_b[TM_NBUCKETS];
	uint64_t	h_le[TM_NLE];	/* samples <= tm_le_ns[i] */
};

extern const uint64_t tm_le_ns[TM_NLE];
const char	*tm_stage_name(enum tm_stage);
size_t		 tm_bucket(uint64_t ns);
void		 tm_bucket_range(size_t b, uint64_t *lo, uint64_t *hi);
void		 tm_add(struct tm_hist *, uint64_t ns);
/* Adds TO - FROM unless FROM is 0 or the span is not plausible. */
void		 tm_span(struct tm_hist *, uint64_t from, uint64_t to);
uint64_t	 tm_quantile(const struct tm_hist *, double q);
uint64_t	 tm_mono_ns(void);
uint64_t	 tm_real_ns(void);	/* the clock of kernel timestamps */

/* netutil.c */

int	iface_of_addr(uint32_t addr, char *name, size_t len);
/* "A.B.C.D:PORT" or "unix:/path" into a socket address; 0 or -1. */
int	sock_addr_parse(const char *, struct sockaddr_storage *,
	    socklen_t *);
uint64_t	now_ms(void);	/* wall clock */
uint64_t	now_us(void);	/* wall clock */

#endif
