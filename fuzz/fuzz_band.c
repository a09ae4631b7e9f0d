/*
 * libFuzzer target: the second band's wire decoder, band_parse(), the
 * part of band.c a datagram from anyone reaches before the MAC is known
 * to be good.
 *
 * Two passes per input.  The input as a datagram: it is accepted only
 * with a right MAC, then every field is what the bytes say.  The input
 * as a message's fields: the harness frames and signs it by the wire
 * format in band.c's comment (independently of band_send), and then
 * the decoder must accept it under the signing key, read back every
 * field, and refuse it with any bit flipped, a byte more or a byte less,
 * or under the other key alone.
 */
#include <string.h>

#include "fuzz.h"
#include "qtd.h"

#define WIRE_HDR	56
#define WIRE_MAC	32
#define WIRE_MAX	(WIRE_HDR + BAND_PAYLOAD_MAX + WIRE_MAC)

static uint8_t	key[QT_KEY_LEN], key2[QT_KEY_LEN];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	size_t i;

	(void)argc;
	(void)argv;
	FUZZ_CHECK(auth_init() == 0);
	for (i = 0; i < QT_KEY_LEN; i++) {
		key[i] = (uint8_t)(0x40 + i);
		key2[i] = (uint8_t)(0x80 + i);
	}
	return 0;
}

static uint64_t
be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | *p++;
	return v;
}

/* Every field of an accepted message is what the wire says it is. */
static void
check_fields(const uint8_t *m, size_t len, const struct band_msg *bm,
    uint16_t sender, uint64_t stamp)
{
	FUZZ_CHECK(len >= WIRE_HDR + WIRE_MAC && len <= WIRE_MAX);
	FUZZ_CHECK(bm->bm_plen <= BAND_PAYLOAD_MAX &&
	    len == WIRE_HDR + (size_t)bm->bm_plen + WIRE_MAC);
	FUZZ_CHECK(be(m, 4) == 0x51544231u && m[4] == 2);
	FUZZ_CHECK((unsigned)bm->bm_type == m[5]);
	FUZZ_CHECK(sender == be(m + 6, 2));
	FUZZ_CHECK(stamp == be(m + 8, 8) && bm->bm_time == stamp / 1000);
	FUZZ_CHECK(memcmp(bm->bm_token, m + 16, QT_TOKEN_LEN) == 0);
	FUZZ_CHECK(bm->bm_status == be(m + 24, 4));
	FUZZ_CHECK(bm->bm_a == be(m + 28, 8) && bm->bm_b == be(m + 36, 8));
	FUZZ_CHECK(memcmp(&bm->bm_cip, m + 44, 4) == 0);
	FUZZ_CHECK(memcmp(&bm->bm_cport, m + 48, 2) == 0);
	FUZZ_CHECK(bm->bm_svc == be(m + 50, 2));
	FUZZ_CHECK(bm->bm_plen == be(m + 52, 2));
	FUZZ_CHECK(bm->bm_payload == m + WIRE_HDR);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t m[WIRE_MAX + 1];
	struct band_msg bm;
	uint64_t stamp;
	uint16_t sender;
	size_t plen, len, bit;
	int use2;

	/* The input as a datagram, with and without the second key. */
	if (band_parse(data, size, key, key2, &bm, &sender, &stamp) == 0)
		check_fields(data, size, &bm, sender, stamp);
	if (band_parse(data, size, key, NULL, &bm, &sender, &stamp) == 0)
		check_fields(data, size, &bm, sender, stamp);

	/* The input as fields: the first 56 bytes the header (framing
	 * forced), the rest the payload, cut to what fits. */
	memset(m, 0, sizeof(m));
	memcpy(m, data, size < WIRE_HDR ? size : WIRE_HDR);
	plen = size > WIRE_HDR ? size - WIRE_HDR : 0;
	if (plen > BAND_PAYLOAD_MAX)
		plen = BAND_PAYLOAD_MAX;
	use2 = m[4] & 1;	/* the version byte, overwritten below */
	memcpy(m, "QTB1", 4);
	m[4] = 2;
	m[52] = (uint8_t)(plen >> 8);
	m[53] = (uint8_t)plen;
	if (plen > 0)
		memcpy(m + WIRE_HDR, data + WIRE_HDR, plen);
	len = WIRE_HDR + plen;
	auth_mac(use2 ? key2 : key, m, len, NULL, 0, NULL, 0, m + len);
	len += WIRE_MAC;

	FUZZ_CHECK(band_parse(m, len, key, key2, &bm, &sender, &stamp) == 0);
	check_fields(m, len, &bm, sender, stamp);
	/* The key being rotated out counts only while it is configured. */
	FUZZ_CHECK(band_parse(m, len, key, NULL, &bm, &sender, &stamp) ==
	    (use2 ? -1 : 0));
	FUZZ_CHECK(band_parse(m, len, key2, NULL, &bm, &sender, &stamp) ==
	    (use2 ? 0 : -1));
	FUZZ_CHECK(band_parse(m, len - 1, key, key2, &bm, &sender,
	    &stamp) == -1);
	FUZZ_CHECK(band_parse(m, len + 1, key, key2, &bm, &sender,
	    &stamp) == -1);

	bit = size >= 3 ? (size_t)data[size - 1] << 16 |
	    (size_t)data[size - 2] << 8 | data[size - 3] : size;
	bit %= len * 8;
	m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	FUZZ_CHECK(band_parse(m, len, key, key2, &bm, &sender, &stamp) == -1);
	return 0;
}
