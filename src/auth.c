/*
 * Authentication of everything one daemon tells another: HMAC-SHA-256
 * under the cluster key.  The only file that uses libsodium.
 */
#include <ctype.h>
#include <string.h>

#include <sodium.h>

#include "qt.h"

int
auth_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

static void
auth_compute(const uint8_t key[QT_KEY_LEN], const void *a, size_t alen,
    const void *b, size_t blen, const void *c, size_t clen, uint8_t mac[32])
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, key, QT_KEY_LEN);
	crypto_auth_hmacsha256_update(&st, a, alen);
	if (blen)
		crypto_auth_hmacsha256_update(&st, b, blen);
	if (clen)
		crypto_auth_hmacsha256_update(&st, c, clen);
	crypto_auth_hmacsha256_final(&st, mac);
}

void
auth_mac(const uint8_t key[QT_KEY_LEN], const void *a, size_t alen,
    const void *b, size_t blen, const void *c, size_t clen, uint8_t mac[32])
{
	auth_compute(key, a, alen, b, blen, c, clen, mac);
}

int
auth_verify(const uint8_t key[QT_KEY_LEN], const void *a, size_t alen,
    const void *b, size_t blen, const void *c, size_t clen,
    const uint8_t mac[32])
{
	uint8_t want[32];

	auth_compute(key, a, alen, b, blen, c, clen, want);
	return sodium_memcmp(want, mac, 32) == 0 ? 0 : -1;
}

void
auth_random(void *buf, size_t len)
{
	/* Small requests (a token per hand-off) come from a pool filled a
	 * page at a time: one getrandom() per 512 tokens, not per token.
	 * The daemon never forks, so the pool is never shared.  Bytes are
	 * wiped as they are handed out. */
	static uint8_t pool[4096];
	static size_t left;

	if (len > 64) {
		randombytes_buf(buf, len);
		return;
	}
	if (left < len) {
		randombytes_buf(pool, sizeof(pool));
		left = sizeof(pool);
	}
	memcpy(buf, pool + sizeof(pool) - left, len);
	sodium_memzero(pool + sizeof(pool) - left, len);
	left -= len;
}

/* A key file holds 64 hex digits; white space around them is ignored. */
int
auth_key_parse(const char *text, uint8_t key[QT_KEY_LEN])
{
	char hex[2 * QT_KEY_LEN + 1];
	size_t n = 0, binlen;

	for (; *text; text++) {
		if (isspace((unsigned char)*text))
			continue;
		if (n == sizeof(hex) - 1)
			return -1;
		hex[n++] = *text;
	}
	hex[n] = '\0';
	if (n != 2 * QT_KEY_LEN)
		return -1;
	if (sodium_hex2bin(key, QT_KEY_LEN, hex, n, NULL, &binlen, NULL) != 0 ||
	    binlen != QT_KEY_LEN)
		return -1;
	return 0;
}
