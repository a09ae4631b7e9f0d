/* The hand-off header: wire round trip and authentication. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "qt.h"

static const uint8_t key[QT_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
static const char req[] = "GET /obj/42 HTTP/1.1\r\nHost: x\r\n\r\n";

static void
sample(struct hdr *h, struct hdr_tuple *t)
{
	memset(h, 0, sizeof(*h));
	h->h_origin = 7;
	h->h_svc = 1;
	memcpy(h->h_token, "\x01\x02\x03\x04\x05\x06\x07\x08", QT_TOKEN_LEN);
	h->h_time_ms = 0x0123456789abULL;
	h->h_isn = 0xfffffff0u;
	h->h_req_len = sizeof(req) - 1;
	h->h_budget_ms = 600;
	h->h_rs.rs_snd_seq = 0xdeadbeef;
	h->h_rs.rs_rcv_nxt = 0x00000010;
	h->h_rs.rs_ts = 123456789;
	h->h_rs.rs_snd_wl1 = 11;
	h->h_rs.rs_snd_wnd = 64240;
	h->h_rs.rs_max_window = 64240;
	h->h_rs.rs_rcv_wnd = 65483;
	h->h_rs.rs_rcv_wup = 17;
	h->h_rs.rs_mss = 1460;
	h->h_rs.rs_snd_wscale = 7;
	h->h_rs.rs_rcv_wscale = 9;
	h->h_rs.rs_opts = 7;
	t->t_cip = 0x640012c6;
	t->t_cport = 0x3412;
	t->t_bip = 0x020012c6;
	t->t_bport = 0x411f;
}

static void
roundtrip(void **state)
{
	struct hdr h, d;
	struct hdr_tuple t;
	uint8_t buf[HDR_LEN];

	(void)state;
	sample(&h, &t);
	hdr_encode(&h, &t, req, key, buf);
	assert_int_equal(hdr_decode(buf, sizeof(buf), &d), 0);
	assert_int_equal(d.h_origin, 7);
	assert_int_equal(d.h_svc, 1);
	assert_memory_equal(d.h_token, h.h_token, QT_TOKEN_LEN);
	assert_true(d.h_time_ms == h.h_time_ms);
	assert_int_equal(d.h_isn, h.h_isn);
	assert_int_equal(d.h_req_len, h.h_req_len);
	assert_int_equal(d.h_budget_ms, 600);
	assert_memory_equal(&d.h_rs, &h.h_rs, sizeof(h.h_rs));
	assert_int_equal(hdr_verify(buf, &t, req, h.h_req_len, key), 0);
}

/* The budget's two bytes were reserved and zero: an older front's header
 * decodes with no budget, and one too large for them is clamped, not
 * wrapped to a short one. */
static void
budget_bytes(void **state)
{
	struct hdr h, d;
	struct hdr_tuple t;
	uint8_t buf[HDR_LEN];

	(void)state;
	sample(&h, &t);
	h.h_budget_ms = 0;
	hdr_encode(&h, &t, req, key, buf);
	assert_int_equal(buf[70], 0);
	assert_int_equal(buf[71], 0);
	assert_int_equal(hdr_decode(buf, sizeof(buf), &d), 0);
	assert_int_equal(d.h_budget_ms, 0);
	h.h_budget_ms = 20 * 10000;	/* handoff-tries and -timeout at most */
	hdr_encode(&h, &t, req, key, buf);
	assert_int_equal(hdr_decode(buf, sizeof(buf), &d), 0);
	assert_int_equal(d.h_budget_ms, 65535);
}

/* Every single flipped bit, in the header, the tuple or the request, and
 * a wrong key, must fail the MAC. */
static void
flipped_bits_rejected(void **state)
{
	struct hdr h;
	struct hdr_tuple t, t2;
	uint8_t buf[HDR_LEN], b2[HDR_LEN], k2[QT_KEY_LEN];
	char r2[sizeof(req)];
	size_t i;

	(void)state;
	sample(&h, &t);
	hdr_encode(&h, &t, req, key, buf);
	for (i = 0; i < HDR_LEN * 8; i++) {
		memcpy(b2, buf, sizeof(b2));
		b2[i / 8] ^= (uint8_t)(1u << (i % 8));
		assert_int_equal(hdr_verify(b2, &t, req, h.h_req_len, key), -1);
	}
	for (i = 0; i < sizeof(t) * 8; i++) {
		t2 = t;
		((uint8_t *)&t2)[i / 8] ^= (uint8_t)(1u << (i % 8));
		if (memcmp(&t2, &t, sizeof(t)) == 0)
			continue;
		/* padding bytes of the struct are not part of the tuple */
		if (t2.t_cip == t.t_cip && t2.t_cport == t.t_cport &&
		    t2.t_bip == t.t_bip && t2.t_bport == t.t_bport)
			continue;
		assert_int_equal(hdr_verify(buf, &t2, req, h.h_req_len, key),
		    -1);
	}
	for (i = 0; i < (sizeof(req) - 1) * 8; i++) {
		memcpy(r2, req, sizeof(req));
		r2[i / 8] ^= (char)(1u << (i % 8));
		assert_int_equal(hdr_verify(buf, &t, r2, h.h_req_len, key), -1);
	}
	memcpy(k2, key, sizeof(k2));
	k2[31] ^= 0x80;
	assert_int_equal(hdr_verify(buf, &t, req, h.h_req_len, k2), -1);
	/* a truncated request is not the request */
	assert_int_equal(hdr_verify(buf, &t, req, h.h_req_len - 1, key), -1);
}

static void
decode_rejects(void **state)
{
	struct hdr h, d;
	struct hdr_tuple t;
	uint8_t buf[HDR_LEN], b2[HDR_LEN];

	(void)state;
	sample(&h, &t);
	hdr_encode(&h, &t, req, key, buf);
	assert_int_equal(hdr_decode(buf, HDR_LEN - 1, &d), -1);
	memcpy(b2, buf, sizeof(b2));
	b2[0] ^= 1;		/* magic */
	assert_int_equal(hdr_decode(b2, sizeof(b2), &d), -1);
	memcpy(b2, buf, sizeof(b2));
	b2[4] = HDR_VERSION + 1;
	assert_int_equal(hdr_decode(b2, sizeof(b2), &d), -1);
	static char big[HDR_MAX_REQ + 1];

	h.h_req_len = HDR_MAX_REQ + 1;
	hdr_encode(&h, &t, big, key, buf);
	assert_int_equal(hdr_decode(buf, sizeof(buf), &d), -1);
	h.h_req_len = sizeof(req) - 1;
	h.h_rs.rs_snd_wscale = 15;
	hdr_encode(&h, &t, req, key, buf);
	assert_int_equal(hdr_decode(buf, sizeof(buf), &d), -1);
}

static void
key_parse(void **state)
{
	uint8_t k[QT_KEY_LEN];

	(void)state;
	assert_int_equal(auth_key_parse("00112233445566778899aabbccddeeff"
	    "00112233445566778899aabbccddeeff\n", k), 0);
	assert_int_equal(k[0], 0x00);
	assert_int_equal(k[31], 0xff);
	assert_int_equal(auth_key_parse("0011", k), -1);
	assert_int_equal(auth_key_parse("zz112233445566778899aabbccddeeff"
	    "00112233445566778899aabbccddeeff", k), -1);
	assert_int_equal(auth_key_parse("00112233445566778899aabbccddeeff"
	    "00112233445566778899aabbccddeeff00", k), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(roundtrip),
		cmocka_unit_test(budget_bytes),
		cmocka_unit_test(flipped_bits_rejected),
		cmocka_unit_test(decode_rejects),
		cmocka_unit_test(key_parse),
	};

	if (auth_init() == -1)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
