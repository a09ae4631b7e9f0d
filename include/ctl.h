/*
 * The control protocol between quicktwitchd and qtctl, and the pure
 * pieces both sides share: the frame header, the per-type length rules,
 * a JSON writer and a small JSON reader.  Nothing here touches a socket
 * or the daemon's state, so all of it is unit-tested.
 *
 * A message is a fixed header followed by len bytes of payload:
 *
 *	uint32	magic	"QTC1"
 *	uint16	version	1
 *	uint16	type
 *	uint32	len
 *
 * all in network order.  One request per connection; the daemon answers
 * OK with a JSON document, or ERROR with {"error": "..."}, and closes.
 */
#ifndef CTL_H
#define CTL_H

#include <stddef.h>
#include <stdint.h>

#define CTL_MAGIC	0x51544331u	/* "QTC1" */
#define CTL_VERSION	1
#define CTL_HDR_LEN	12
#define CTL_MAX_REQ	4096		/* request payload */
#define CTL_MAX_REPLY	(256u << 20)	/* what qtctl accepts */
#define CTL_FILTER_LEN	32		/* one LIST_FLOWS filter field */

enum ctl_type {
	CTL_STATS = 1,
	CTL_LIST_FLOWS,
	CTL_SHOW_CONFIG,
	CTL_NODES,
	CTL_STOP,		/* payload: one byte, 1 = remove our state */
	CTL_RELOAD,
	CTL_DRAIN,		/* payload: a node's name, NUL-padded */
	CTL_UNDRAIN,		/* payload: a node's name, NUL-padded */
	CTL_OK = 100,
	CTL_ERROR,
};

struct ctl_hdr {
	uint32_t	ch_magic;
	uint16_t	ch_version;
	uint16_t	ch_type;
	uint32_t	ch_len;
};

/*
 * LIST_FLOWS' payload: empty (no filter) or exactly two NUL-padded
 * fields, the peer node's name and the state's name; an empty field
 * matches everything.
 */
struct ctl_filter {
	char	cf_node[CTL_FILTER_LEN];
	char	cf_state[CTL_FILTER_LEN];
};

void	ctl_hdr_encode(uint8_t out[CTL_HDR_LEN], uint16_t type, uint32_t len);
/*
 * Decodes and checks a header against the magic, the version and maxlen.
 * Returns 1 with *h filled, 0 when fewer than CTL_HDR_LEN bytes are
 * there yet, -1 with *err set when the header is unacceptable.
 */
int	ctl_hdr_decode(const uint8_t *buf, size_t len, uint32_t maxlen,
	    struct ctl_hdr *h, const char **err);
/* Whether a request's type is known and its length right for the type. */
int	ctl_req_check(const struct ctl_hdr *h, const char **err);
const char	*ctl_type_name(uint16_t type);

int	ctl_filter_encode(const char *node, const char *state,
	    uint8_t out[sizeof(struct ctl_filter)]);
int	ctl_filter_decode(const void *buf, size_t len, struct ctl_filter *f,
	    const char **err);

/* A growing output buffer; an allocation failure sticks in cb_err. */
struct ctl_buf {
	char	*cb_data;
	size_t	 cb_len, cb_cap;
	int	 cb_err;
};

void	ctl_buf_init(struct ctl_buf *);
void	ctl_buf_free(struct ctl_buf *);
void	ctl_buf_add(struct ctl_buf *, const void *, size_t);
void	ctl_buf_printf(struct ctl_buf *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/*
 * JSON writer: tracks nesting so that commas are never the caller's
 * business.  key is NULL inside an array, a member name inside an
 * object.  Strings are escaped to pure ASCII: bytes from 0x7f up become
 * \u00XX, so a client's request line can never make the document
 * invalid.
 */
#define CTL_JW_DEPTH	16

struct ctl_jw {
	struct ctl_buf	*jw_buf;
	int		 jw_depth;
	int		 jw_first[CTL_JW_DEPTH];	/* nothing written yet */
	char		 jw_close[CTL_JW_DEPTH];	/* '}' or ']' */
};

void	ctl_jw_init(struct ctl_jw *, struct ctl_buf *);
void	ctl_jw_obj(struct ctl_jw *, const char *key);
void	ctl_jw_arr(struct ctl_jw *, const char *key);
void	ctl_jw_end(struct ctl_jw *);
void	ctl_jw_str(struct ctl_jw *, const char *key, const char *val);
void	ctl_jw_u64(struct ctl_jw *, const char *key, uint64_t val);
void	ctl_jw_bool(struct ctl_jw *, const char *key, int val);
/* A number with three decimals (seconds from milliseconds). */
void	ctl_jw_ms(struct ctl_jw *, const char *key, uint64_t ms);
void	ctl_json_escape(struct ctl_buf *, const char *s);

/*
 * JSON reader, enough for qtctl to render the daemon's replies: a tree
 * of values; a number keeps its text so 64-bit counters print exactly.
 */
enum ctl_jtype { CJ_NULL, CJ_BOOL, CJ_NUM, CJ_STR, CJ_ARR, CJ_OBJ };

struct ctl_jv {
	enum ctl_jtype	 jv_type;
	char		*jv_key;	/* member name, inside an object */
	char		*jv_str;	/* CJ_STR: unescaped; CJ_NUM: text */
	int		 jv_bool;
	struct ctl_jv	*jv_child;	/* first element or member */
	struct ctl_jv	*jv_next;
};

#define CTL_JSON_DEPTH	32

struct ctl_jv	*ctl_json_parse(const char *text, size_t len, char *err,
		    size_t errlen);
void		 ctl_json_free(struct ctl_jv *);
const struct ctl_jv	*ctl_json_get(const struct ctl_jv *obj,
			    const char *key);

/* The counters of struct qt_stats, in the order replies list them. */
struct ctl_counter {
	const char	*cc_name;
	size_t		 cc_off;	/* in struct qt_stats */
	const char	*cc_help;
};

extern const struct ctl_counter	ctl_counters[];
extern const size_t		ctl_ncounters;
const struct ctl_counter	*ctl_counter_by_name(const char *);

#endif
