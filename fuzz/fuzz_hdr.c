/*
 * libFuzzer target: the hand-off header a back reads from a replayed SYN.
 * Input: HDR_LEN bytes of header, 12 of 4-tuple (as hdr_tuple lays it out
 * on the wire: client ip, port, back ip, port), then the request bytes.
 *
 * Properties: whatever decodes re-encodes to the same bytes and decodes
 * to the same fields; what hdr_encode signs verifies under the key and
 * only under it; one flipped bit anywhere in header, tuple or request
 * never verifies.
 */
#include <string.h>

#include "fuzz.h"
#include "qt.h"

static uint8_t	key[QT_KEY_LEN], other[QT_KEY_LEN];
static uint8_t	reqbuf[HDR_MAX_REQ];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	size_t i;

	(void)argc;
	(void)argv;
	FUZZ_CHECK(auth_init() == 0);
	for (i = 0; i < QT_KEY_LEN; i++) {
		key[i] = (uint8_t)(0x40 + i);
		other[i] = (uint8_t)(0x80 + i);
	}
	return 0;
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static void
tuple_get(const uint8_t *p, struct hdr_tuple *t)
{
	memcpy(&t->t_cip, p, 4);
	memcpy(&t->t_cport, p + 4, 2);
	memcpy(&t->t_bip, p + 6, 4);
	memcpy(&t->t_bport, p + 10, 2);
}

static int
same_hdr(const struct hdr *a, const struct hdr *b)
{
	const struct repair_state *x = &a->h_rs, *y = &b->h_rs;

	return a->h_origin == b->h_origin && a->h_svc == b->h_svc &&
	    memcmp(a->h_token, b->h_token, QT_TOKEN_LEN) == 0 &&
	    a->h_time_ms == b->h_time_ms && a->h_isn == b->h_isn &&
	    a->h_req_len == b->h_req_len && x->rs_snd_seq == y->rs_snd_seq &&
	    x->rs_rcv_nxt == y->rs_rcv_nxt && x->rs_ts == y->rs_ts &&
	    x->rs_snd_wl1 == y->rs_snd_wl1 && x->rs_snd_wnd == y->rs_snd_wnd &&
	    x->rs_max_window == y->rs_max_window &&
	    x->rs_rcv_wnd == y->rs_rcv_wnd && x->rs_rcv_wup == y->rs_rcv_wup &&
	    x->rs_mss == y->rs_mss && x->rs_snd_wscale == y->rs_snd_wscale &&
	    x->rs_rcv_wscale == y->rs_rcv_wscale &&
	    x->rs_opts == y->rs_opts && x->rs_fin == y->rs_fin;
}

/*
 * Flips bit `bit` of the concatenation header || tuple || request and
 * checks that the result no longer verifies.
 */
static void
check_flip(const uint8_t hb[HDR_LEN], const uint8_t tb[12],
    const uint8_t *req, size_t reqlen, size_t bit)
{
	uint8_t h2[HDR_LEN], t2[12];
	struct hdr_tuple t;
	size_t total = (HDR_LEN + 12 + reqlen) * 8, byte;

	bit %= total;
	byte = bit / 8;
	memcpy(h2, hb, HDR_LEN);
	memcpy(t2, tb, 12);
	if (byte < HDR_LEN)
		h2[byte] ^= (uint8_t)(1u << (bit % 8));
	else if (byte < HDR_LEN + 12)
		t2[byte - HDR_LEN] ^= (uint8_t)(1u << (bit % 8));
	else
		reqbuf[byte - HDR_LEN - 12] ^= (uint8_t)(1u << (bit % 8));
	tuple_get(t2, &t);
	FUZZ_CHECK(hdr_verify(h2, &t, req, reqlen, key) == -1);
	if (byte >= HDR_LEN + 12)
		reqbuf[byte - HDR_LEN - 12] ^= (uint8_t)(1u << (bit % 8));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t tb[12] = { 0 }, out[HDR_LEN];
	const uint8_t *rest = NULL;
	struct hdr h, h2;
	struct hdr_tuple t;
	size_t restlen = 0, bit;

	if (size > HDR_LEN) {
		memcpy(tb, data + HDR_LEN,
		    size - HDR_LEN < 12 ? size - HDR_LEN : 12);
		if (size > HDR_LEN + 12) {
			rest = data + HDR_LEN + 12;
			restlen = size - HDR_LEN - 12;
		}
	}
	tuple_get(tb, &t);
	/* Which bit to flip: from the input, so the fuzzer steers it. */
	bit = size >= 4 ? (size_t)data[size - 1] << 16 |
	    (size_t)data[size - 2] << 8 | data[size - 3] : 0;

	if (hdr_decode(data, size, &h) == -1) {
		/* Refused only for what hdr.c documents. */
		FUZZ_CHECK(size < HDR_LEN || memcmp(data, "QTH1", 4) != 0 ||
		    data[4] != HDR_VERSION || data[68] > 14 || data[69] > 14 ||
		    get32(data + 32) > HDR_MAX_REQ);
		return 0;
	}
	FUZZ_CHECK(size >= HDR_LEN);
	FUZZ_CHECK(h.h_req_len <= HDR_MAX_REQ);
	FUZZ_CHECK(h.h_rs.rs_snd_wscale <= 14 && h.h_rs.rs_rcv_wscale <= 14);
	FUZZ_CHECK(h.h_rs.rs_fin <= 1 && (h.h_rs.rs_opts & 0x80) == 0);

	/* A header sent as is (a replay of a real one) must stand. */
	if (restlen <= sizeof(reqbuf) &&
	    hdr_verify(data, &t, rest, restlen, key) == 0) {
		if (restlen > 0)
			memcpy(reqbuf, rest, restlen);
		check_flip(data, tb, reqbuf, restlen, bit);
	}

	/* Round trip: the body re-encodes byte for byte, reserved bytes
	 * aside, and decodes to the same fields. */
	memset(reqbuf, 0, h.h_req_len);
	if (restlen > 0 && h.h_req_len > 0)
		memcpy(reqbuf, rest, restlen < h.h_req_len ? restlen :
		    h.h_req_len);
	hdr_encode(&h, &t, reqbuf, key, out);
	FUZZ_CHECK(memcmp(out, data, 70) == 0);
	FUZZ_CHECK(out[70] == 0 && out[71] == 0);
	FUZZ_CHECK(hdr_decode(out, sizeof(out), &h2) == 0 && same_hdr(&h, &h2));

	/* Signed under key: verifies under it, not another one, not with
	 * a shorter request, and not with any one bit changed. */
	FUZZ_CHECK(hdr_verify(out, &t, reqbuf, h.h_req_len, key) == 0);
	FUZZ_CHECK(hdr_verify(out, &t, reqbuf, h.h_req_len, other) == -1);
	if (h.h_req_len > 0)
		FUZZ_CHECK(hdr_verify(out, &t, reqbuf, h.h_req_len - 1,
		    key) == -1);
	check_flip(out, tb, reqbuf, h.h_req_len, bit);
	return 0;
}
