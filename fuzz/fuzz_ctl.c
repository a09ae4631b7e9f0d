/*
 * libFuzzer target: the control protocol's pure half.  The daemon runs
 * the frame checks on whatever a local client writes to the socket;
 * qtctl runs the JSON reader on whatever the daemon (or something
 * pretending to be it) answers.
 *
 * Properties: a header decodes only from its own encoding and within the
 * length limit; a request passing ctl_req_check has a known type; a
 * filter decodes only with both fields terminated and survives an encode
 * round trip.  Every JSON document the reader accepts, written back with
 * the daemon's writer, is pure ASCII, is read again, and gives the same
 * tree (bytes above 0x7f come back as U+0080..U+00FF, the writer's
 * documented escaping; numbers that are not a u64 and null come back as
 * strings, having no writer of their own).
 */
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "fuzz.h"

static int
is_u64(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 20 || (n > 1 && s[0] == '0') ||
	    strspn(s, "0123456789") != n)
		return 0;
	return n < 20 || strcmp(s, "18446744073709551615") <= 0;
}

static size_t
depth(const struct ctl_jv *v)
{
	const struct ctl_jv *c;
	size_t d, max = 0;

	if (v->jv_type != CJ_OBJ && v->jv_type != CJ_ARR)
		return 0;
	for (c = v->jv_child; c; c = c->jv_next)
		if ((d = depth(c)) > max)
			max = d;
	return max + 1;
}

static void
emit(struct ctl_jw *w, const struct ctl_jv *v, const char *key)
{
	const struct ctl_jv *c;

	switch (v->jv_type) {
	case CJ_OBJ:
	case CJ_ARR:
		if (v->jv_type == CJ_OBJ)
			ctl_jw_obj(w, key);
		else
			ctl_jw_arr(w, key);
		for (c = v->jv_child; c; c = c->jv_next)
			emit(w, c, v->jv_type == CJ_OBJ ? c->jv_key : NULL);
		ctl_jw_end(w);
		break;
	case CJ_STR:
		ctl_jw_str(w, key, v->jv_str);
		break;
	case CJ_NUM:
		if (is_u64(v->jv_str))
			ctl_jw_u64(w, key, strtoull(v->jv_str, NULL, 10));
		else
			ctl_jw_str(w, key, v->jv_str);
		break;
	case CJ_BOOL:
		ctl_jw_bool(w, key, v->jv_bool);
		break;
	case CJ_NULL:
		ctl_jw_str(w, key, "null");
		break;
	}
}

/* a, with each byte from 0x80 up as the UTF-8 of that code point, is b. */
static int
same_latin1(const char *a, const char *b)
{
	const unsigned char *p = (const unsigned char *)a;
	const unsigned char *q = (const unsigned char *)b;

	if (!a || !b)
		return a == b;
	for (; *p; p++) {
		if (*p < 0x80) {
			if (*q++ != *p)
				return 0;
			continue;
		}
		if (q[0] != (0xc0 | *p >> 6) || q[1] != (0x80 | (*p & 0x3f)))
			return 0;
		q += 2;
	}
	return *q == '\0';
}

static int
same(const struct ctl_jv *a, const struct ctl_jv *b)
{
	const struct ctl_jv *x, *y;

	if (!same_latin1(a->jv_key, b->jv_key))
		return 0;
	switch (a->jv_type) {
	case CJ_OBJ:
	case CJ_ARR:
		if (b->jv_type != a->jv_type)
			return 0;
		for (x = a->jv_child, y = b->jv_child; x && y;
		    x = x->jv_next, y = y->jv_next)
			if (!same(x, y))
				return 0;
		return x == NULL && y == NULL;
	case CJ_STR:
		return b->jv_type == CJ_STR && same_latin1(a->jv_str, b->jv_str);
	case CJ_NUM:
		return b->jv_type == (is_u64(a->jv_str) ? CJ_NUM : CJ_STR) &&
		    strcmp(a->jv_str, b->jv_str) == 0;
	case CJ_BOOL:
		return b->jv_type == CJ_BOOL && b->jv_bool == a->jv_bool;
	case CJ_NULL:
		return b->jv_type == CJ_STR && strcmp(b->jv_str, "null") == 0;
	}
	return 0;
}

static void
check_json(const uint8_t *data, size_t size)
{
	struct ctl_jv *v, *v2;
	struct ctl_buf b;
	struct ctl_jw w;
	char err[128];
	size_t i;

	err[0] = '\0';
	if (!(v = ctl_json_parse((const char *)data, size, err,
	    sizeof(err)))) {
		FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)));
		return;
	}
	if (v->jv_type == CJ_OBJ && v->jv_child)
		FUZZ_CHECK(ctl_json_get(v, v->jv_child->jv_key) ==
		    v->jv_child);
	/* The writer nests at most CTL_JW_DEPTH - 1 deep, the reader
	 * CTL_JSON_DEPTH: deeper trees cannot be written back. */
	if (depth(v) < CTL_JW_DEPTH) {
		ctl_buf_init(&b);
		ctl_jw_init(&w, &b);
		emit(&w, v, NULL);
		FUZZ_CHECK(b.cb_err == 0 && w.jw_depth == 0);
		for (i = 0; i < b.cb_len; i++)
			FUZZ_CHECK((unsigned char)b.cb_data[i] >= 0x20 &&
			    (unsigned char)b.cb_data[i] < 0x7f);
		v2 = ctl_json_parse(b.cb_data, b.cb_len, err, sizeof(err));
		FUZZ_CHECK(v2 != NULL);
		FUZZ_CHECK(same(v, v2));
		ctl_json_free(v2);
		ctl_buf_free(&b);
	}
	ctl_json_free(v);
}

static void
check_filter(const uint8_t *p, size_t len)
{
	struct ctl_filter f, f2;
	uint8_t enc[sizeof(struct ctl_filter)];
	const char *err = NULL;

	if (ctl_filter_decode(p, len, &f, &err) == -1) {
		FUZZ_CHECK(err != NULL);
		FUZZ_CHECK(f.cf_node[0] == '\0' && f.cf_state[0] == '\0');
		return;
	}
	FUZZ_CHECK(len == 0 || len == sizeof(f));
	FUZZ_CHECK(memchr(f.cf_node, '\0', sizeof(f.cf_node)) &&
	    memchr(f.cf_state, '\0', sizeof(f.cf_state)));
	FUZZ_CHECK(ctl_filter_encode(f.cf_node, f.cf_state, enc) == 0);
	FUZZ_CHECK(ctl_filter_decode(enc, sizeof(enc), &f2, &err) == 0);
	FUZZ_CHECK(strcmp(f.cf_node, f2.cf_node) == 0 &&
	    strcmp(f.cf_state, f2.cf_state) == 0);
}

static void
check_frame(const uint8_t *data, size_t size)
{
	struct ctl_hdr h;
	uint8_t enc[CTL_HDR_LEN];
	const char *err = NULL;
	size_t avail;
	int rc;

	rc = ctl_hdr_decode(data, size, CTL_MAX_REQ, &h, &err);
	FUZZ_CHECK(rc >= -1 && rc <= 1);
	if (rc == -1) {
		FUZZ_CHECK(err != NULL);
		return;
	}
	if (rc == 0) {
		FUZZ_CHECK(size < CTL_HDR_LEN);
		FUZZ_CHECK(size < 4 || memcmp(data, "QTC1", 4) == 0);
		return;
	}
	FUZZ_CHECK(size >= CTL_HDR_LEN && h.ch_len <= CTL_MAX_REQ);
	ctl_hdr_encode(enc, h.ch_type, h.ch_len);
	FUZZ_CHECK(memcmp(enc, data, CTL_HDR_LEN) == 0);

	err = NULL;
	if (ctl_req_check(&h, &err) == -1) {
		FUZZ_CHECK(err != NULL);
		return;
	}
	FUZZ_CHECK(h.ch_type >= CTL_STATS && h.ch_type <= CTL_UNDRAIN);
	FUZZ_CHECK(strcmp(ctl_type_name(h.ch_type), "?") != 0);
	FUZZ_CHECK(h.ch_len <= sizeof(struct ctl_filter));
	avail = size - CTL_HDR_LEN;
	if (h.ch_type == CTL_LIST_FLOWS && avail >= h.ch_len)
		check_filter(data + CTL_HDR_LEN, h.ch_len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_frame(data, size);
	/* The magic is judged from its fourth byte on. */
	if (size > 4)
		check_frame(data, 4);
	check_filter(data, size);
	check_json(data, size);
	return 0;
}
