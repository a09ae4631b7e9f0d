/*
 * libFuzzer target: the request parser and the path cleaner, the first
 * code a stranger's bytes reach.  Besides not crashing, each call must
 * keep the promises http.h makes, since the front and the back both act
 * on what they return.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"

#define MAX_DEFAULT	16384	/* max-header's default */
#define MAX_SMALL	256	/* max-header's minimum */

static int
in_head(const char *p, size_t n, const char *buf, size_t hdrlen)
{
	return p >= buf && n <= hdrlen && (size_t)(p - buf) <= hdrlen - n;
}

/*
 * Checks http_path()'s result against its contract, and that it is a
 * fixed point: fed back as a target (with the three bytes that mean
 * something raw escaped again) it gives itself.
 */
static void
check_path(const char *target, size_t len, size_t outsz)
{
	char *out, *small, *again, *re;
	size_t i, n, seg;
	int rc, rc2;

	out = malloc(len + 1);
	FUZZ_CHECK(out != NULL);
	rc = http_path(target, len, out, len + 1);
	FUZZ_CHECK(rc >= -1 && rc <= (int)len);
	if (rc < 0)
		goto small;
	n = (size_t)rc;
	FUZZ_CHECK(out[n] == '\0' && strlen(out) == n);
	FUZZ_CHECK(n == 0 || (out[0] != '/' && out[n - 1] != '/'));
	for (i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)out[i] >= ' ' && out[i] != 0x7f &&
		    out[i] != '\\');
	/* Every segment of a non-empty path is non-empty, and neither "."
	 * nor "..". */
	for (seg = 0; n > 0 && seg <= n; seg = i + 1) {
		for (i = seg; i < n && out[i] != '/'; i++)
			;
		FUZZ_CHECK(i > seg);
		FUZZ_CHECK(!(i - seg == 1 && out[seg] == '.'));
		FUZZ_CHECK(!(i - seg == 2 && out[seg] == '.' &&
		    out[seg + 1] == '.'));
	}

	re = malloc(3 * n + 2);
	again = malloc(3 * n + 2);
	FUZZ_CHECK(re != NULL && again != NULL);
	re[0] = '/';
	for (i = 0, seg = 1; i < n; i++) {
		if (out[i] == '%' || out[i] == '?' || out[i] == '#') {
			static const char hex[] = "0123456789ABCDEF";

			re[seg++] = '%';
			re[seg++] = hex[(unsigned char)out[i] >> 4];
			re[seg++] = hex[out[i] & 0xf];
		} else
			re[seg++] = out[i];
	}
	rc2 = http_path(re, seg, again, 3 * n + 2);
	FUZZ_CHECK(rc2 == rc && memcmp(again, out, n + 1) == 0);
	free(re);
	free(again);

small:
	/* A smaller buffer may fail, but never gives another answer or
	 * writes past its end (ASan watches the exact-size block). */
	small = malloc(outsz);
	FUZZ_CHECK(small != NULL);
	rc2 = http_path(target, len, small, outsz);
	FUZZ_CHECK(rc2 == -1 || (rc2 == rc && (size_t)rc2 < outsz &&
	    memcmp(small, out, (size_t)rc2 + 1) == 0));
	free(small);
	free(out);
}

static void
check_req(const char *buf, size_t len, size_t max, int rc,
    const struct http_req *r)
{
	FUZZ_CHECK(rc == 0 || rc == -400 || rc == -431 || rc == -501 ||
	    rc == -505 || rc > 0);
	if (rc == 0)
		FUZZ_CHECK(len < max);
	if (rc == -431)
		FUZZ_CHECK(len >= max);
	if (rc <= 0)
		return;
	FUZZ_CHECK((size_t)rc <= len && (size_t)rc <= max);
	FUZZ_CHECK(r->hr_hdrlen == (size_t)rc && rc >= 4);
	FUZZ_CHECK(memcmp(buf + rc - 4, "\r\n\r\n", 4) == 0);
	FUZZ_CHECK(r->hr_method_len > 0 && r->hr_target_len > 0);
	FUZZ_CHECK(in_head(r->hr_method_str, r->hr_method_len, buf, r->hr_hdrlen));
	FUZZ_CHECK(in_head(r->hr_target, r->hr_target_len, buf, r->hr_hdrlen));
	FUZZ_CHECK(r->hr_host == NULL ||
	    in_head(r->hr_host, r->hr_host_len, buf, r->hr_hdrlen));
	FUZZ_CHECK(r->hr_minor >= 0 && r->hr_minor <= 9);
	FUZZ_CHECK(r->hr_clen >= -1);
	/* Never both framings: that is how requests are smuggled. */
	FUZZ_CHECK(!(r->hr_chunked && r->hr_clen >= 0));
	FUZZ_CHECK(r->hr_minor >= 1 || !r->hr_chunked);
	FUZZ_CHECK(r->hr_minor == 0 || r->hr_host != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct http_req r, r2;
	int rc, rc2;

	rc = http_parse(buf, size, MAX_DEFAULT, &r);
	check_req(buf, size, MAX_DEFAULT, rc, &r);

	rc2 = http_parse(buf, size, MAX_SMALL, &r2);
	check_req(buf, size, MAX_SMALL, rc2, &r2);
	/* A head that fits the smaller limit does not depend on it. */
	if (rc > 0 && rc <= MAX_SMALL)
		FUZZ_CHECK(rc2 == rc);

	if (rc > 0) {
		/*
		 * The parser keeps no state between reads: a head alone
		 * parses the same, and every prefix of it asks for more
		 * (never an error that the rest would have avoided).
		 */
		FUZZ_CHECK(http_parse(buf, (size_t)rc, MAX_DEFAULT, &r2) == rc);
		FUZZ_CHECK(r2.hr_keepalive == r.hr_keepalive &&
		    r2.hr_clen == r.hr_clen && r2.hr_chunked == r.hr_chunked &&
		    r2.hr_method == r.hr_method);
		FUZZ_CHECK(http_parse(buf, (size_t)rc - 1, MAX_DEFAULT,
		    &r2) == 0);
		FUZZ_CHECK(http_parse(buf, (size_t)rc / 2, MAX_DEFAULT,
		    &r2) == 0);
		check_path(r.hr_target, r.hr_target_len,
		    r.hr_target_len / 2 + 1);
	}
	if (size > 0)
		check_path(buf, size, (size_t)data[size - 1] % 64 + 1);
	return 0;
}
