/*
 * The control protocol's pure half, shared by quicktwitchd and qtctl:
 * frame header, per-type length rules, the LIST_FLOWS filter, a JSON
 * writer for the daemon and a JSON reader for qtctl.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "qtd.h"

#define ST(f)	offsetof(struct qt_stats, f)

const struct ctl_counter ctl_counters[] = {
	{ "accepted", ST(st_accepted),
	    "Client connections accepted by the front." },
	{ "local", ST(st_local),
	    "First requests the front served itself." },
	{ "handoffs", ST(st_handoffs),
	    "Hand-offs the front started." },
	{ "handed_off", ST(st_handed_off),
	    "Hand-offs a back confirmed." },
	{ "taken_back", ST(st_taken_back),
	    "Hand-offs that failed and were served here." },
	{ "resends", ST(st_resends),
	    "Replays sent again after a timeout." },
	{ "back_flows", ST(st_back_flows),
	    "Connections rebuilt here as a back." },
	{ "forged", ST(st_forged),
	    "Replays whose MAC did not verify." },
	{ "stale", ST(st_stale),
	    "Replays outside the freshness window, or too late to be "
	    "confirmed before their front takes them back." },
	{ "dup_replays", ST(st_dup_replays),
	    "Duplicate replays of a hand-off already served." },
	{ "refused", ST(st_refused),
	    "Hand-offs refused by a back." },
	{ "superseded", ST(st_superseded),
	    "Back flows dropped for a newer connection on their tuple." },
	{ "bad_requests", ST(st_bad_requests),
	    "Requests answered with an HTTP error." },
	{ "bytes_served", ST(st_bytes_served),
	    "Response body bytes sent." },
	{ "band_bad", ST(st_band_bad),
	    "Band messages dropped as malformed or unauthenticated." },
	{ "taken_back_timeout", ST(st_tb_timeout),
	    "Taken back: no confirmation after every try." },
	{ "taken_back_refused", ST(st_tb_refused),
	    "Taken back: the back refused the hand-off." },
	{ "taken_back_error", ST(st_tb_error),
	    "Taken back: a step on the front failed." },
	{ "teardown_report", ST(st_td_report),
	    "Handed-off flows torn down on the back's close report." },
	{ "teardown_fin", ST(st_td_fin),
	    "Torn down after the client's FIN: the back had no flow." },
	{ "teardown_rst", ST(st_td_rst),
	    "Torn down after the client's RST: the back had no flow." },
	{ "teardown_sweep", ST(st_td_sweep),
	    "Torn down by the sweep: the back disowned or never answered." },
	{ "teardown_reuse", ST(st_td_reuse),
	    "Torn down: the client opened a new connection on the tuple." },
	{ "steer_failed", ST(st_steer_failed),
	    "Hand-offs not started: steering refused (conntrack table full)." },
	{ "adopted", ST(st_adopted),
	    "Handed-off flows rebuilt from the kernel after a restart." },
	{ "relayed", ST(st_relayed),
	    "Connections relayed to the node's own upstream server." },
	{ "proxied", ST(st_proxied),
	    "Connections the front proxied to a node (proxy mode)." },
	{ "proxy_bytes", ST(st_proxy_bytes),
	    "Response bytes the front carried as a proxy." },
	{ "upstream_502", ST(st_upstream_502),
	    "502s: an upstream or proxied node unreachable or silent." },
	{ "upstream_504", ST(st_upstream_504),
	    "504s: an upstream or proxied node too slow to answer." },
	{ "upstream_spare", ST(st_upstream_spare),
	    "Relays begun on a spare connection made ahead of need." },
	{ "upstream_retries", ST(st_upstream_retries),
	    "Requests sent again after a spare failed unanswered." },
	{ "confirm_batches", ST(st_confirm_batches),
	    "Band datagrams carrying several confirmations (CONFIRMS)." },
	{ "confirm_batched", ST(st_confirm_batched),
	    "Confirmations sent in them (the rest went one a datagram)." },
};
const size_t ctl_ncounters = sizeof(ctl_counters) / sizeof(ctl_counters[0]);

/* A counter added to struct qt_stats needs its row above. */
_Static_assert(sizeof(struct qt_stats) ==
    sizeof(ctl_counters) / sizeof(ctl_counters[0]) * sizeof(uint64_t),
    "struct qt_stats and ctl_counters[] differ");

const struct ctl_counter *
ctl_counter_by_name(const char *name)
{
	size_t i;

	for (i = 0; i < ctl_ncounters; i++)
		if (strcmp(ctl_counters[i].cc_name, name) == 0)
			return &ctl_counters[i];
	return NULL;
}

/* Frames */

void
ctl_hdr_encode(uint8_t out[CTL_HDR_LEN], uint16_t type, uint32_t len)
{
	uint32_t v32;
	uint16_t v16;

	v32 = htonl(CTL_MAGIC);
	memcpy(out, &v32, 4);
	v16 = htons(CTL_VERSION);
	memcpy(out + 4, &v16, 2);
	v16 = htons(type);
	memcpy(out + 6, &v16, 2);
	v32 = htonl(len);
	memcpy(out + 8, &v32, 4);
}

int
ctl_hdr_decode(const uint8_t *buf, size_t len, uint32_t maxlen,
    struct ctl_hdr *h, const char **err)
{
	uint32_t v32;
	uint16_t v16;

	/* The magic is judged as soon as its bytes are in, so that a
	 * stranger speaking another protocol is told at once. */
	if (len >= 4) {
		memcpy(&v32, buf, 4);
		if (ntohl(v32) != CTL_MAGIC) {
			*err = "bad magic: not a quicktwitch control message";
			return -1;
		}
	}
	if (len < CTL_HDR_LEN)
		return 0;
	h->ch_magic = CTL_MAGIC;
	memcpy(&v16, buf + 4, 2);
	h->ch_version = ntohs(v16);
	memcpy(&v16, buf + 6, 2);
	h->ch_type = ntohs(v16);
	memcpy(&v32, buf + 8, 4);
	h->ch_len = ntohl(v32);
	if (h->ch_version != CTL_VERSION) {
		*err = "unsupported protocol version";
		return -1;
	}
	if (h->ch_len > maxlen) {
		*err = "message too long";
		return -1;
	}
	return 1;
}

int
ctl_req_check(const struct ctl_hdr *h, const char **err)
{
	switch (h->ch_type) {
	case CTL_STATS:
	case CTL_SHOW_CONFIG:
	case CTL_NODES:
		if (h->ch_len != 0) {
			*err = "this request takes no payload";
			return -1;
		}
		return 0;
	case CTL_RELOAD:
		if (h->ch_len != 0) {
			*err = "this request takes no payload";
			return -1;
		}
		return 0;
	case CTL_DRAIN:
	case CTL_UNDRAIN:
		if (h->ch_len != CTL_FILTER_LEN) {
			*err = "drain: payload is not a node name";
			return -1;
		}
		return 0;
	case CTL_STOP:
		if (h->ch_len != 1) {
			*err = "stop: payload is not one byte";
			return -1;
		}
		return 0;
	case CTL_LIST_FLOWS:
		if (h->ch_len != 0 && h->ch_len != sizeof(struct ctl_filter)) {
			*err = "list-flows: payload is not a filter";
			return -1;
		}
		return 0;
	default:
		*err = "unknown request type";
		return -1;
	}
}

const char *
ctl_type_name(uint16_t type)
{
	switch (type) {
	case CTL_STATS:
		return "stats";
	case CTL_LIST_FLOWS:
		return "list-flows";
	case CTL_SHOW_CONFIG:
		return "show-config";
	case CTL_NODES:
		return "nodes";
	case CTL_STOP:
		return "stop";
	case CTL_RELOAD:
		return "reload";
	case CTL_DRAIN:
		return "drain";
	case CTL_UNDRAIN:
		return "undrain";
	case CTL_OK:
		return "ok";
	case CTL_ERROR:
		return "error";
	}
	return "?";
}

int
ctl_filter_encode(const char *node, const char *state,
    uint8_t out[sizeof(struct ctl_filter)])
{
	struct ctl_filter f;

	memset(&f, 0, sizeof(f));
	if ((node && strlen(node) >= sizeof(f.cf_node)) ||
	    (state && strlen(state) >= sizeof(f.cf_state)))
		return -1;
	if (node)
		strcpy(f.cf_node, node);
	if (state)
		strcpy(f.cf_state, state);
	memcpy(out, &f, sizeof(f));
	return 0;
}

int
ctl_filter_decode(const void *buf, size_t len, struct ctl_filter *f,
    const char **err)
{
	memset(f, 0, sizeof(*f));
	if (len == 0)
		return 0;
	if (len != sizeof(*f)) {
		*err = "filter has the wrong length";
		return -1;
	}
	memcpy(f, buf, sizeof(*f));
	/* Each field must hold its own terminator: never trust the
	 * sender to have put one there. */
	if (!memchr(f->cf_node, '\0', sizeof(f->cf_node)) ||
	    !memchr(f->cf_state, '\0', sizeof(f->cf_state))) {
		*err = "filter field not terminated";
		memset(f, 0, sizeof(*f));
		return -1;
	}
	return 0;
}

/* Output buffer */

void
ctl_buf_init(struct ctl_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void
ctl_buf_free(struct ctl_buf *b)
{
	free(b->cb_data);
	ctl_buf_init(b);
}

static int
ctl_buf_reserve(struct ctl_buf *b, size_t more)
{
	size_t want;
	char *nd;

	if (b->cb_err)
		return -1;
	if (more > SIZE_MAX / 2 - b->cb_len) {
		b->cb_err = 1;
		return -1;
	}
	want = b->cb_len + more + 1;	/* room for a terminator */
	if (want <= b->cb_cap)
		return 0;
	if (want < 1024)
		want = 1024;
	if (want < b->cb_cap * 2)
		want = b->cb_cap * 2;
	if (!(nd = realloc(b->cb_data, want))) {
		b->cb_err = 1;
		return -1;
	}
	b->cb_data = nd;
	b->cb_cap = want;
	return 0;
}

void
ctl_buf_add(struct ctl_buf *b, const void *p, size_t n)
{
	if (ctl_buf_reserve(b, n) == -1)
		return;
	memcpy(b->cb_data + b->cb_len, p, n);
	b->cb_len += n;
	b->cb_data[b->cb_len] = '\0';
}

void
ctl_buf_printf(struct ctl_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->cb_err = 1;
		return;
	}
	if (ctl_buf_reserve(b, (size_t)n) == -1)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(b->cb_data + b->cb_len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->cb_len += (size_t)n;
}

/* JSON writer */

void
ctl_json_escape(struct ctl_buf *b, const char *s)
{
	const unsigned char *p;

	ctl_buf_add(b, "\"", 1);
	for (p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			ctl_buf_add(b, "\\", 1);
			ctl_buf_add(b, p, 1);
		} else if (*p == '\n')
			ctl_buf_add(b, "\\n", 2);
		else if (*p == '\r')
			ctl_buf_add(b, "\\r", 2);
		else if (*p == '\t')
			ctl_buf_add(b, "\\t", 2);
		else if (*p < 0x20 || *p >= 0x7f)
			ctl_buf_printf(b, "\\u%04x", *p);
		else
			ctl_buf_add(b, p, 1);
	}
	ctl_buf_add(b, "\"", 1);
}

void
ctl_jw_init(struct ctl_jw *w, struct ctl_buf *b)
{
	memset(w, 0, sizeof(*w));
	w->jw_buf = b;
	w->jw_first[0] = 1;
}

/* The separator and the member name that come before any value. */
static void
ctl_jw_pre(struct ctl_jw *w, const char *key)
{
	if (!w->jw_first[w->jw_depth])
		ctl_buf_add(w->jw_buf, ",", 1);
	w->jw_first[w->jw_depth] = 0;
	if (key) {
		ctl_json_escape(w->jw_buf, key);
		ctl_buf_add(w->jw_buf, ":", 1);
	}
}

static void
ctl_jw_open(struct ctl_jw *w, const char *key, char c)
{
	ctl_jw_pre(w, key);
	ctl_buf_add(w->jw_buf, &c, 1);
	if (w->jw_depth + 1 >= CTL_JW_DEPTH) {
		w->jw_buf->cb_err = 1;	/* a programming error, not data */
		return;
	}
	w->jw_depth++;
	w->jw_first[w->jw_depth] = 1;
	w->jw_close[w->jw_depth] = c == '{' ? '}' : ']';
}

void
ctl_jw_obj(struct ctl_jw *w, const char *key)
{
	ctl_jw_open(w, key, '{');
}

void
ctl_jw_arr(struct ctl_jw *w, const char *key)
{
	ctl_jw_open(w, key, '[');
}

void
ctl_jw_end(struct ctl_jw *w)
{
	if (w->jw_depth == 0) {
		w->jw_buf->cb_err = 1;
		return;
	}
	ctl_buf_add(w->jw_buf, &w->jw_close[w->jw_depth--], 1);
}

void
ctl_jw_str(struct ctl_jw *w, const char *key, const char *val)
{
	ctl_jw_pre(w, key);
	ctl_json_escape(w->jw_buf, val);
}

void
ctl_jw_u64(struct ctl_jw *w, const char *key, uint64_t val)
{
	ctl_jw_pre(w, key);
	ctl_buf_printf(w->jw_buf, "%llu", (unsigned long long)val);
}

void
ctl_jw_bool(struct ctl_jw *w, const char *key, int val)
{
	ctl_jw_pre(w, key);
	ctl_buf_printf(w->jw_buf, "%s", val ? "true" : "false");
}

void
ctl_jw_ms(struct ctl_jw *w, const char *key, uint64_t ms)
{
	ctl_jw_pre(w, key);
	ctl_buf_printf(w->jw_buf, "%llu.%03u", (unsigned long long)(ms / 1000),
	    (unsigned)(ms % 1000));
}

/* JSON reader */

struct ctl_jp {
	const char	*jp_start, *jp_p, *jp_end;
	char		*jp_err;
	size_t		 jp_errlen;
	int		 jp_depth;
	int		 jp_failed;
};

static struct ctl_jv	*ctl_jp_value(struct ctl_jp *);

static void
ctl_jp_fail(struct ctl_jp *j, const char *what)
{
	if (!j->jp_failed && j->jp_errlen)
		snprintf(j->jp_err, j->jp_errlen, "%s at offset %zu", what,
		    (size_t)(j->jp_p - j->jp_start));
	j->jp_failed = 1;
}

static void
ctl_jp_ws(struct ctl_jp *j)
{
	while (j->jp_p < j->jp_end && (*j->jp_p == ' ' || *j->jp_p == '\t' ||
	    *j->jp_p == '\n' || *j->jp_p == '\r'))
		j->jp_p++;
}

static int
ctl_jp_hex4(struct ctl_jp *j, unsigned *out)
{
	unsigned v = 0;
	int i, c;

	if (j->jp_end - j->jp_p < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		c = (unsigned char)*j->jp_p++;
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static void
ctl_utf8(struct ctl_buf *b, unsigned cp)
{
	unsigned char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | cp >> 6);
		u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | cp >> 12);
		u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xf0 | cp >> 18);
		u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		u[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	ctl_buf_add(b, u, n);
}

/* A string at jp_p (on its '"'), unescaped into a new C string. */
static char *
ctl_jp_string(struct ctl_jp *j)
{
	struct ctl_buf b;
	unsigned cp, lo;
	int c;

	ctl_buf_init(&b);
	ctl_buf_add(&b, "", 0);
	j->jp_p++;
	for (;;) {
		if (j->jp_p >= j->jp_end) {
			ctl_jp_fail(j, "unterminated string");
			goto fail;
		}
		c = (unsigned char)*j->jp_p++;
		if (c == '"')
			break;
		if (c < 0x20) {
			ctl_jp_fail(j, "control character in string");
			goto fail;
		}
		if (c != '\\') {
			ctl_buf_add(&b, &(char){ (char)c }, 1);
			continue;
		}
		if (j->jp_p >= j->jp_end) {
			ctl_jp_fail(j, "unterminated string");
			goto fail;
		}
		switch (c = *j->jp_p++) {
		case '"':
		case '\\':
		case '/':
			ctl_buf_add(&b, &(char){ (char)c }, 1);
			break;
		case 'b':
			ctl_buf_add(&b, "\b", 1);
			break;
		case 'f':
			ctl_buf_add(&b, "\f", 1);
			break;
		case 'n':
			ctl_buf_add(&b, "\n", 1);
			break;
		case 'r':
			ctl_buf_add(&b, "\r", 1);
			break;
		case 't':
			ctl_buf_add(&b, "\t", 1);
			break;
		case 'u':
			if (ctl_jp_hex4(j, &cp) == -1) {
				ctl_jp_fail(j, "bad \\u escape");
				goto fail;
			}
			if (cp >= 0xdc00 && cp <= 0xdfff)
				goto surrogate;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (j->jp_end - j->jp_p < 2 || j->jp_p[0] != '\\' ||
				    j->jp_p[1] != 'u')
					goto surrogate;
				j->jp_p += 2;
				if (ctl_jp_hex4(j, &lo) == -1 || lo < 0xdc00 ||
				    lo > 0xdfff)
					goto surrogate;
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				    (lo - 0xdc00);
			}
			/* A C string cannot carry a NUL. */
			if (cp == 0) {
				ctl_jp_fail(j, "\\u0000 in string");
				goto fail;
			}
			ctl_utf8(&b, cp);
			break;
		default:
			ctl_jp_fail(j, "bad escape");
			goto fail;
		}
	}
	if (b.cb_err) {
		ctl_jp_fail(j, "out of memory");
		goto fail;
	}
	return b.cb_data;
surrogate:
	ctl_jp_fail(j, "unpaired surrogate");
fail:
	ctl_buf_free(&b);
	return NULL;
}

static size_t
ctl_jp_digits(struct ctl_jp *j)
{
	const char *s = j->jp_p;

	while (j->jp_p < j->jp_end && *j->jp_p >= '0' && *j->jp_p <= '9')
		j->jp_p++;
	return (size_t)(j->jp_p - s);
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, kept as text. */
static char *
ctl_jp_number(struct ctl_jp *j)
{
	const char *s = j->jp_p;
	char *t;
	size_t n;

	if (j->jp_p < j->jp_end && *j->jp_p == '-')
		j->jp_p++;
	if (j->jp_p < j->jp_end && *j->jp_p == '0')
		j->jp_p++;
	else if (ctl_jp_digits(j) == 0)
		goto bad;
	if (j->jp_p < j->jp_end && *j->jp_p == '.') {
		j->jp_p++;
		if (ctl_jp_digits(j) == 0)
			goto bad;
	}
	if (j->jp_p < j->jp_end && (*j->jp_p == 'e' || *j->jp_p == 'E')) {
		j->jp_p++;
		if (j->jp_p < j->jp_end && (*j->jp_p == '+' || *j->jp_p == '-'))
			j->jp_p++;
		if (ctl_jp_digits(j) == 0)
			goto bad;
	}
	n = (size_t)(j->jp_p - s);
	if (!(t = malloc(n + 1))) {
		ctl_jp_fail(j, "out of memory");
		return NULL;
	}
	memcpy(t, s, n);
	t[n] = '\0';
	return t;
bad:
	ctl_jp_fail(j, "bad number");
	return NULL;
}

static int
ctl_jp_word(struct ctl_jp *j, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(j->jp_end - j->jp_p) < n || memcmp(j->jp_p, w, n) != 0)
		return 0;
	j->jp_p += n;
	return 1;
}

/* The elements of an array or the members of an object, after the
 * opening bracket, up to and including the closing one. */
static int
ctl_jp_members(struct ctl_jp *j, struct ctl_jv *v, int obj)
{
	struct ctl_jv **tail = &v->jv_child, *e;
	char close = obj ? '}' : ']';
	char *key = NULL;

	ctl_jp_ws(j);
	if (j->jp_p < j->jp_end && *j->jp_p == close) {
		j->jp_p++;
		return 0;
	}
	for (;;) {
		ctl_jp_ws(j);
		if (obj) {
			if (j->jp_p >= j->jp_end || *j->jp_p != '"') {
				ctl_jp_fail(j, "expected a member name");
				return -1;
			}
			if (!(key = ctl_jp_string(j)))
				return -1;
			ctl_jp_ws(j);
			if (j->jp_p >= j->jp_end || *j->jp_p != ':') {
				free(key);
				ctl_jp_fail(j, "expected ':'");
				return -1;
			}
			j->jp_p++;
		}
		if (!(e = ctl_jp_value(j))) {
			free(key);
			return -1;
		}
		e->jv_key = key;
		key = NULL;
		*tail = e;
		tail = &e->jv_next;
		ctl_jp_ws(j);
		if (j->jp_p < j->jp_end && *j->jp_p == ',') {
			j->jp_p++;
			continue;
		}
		if (j->jp_p < j->jp_end && *j->jp_p == close) {
			j->jp_p++;
			return 0;
		}
		ctl_jp_fail(j, obj ? "expected ',' or '}'" : "expected ',' or ']'");
		return -1;
	}
}

static struct ctl_jv *
ctl_jp_value(struct ctl_jp *j)
{
	struct ctl_jv *v;
	int c;

	ctl_jp_ws(j);
	if (j->jp_p >= j->jp_end) {
		ctl_jp_fail(j, "unexpected end");
		return NULL;
	}
	if (!(v = calloc(1, sizeof(*v)))) {
		ctl_jp_fail(j, "out of memory");
		return NULL;
	}
	c = *j->jp_p;
	if (c == '{' || c == '[') {
		if (++j->jp_depth > CTL_JSON_DEPTH) {
			ctl_jp_fail(j, "nested too deep");
			goto fail;
		}
		j->jp_p++;
		v->jv_type = c == '{' ? CJ_OBJ : CJ_ARR;
		if (ctl_jp_members(j, v, c == '{') == -1)
			goto fail;
		j->jp_depth--;
	} else if (c == '"') {
		v->jv_type = CJ_STR;
		if (!(v->jv_str = ctl_jp_string(j)))
			goto fail;
	} else if (c == '-' || (c >= '0' && c <= '9')) {
		v->jv_type = CJ_NUM;
		if (!(v->jv_str = ctl_jp_number(j)))
			goto fail;
	} else if (ctl_jp_word(j, "true")) {
		v->jv_type = CJ_BOOL;
		v->jv_bool = 1;
	} else if (ctl_jp_word(j, "false")) {
		v->jv_type = CJ_BOOL;
	} else if (ctl_jp_word(j, "null")) {
		v->jv_type = CJ_NULL;
	} else {
		ctl_jp_fail(j, "unexpected character");
		goto fail;
	}
	return v;
fail:
	ctl_json_free(v);
	return NULL;
}

struct ctl_jv *
ctl_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct ctl_jp j = {
		.jp_start = text,
		.jp_p = text,
		.jp_end = text + len,
		.jp_err = err,
		.jp_errlen = errlen,
	};
	struct ctl_jv *v;

	if (!(v = ctl_jp_value(&j)))
		return NULL;
	ctl_jp_ws(&j);
	if (j.jp_p != j.jp_end) {
		ctl_jp_fail(&j, "trailing data");
		ctl_json_free(v);
		return NULL;
	}
	return v;
}

void
ctl_json_free(struct ctl_jv *v)
{
	struct ctl_jv *next;

	/* Siblings in a loop, children by recursion: the depth is capped,
	 * the length of an array is not. */
	for (; v; v = next) {
		next = v->jv_next;
		ctl_json_free(v->jv_child);
		free(v->jv_key);
		free(v->jv_str);
		free(v);
	}
}

const struct ctl_jv *
ctl_json_get(const struct ctl_jv *obj, const char *key)
{
	const struct ctl_jv *m;

	if (!obj || obj->jv_type != CJ_OBJ)
		return NULL;
	for (m = obj->jv_child; m; m = m->jv_next)
		if (m->jv_key && strcmp(m->jv_key, key) == 0)
			return m;
	return NULL;
}
