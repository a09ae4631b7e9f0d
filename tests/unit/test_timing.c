/*
 * Unit tests for the step-timing histograms (timing.c): the buckets tile
 * the values without gap or overlap, the quantiles are within the
 * resolution the header promises, the Prometheus buckets are exact.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "qt.h"

/* Every value lies in its bucket's range, and the ranges follow each
 * other: bucket b ends where b + 1 begins. */
static void
test_buckets_tile(void **state)
{
	uint64_t lo, hi, plo, phi, v;
	size_t b, last;
	unsigned e;

	(void)state;
	tm_bucket_range(0, &plo, &phi);
	assert_int_equal(plo, 0);
	for (b = 1; b < TM_NBUCKETS; b++) {
		tm_bucket_range(b, &lo, &hi);
		assert_int_equal(lo, phi);
		assert_true(hi > lo);
		/* at most 1/16 of its value wide */
		assert_true((hi - lo) * 16 <= (lo < 16 ? 16 : lo));
		assert_int_equal(tm_bucket(lo), b);
		assert_int_equal(tm_bucket(hi - 1), b);
		plo = lo;
		phi = hi;
	}
	/* Beyond the last bucket's reach: the last bucket. */
	last = tm_bucket(phi);
	assert_int_equal(last, TM_NBUCKETS - 1);
	assert_int_equal(tm_bucket(UINT64_MAX), TM_NBUCKETS - 1);
	/* The header's claim: 512 buckets reach 2^35 ns. */
	assert_int_equal(phi, (uint64_t)1 << 35);
	for (e = 0; e < 35; e++) {
		v = ((uint64_t)1 << e) + 3;
		tm_bucket_range(tm_bucket(v), &lo, &hi);
		assert_true(lo <= v && v < hi);
	}
}

static void
test_empty(void **state)
{
	struct tm_hist h;

	(void)state;
	memset(&h, 0, sizeof(h));
	assert_int_equal(tm_quantile(&h, 0.5), 0);
	assert_int_equal(tm_quantile(&h, 1), 0);
}

/* Values 1..100,000 us in a scrambled order: each quantile within 3.2%
 * of the exact one, the largest exact, the mean exact. */
static void
test_quantiles(void **state)
{
	static const double qs[] = { 0.01, 0.1, 0.5, 0.9, 0.99, 0.999 };
	struct tm_hist *h;
	uint64_t n = 100000, i, v, exact, got;
	size_t k;

	(void)state;
	h = calloc(1, sizeof(*h));
	assert_non_null(h);
	for (i = 0; i < n; i++) {
		v = (i * 7919) % n + 1;		/* 7919 is prime: a permutation */
		tm_add(h, v * 1000);
	}
	assert_int_equal(h->h_count, n);
	assert_int_equal(h->h_max, n * 1000);
	assert_int_equal(h->h_sum, n * (n + 1) / 2 * 1000);
	for (k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
		exact = (uint64_t)(qs[k] * (double)n + 0.5) * 1000;
		got = tm_quantile(h, qs[k]);
		printf("q %.3f: exact %llu ns, got %llu (%+.2f%%)\n", qs[k],
		    (unsigned long long)exact, (unsigned long long)got,
		    100.0 * ((double)got - (double)exact) / (double)exact);
		assert_true(got >= exact - exact * 32 / 1000);
		assert_true(got <= exact + exact * 32 / 1000);
	}
	assert_int_equal(tm_quantile(h, 1), n * 1000);
	free(h);
}

/* One sample: every quantile is that sample, never above it. */
static void
test_single(void **state)
{
	struct tm_hist h;

	(void)state;
	memset(&h, 0, sizeof(h));
	tm_add(&h, 123456);
	assert_true(tm_quantile(&h, 0.5) <= 123456);
	assert_true(tm_quantile(&h, 0.5) >= 123456 - 123456 / 16);
	assert_int_equal(tm_quantile(&h, 0.99), tm_quantile(&h, 0.5));
}

/* The Prometheus buckets count samples <= their bound, exactly, and are
 * cumulative. */
static void
test_le(void **state)
{
	struct tm_hist h;
	size_t i;

	(void)state;
	memset(&h, 0, sizeof(h));
	for (i = 0; i < TM_NLE; i++) {
		tm_add(&h, tm_le_ns[i]);	/* on the bound: counted */
		tm_add(&h, tm_le_ns[i] + 1);	/* past it: the next */
	}
	tm_add(&h, 0);
	for (i = 0; i < TM_NLE; i++) {
		assert_int_equal(h.h_le[i], 2 * i + 2);
		if (i)
			assert_true(h.h_le[i] >= h.h_le[i - 1]);
	}
	assert_int_equal(h.h_count, 2 * TM_NLE + 1);
}

/* A span with no start, going backwards (the wall clock stepped) or of
 * over a minute is not a hand-off's and is not counted. */
static void
test_span(void **state)
{
	struct tm_hist h;

	(void)state;
	memset(&h, 0, sizeof(h));
	tm_span(&h, 0, 5000);
	tm_span(&h, 9000, 5000);
	tm_span(&h, 1000, 1000 + 61000000000ull);
	assert_int_equal(h.h_count, 0);
	tm_span(&h, 1000, 6000);
	assert_int_equal(h.h_count, 1);
	assert_int_equal(h.h_max, 5000);
}

static void
test_names(void **state)
{
	size_t s, t;

	(void)state;
	for (s = 0; s < TM_NSTAGES; s++) {
		assert_non_null(tm_stage_name((enum tm_stage)s));
		for (t = 0; t < s; t++)
			assert_string_not_equal(
			    tm_stage_name((enum tm_stage)s),
			    tm_stage_name((enum tm_stage)t));
	}
	assert_string_equal(tm_stage_name(TM_NSTAGES), "?");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buckets_tile),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_quantiles),
		cmocka_unit_test(test_single),
		cmocka_unit_test(test_le),
		cmocka_unit_test(test_span),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
