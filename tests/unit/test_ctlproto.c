/*
 * Unit tests for the control protocol's pure half (src/ctlproto.c):
 * frame header, per-type length rules, the LIST_FLOWS filter, the JSON
 * writer and the JSON reader qtctl renders from.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ctl.h"

static void
hdr_round_trip(void **state)
{
	uint8_t buf[CTL_HDR_LEN];
	struct ctl_hdr h;
	const char *err = NULL;

	(void)state;
	ctl_hdr_encode(buf, CTL_LIST_FLOWS, 64);
	assert_memory_equal(buf, "QTC1", 4);
	assert_int_equal(ctl_hdr_decode(buf, sizeof(buf), CTL_MAX_REQ, &h,
	    &err), 1);
	assert_int_equal(h.ch_magic, CTL_MAGIC);
	assert_int_equal(h.ch_version, CTL_VERSION);
	assert_int_equal(h.ch_type, CTL_LIST_FLOWS);
	assert_int_equal(h.ch_len, 64);
	/* Network order on the wire. */
	assert_int_equal(buf[4], 0);
	assert_int_equal(buf[5], CTL_VERSION);
	assert_int_equal(buf[7], CTL_LIST_FLOWS);
	assert_int_equal(buf[11], 64);
}

static void
hdr_short(void **state)
{
	uint8_t buf[CTL_HDR_LEN];
	struct ctl_hdr h;
	const char *err = NULL;
	size_t n;

	(void)state;
	ctl_hdr_encode(buf, CTL_STATS, 0);
	for (n = 0; n < CTL_HDR_LEN; n++)
		assert_int_equal(ctl_hdr_decode(buf, n, CTL_MAX_REQ, &h,
		    &err), 0);
	/* Fewer than four bytes of anything: not yet judged. */
	assert_int_equal(ctl_hdr_decode((const uint8_t *)"xyz", 3,
	    CTL_MAX_REQ, &h, &err), 0);
}

static void
hdr_bad_magic_early(void **state)
{
	struct ctl_hdr h;
	const char *err = NULL;

	(void)state;
	/* Four bytes are enough to turn away an HTTP client. */
	assert_int_equal(ctl_hdr_decode((const uint8_t *)"GET ", 4,
	    CTL_MAX_REQ, &h, &err), -1);
	assert_non_null(err);
	assert_int_equal(ctl_hdr_decode((const uint8_t *)"QTC2xxxxxxxx", 12,
	    CTL_MAX_REQ, &h, &err), -1);
}

static void
hdr_version_and_length(void **state)
{
	uint8_t buf[CTL_HDR_LEN];
	struct ctl_hdr h;
	const char *err;

	(void)state;
	ctl_hdr_encode(buf, CTL_STATS, 0);
	buf[5] = 2;
	err = NULL;
	assert_int_equal(ctl_hdr_decode(buf, sizeof(buf), CTL_MAX_REQ, &h,
	    &err), -1);
	assert_string_equal(err, "unsupported protocol version");

	ctl_hdr_encode(buf, CTL_LIST_FLOWS, CTL_MAX_REQ);
	assert_int_equal(ctl_hdr_decode(buf, sizeof(buf), CTL_MAX_REQ, &h,
	    &err), 1);
	ctl_hdr_encode(buf, CTL_LIST_FLOWS, CTL_MAX_REQ + 1);
	assert_int_equal(ctl_hdr_decode(buf, sizeof(buf), CTL_MAX_REQ, &h,
	    &err), -1);
	ctl_hdr_encode(buf, CTL_LIST_FLOWS, 0xffffffffu);
	assert_int_equal(ctl_hdr_decode(buf, sizeof(buf), CTL_MAX_REQ, &h,
	    &err), -1);
	assert_string_equal(err, "message too long");
}

static void
req_lengths(void **state)
{
	struct ctl_hdr h = { .ch_magic = CTL_MAGIC, .ch_version = 1 };
	const char *err;
	uint16_t t;

	(void)state;
	for (t = CTL_STATS; t <= CTL_NODES; t++) {
		h.ch_type = t;
		h.ch_len = 0;
		assert_int_equal(ctl_req_check(&h, &err), 0);
		h.ch_len = 1;
		assert_int_equal(ctl_req_check(&h, &err), -1);
	}
	h.ch_type = CTL_LIST_FLOWS;
	h.ch_len = sizeof(struct ctl_filter);
	assert_int_equal(ctl_req_check(&h, &err), 0);
	h.ch_len = sizeof(struct ctl_filter) - 1;
	assert_int_equal(ctl_req_check(&h, &err), -1);
	h.ch_len = sizeof(struct ctl_filter) + 1;
	assert_int_equal(ctl_req_check(&h, &err), -1);

	/* stop: one flag byte; reload: nothing; drain, undrain: a name */
	h.ch_type = CTL_STOP;
	h.ch_len = 1;
	assert_int_equal(ctl_req_check(&h, &err), 0);
	h.ch_len = 0;
	assert_int_equal(ctl_req_check(&h, &err), -1);
	h.ch_len = 2;
	assert_int_equal(ctl_req_check(&h, &err), -1);
	h.ch_type = CTL_RELOAD;
	h.ch_len = 0;
	assert_int_equal(ctl_req_check(&h, &err), 0);
	h.ch_len = 1;
	assert_int_equal(ctl_req_check(&h, &err), -1);
	for (t = CTL_DRAIN; t <= CTL_UNDRAIN; t++) {
		h.ch_type = t;
		h.ch_len = CTL_FILTER_LEN;
		assert_int_equal(ctl_req_check(&h, &err), 0);
		h.ch_len = CTL_FILTER_LEN - 1;
		assert_int_equal(ctl_req_check(&h, &err), -1);
		h.ch_len = 0;
		assert_int_equal(ctl_req_check(&h, &err), -1);
	}

	/* Replies and unknown numbers are not requests. */
	h.ch_len = 0;
	for (t = 0; t < 1000; t++) {
		if (t >= CTL_STATS && t <= CTL_UNDRAIN)
			continue;
		h.ch_type = t;
		err = NULL;
		assert_int_equal(ctl_req_check(&h, &err), -1);
		assert_non_null(err);
	}
}

static void
filter_round_trip(void **state)
{
	uint8_t buf[sizeof(struct ctl_filter)];
	struct ctl_filter f;
	const char *err;

	(void)state;
	assert_int_equal(ctl_filter_encode("n2", "handed-off", buf), 0);
	assert_int_equal(ctl_filter_decode(buf, sizeof(buf), &f, &err), 0);
	assert_string_equal(f.cf_node, "n2");
	assert_string_equal(f.cf_state, "handed-off");

	assert_int_equal(ctl_filter_encode(NULL, "grace", buf), 0);
	assert_int_equal(ctl_filter_decode(buf, sizeof(buf), &f, &err), 0);
	assert_string_equal(f.cf_node, "");
	assert_string_equal(f.cf_state, "grace");

	assert_int_equal(ctl_filter_decode(NULL, 0, &f, &err), 0);
	assert_string_equal(f.cf_node, "");
	assert_string_equal(f.cf_state, "");
}

static void
filter_bad(void **state)
{
	char long_name[CTL_FILTER_LEN + 1];
	uint8_t buf[sizeof(struct ctl_filter) + 1];
	struct ctl_filter f;
	const char *err;

	(void)state;
	memset(long_name, 'a', CTL_FILTER_LEN);
	long_name[CTL_FILTER_LEN] = '\0';
	assert_int_equal(ctl_filter_encode(long_name, NULL, buf), -1);
	long_name[CTL_FILTER_LEN - 1] = '\0';
	assert_int_equal(ctl_filter_encode(long_name, NULL, buf), 0);

	/* No terminator in either field. */
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(ctl_filter_decode(buf, sizeof(struct ctl_filter), &f,
	    &err), -1);
	buf[0] = '\0';
	assert_int_equal(ctl_filter_decode(buf, sizeof(struct ctl_filter), &f,
	    &err), -1);
	buf[CTL_FILTER_LEN] = '\0';
	assert_int_equal(ctl_filter_decode(buf, sizeof(struct ctl_filter), &f,
	    &err), 0);
	assert_int_equal(ctl_filter_decode(buf, sizeof(struct ctl_filter) + 1,
	    &f, &err), -1);
	assert_int_equal(ctl_filter_decode(buf, 5, &f, &err), -1);
}

static void
jw_document(void **state)
{
	struct ctl_buf b;
	struct ctl_jw w;

	(void)state;
	ctl_buf_init(&b);
	ctl_jw_init(&w, &b);
	ctl_jw_obj(&w, NULL);
	ctl_jw_str(&w, "s", "a\"b\\c\n\x01\x7f\xe9");
	ctl_jw_u64(&w, "n", 18446744073709551615ULL);
	ctl_jw_bool(&w, "t", 1);
	ctl_jw_ms(&w, "age", 12005);
	ctl_jw_arr(&w, "a");
	ctl_jw_obj(&w, NULL);
	ctl_jw_end(&w);
	ctl_jw_u64(&w, NULL, 1);
	ctl_jw_arr(&w, NULL);
	ctl_jw_end(&w);
	ctl_jw_end(&w);
	ctl_jw_obj(&w, "o");
	ctl_jw_end(&w);
	ctl_jw_end(&w);
	assert_false(b.cb_err);
	assert_string_equal(b.cb_data,
	    "{\"s\":\"a\\\"b\\\\c\\n\\u0001\\u007f\\u00e9\","
	    "\"n\":18446744073709551615,\"t\":true,\"age\":12.005,"
	    "\"a\":[{},1,[]],\"o\":{}}");
	assert_int_equal(b.cb_len, strlen(b.cb_data));
	ctl_buf_free(&b);
}

static void
jw_unbalanced(void **state)
{
	struct ctl_buf b;
	struct ctl_jw w;
	int i;

	(void)state;
	ctl_buf_init(&b);
	ctl_jw_init(&w, &b);
	ctl_jw_end(&w);
	assert_true(b.cb_err);
	ctl_buf_free(&b);

	ctl_buf_init(&b);
	ctl_jw_init(&w, &b);
	for (i = 0; i < CTL_JW_DEPTH; i++)
		ctl_jw_arr(&w, NULL);
	assert_true(b.cb_err);
	ctl_buf_free(&b);
}

/* What the writer writes, the reader reads back. */
static void
json_round_trip(void **state)
{
	const char *s = "GET /\x01x\"\\ HTTP/1.1\t";
	struct ctl_jv *doc;
	const struct ctl_jv *v, *a;
	struct ctl_buf b;
	struct ctl_jw w;
	char err[128];

	(void)state;
	ctl_buf_init(&b);
	ctl_jw_init(&w, &b);
	ctl_jw_obj(&w, NULL);
	ctl_jw_str(&w, "req", s);
	ctl_jw_str(&w, "latin", "\xe9");
	ctl_jw_u64(&w, "big", 18446744073709551615ULL);
	ctl_jw_arr(&w, "list");
	ctl_jw_bool(&w, NULL, 0);
	ctl_jw_u64(&w, NULL, 7);
	ctl_jw_end(&w);
	ctl_jw_end(&w);
	doc = ctl_json_parse(b.cb_data, b.cb_len, err, sizeof(err));
	assert_non_null(doc);
	assert_int_equal(doc->jv_type, CJ_OBJ);
	v = ctl_json_get(doc, "req");
	assert_non_null(v);
	assert_int_equal(v->jv_type, CJ_STR);
	assert_string_equal(v->jv_str, s);
	v = ctl_json_get(doc, "latin");
	assert_string_equal(v->jv_str, "\xc3\xa9");	/* U+00E9 in UTF-8 */
	v = ctl_json_get(doc, "big");
	assert_int_equal(v->jv_type, CJ_NUM);
	assert_string_equal(v->jv_str, "18446744073709551615");
	a = ctl_json_get(doc, "list");
	assert_int_equal(a->jv_type, CJ_ARR);
	assert_int_equal(a->jv_child->jv_type, CJ_BOOL);
	assert_false(a->jv_child->jv_bool);
	assert_string_equal(a->jv_child->jv_next->jv_str, "7");
	assert_null(a->jv_child->jv_next->jv_next);
	assert_null(ctl_json_get(doc, "missing"));
	assert_null(ctl_json_get(a, "list"));
	ctl_json_free(doc);
	ctl_buf_free(&b);
}

static void
json_valid(void **state)
{
	static const char *const ok[] = {
		"{}", "[]", " [ 1 , -0 , 0.5 , 1e3 , -1.25E-7 ] ", "null",
		"true", "\"\"", "{\"a\":{\"b\":[null,false,\"x\"]}}",
		"\"\\u00e9\\/\\b\\f\\r\"", "\"\\ud83d\\ude00\"", "0",
	};
	struct ctl_jv *v;
	char err[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = ctl_json_parse(ok[i], strlen(ok[i]), err, sizeof(err));
		if (!v)
			fail_msg("\"%s\" rejected: %s", ok[i], err);
		ctl_json_free(v);
	}
	v = ctl_json_parse("\"\\ud83d\\ude00\"", 14, err, sizeof(err));
	assert_string_equal(v->jv_str, "\xf0\x9f\x98\x80");
	ctl_json_free(v);
}

static void
json_invalid(void **state)
{
	static const char *const bad[] = {
		"", " ", "{", "[", "[1,]", "{\"a\"}", "{\"a\":}", "{a:1}",
		"{\"a\":1,}", "[1 2]", "01", "1.", "-", ".5", "1e", "+1",
		"\"abc", "\"a\nb\"", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"",
		"\"\\udc00\"", "\"\\u0000\"", "tru", "nul", "{} {}", "[]x",
		"\"\\", "[\"a\" \"b\"]",
	};
	struct ctl_jv *v;
	char err[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		v = ctl_json_parse(bad[i], strlen(bad[i]), err, sizeof(err));
		if (v)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_true(err[0] != '\0');
	}
	/* Length, not a terminator, bounds the text. */
	assert_null(ctl_json_parse("[1]", 2, err, sizeof(err)));
}

static void
json_depth(void **state)
{
	char text[2 * (CTL_JSON_DEPTH + 1) + 1];
	struct ctl_jv *v;
	char err[128];
	int n;

	(void)state;
	for (n = CTL_JSON_DEPTH; n <= CTL_JSON_DEPTH + 1; n++) {
		memset(text, '[', (size_t)n);
		memset(text + n, ']', (size_t)n);
		v = ctl_json_parse(text, 2 * (size_t)n, err, sizeof(err));
		if (n == CTL_JSON_DEPTH)
			assert_non_null(v);
		else
			assert_null(v);
		ctl_json_free(v);
	}
}

static uint64_t
prng(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

/*
 * Random and mutated input never crashes the reader (under the
 * sanitizer build, never reads out of bounds or leaks), and whatever
 * it accepts has a well-formed tree.
 */
static void
json_fuzz(void **state)
{
	static const char seed[] = "{\"a\":[1,2.5,\"x\\u00e9\",true,null],"
	    "\"b\":{\"c\":\"\\ud83d\\ude00\"}}";
	static const char alphabet[] = "{}[]\",:\\u0123456789.eE+-tfnalrsx ";
	char text[96];
	struct ctl_jv *v;
	uint64_t s = 42;
	size_t i, len;
	int round;

	(void)state;
	for (round = 0; round < 100000; round++) {
		if (round & 1) {
			len = sizeof(seed) - 1;
			memcpy(text, seed, len);
			for (i = 0; i < 3; i++)
				text[prng(&s) % len] =
				    alphabet[prng(&s) % (sizeof(alphabet) - 1)];
		} else {
			len = prng(&s) % sizeof(text);
			for (i = 0; i < len; i++)
				text[i] = (round & 2) ? (char)prng(&s) :
				    alphabet[prng(&s) % (sizeof(alphabet) - 1)];
		}
		v = ctl_json_parse(text, len, NULL, 0);
		ctl_json_free(v);
	}
}

static void
counters_table(void **state)
{
	size_t i, j;

	(void)state;
	assert_true(ctl_ncounters > 0);
	for (i = 0; i < ctl_ncounters; i++) {
		assert_ptr_equal(ctl_counter_by_name(ctl_counters[i].cc_name),
		    &ctl_counters[i]);
		assert_int_equal(ctl_counters[i].cc_off, i * sizeof(uint64_t));
		for (j = i + 1; j < ctl_ncounters; j++)
			assert_string_not_equal(ctl_counters[i].cc_name,
			    ctl_counters[j].cc_name);
	}
	assert_null(ctl_counter_by_name("nope"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hdr_round_trip),
		cmocka_unit_test(hdr_short),
		cmocka_unit_test(hdr_bad_magic_early),
		cmocka_unit_test(hdr_version_and_length),
		cmocka_unit_test(req_lengths),
		cmocka_unit_test(filter_round_trip),
		cmocka_unit_test(filter_bad),
		cmocka_unit_test(jw_document),
		cmocka_unit_test(jw_unbalanced),
		cmocka_unit_test(json_round_trip),
		cmocka_unit_test(json_valid),
		cmocka_unit_test(json_invalid),
		cmocka_unit_test(json_depth),
		cmocka_unit_test(json_fuzz),
		cmocka_unit_test(counters_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
