/* The band's pure parts: the CLOSED report and CONFIRMS entries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <ev.h>

#include "qtd.h"

static void
closed_round_trip(void **state)
{
	struct band_closed in = {
		.c_token = { 1, 2, 3, 4, 5, 6, 7, 8 },
		.c_cip = 0x640012c6,	/* 198.18.0.100, network order */
		.c_cport = 0xd204,
		.c_svc = 0x0102,
		.c_bytes = 0x0123456789abcdefULL,
		.c_requests = 0xfedcba98u,
	}, out;
	uint8_t e[BAND_CLOSED_ENTRY + 1];

	(void)state;
	memset(e, 0xaa, sizeof(e));
	band_closed_put(e, &in);
	assert_int_equal(e[BAND_CLOSED_ENTRY], 0xaa);	/* no overrun */
	memset(&out, 0, sizeof(out));
	band_closed_get(e, &out);
	assert_memory_equal(out.c_token, in.c_token, QT_TOKEN_LEN);
	assert_int_equal(out.c_cip, in.c_cip);
	assert_int_equal(out.c_cport, in.c_cport);
	assert_int_equal(out.c_svc, in.c_svc);
	assert_true(out.c_bytes == in.c_bytes);
	assert_int_equal(out.c_requests, in.c_requests);
	/* Big-endian on the wire, whatever the host. */
	assert_int_equal(e[14], 0x01);
	assert_int_equal(e[15], 0x02);
	assert_int_equal(e[16], 0x01);
	assert_int_equal(e[23], 0xef);
	assert_int_equal(e[24], 0xfe);
	assert_int_equal(e[27], 0x98);
}

static void
confirm_round_trip(void **state)
{
	struct band_msg in = {
		.bm_type = BAND_CONFIRMS,	/* not carried: entries are */
		.bm_token = { 9, 8, 7, 6, 5, 4, 3, 2 },	/* CONFIRMs */
		.bm_status = 7,
		.bm_a = 1,
		.bm_cip = 0x640012c6,
		.bm_cport = 0xd204,
		.bm_svc = 0x0304,
	}, out;
	uint8_t e[BAND_CONFIRM_ENTRY + 1];

	(void)state;
	memset(e, 0xaa, sizeof(e));
	band_confirm_put(e, &in);
	assert_int_equal(e[BAND_CONFIRM_ENTRY], 0xaa);	/* no overrun */
	memset(&out, 0x55, sizeof(out));
	band_confirm_get(e, &out);
	assert_int_equal(out.bm_type, BAND_CONFIRM);
	assert_memory_equal(out.bm_token, in.bm_token, QT_TOKEN_LEN);
	assert_int_equal(out.bm_cip, in.bm_cip);
	assert_int_equal(out.bm_cport, in.bm_cport);
	assert_int_equal(out.bm_svc, in.bm_svc);
	/* What a CONFIRM's header would not say is zero, not left over. */
	assert_int_equal(out.bm_status, 0);
	assert_true(out.bm_a == 0 && out.bm_b == 0);
	assert_int_equal(out.bm_plen, 0);
	assert_null(out.bm_payload);
	assert_int_equal(e[14], 0x03);
	assert_int_equal(e[15], 0x04);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(closed_round_trip),
		cmocka_unit_test(confirm_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
