/*
 * Hand-off step timings: a latency histogram per step, for `qtctl stats`
 * (quantiles) and Prometheus (cumulative buckets).
 *
 * An operator whose hand-offs get slow needs to know which step did:
 * the steering's netlink, the freeze, the capture's wake-up on the back,
 * the rebuild or the server behind the back.  Counters cannot say that,
 * and tracing every hand-off costs more than the hand-off.  A histogram
 * costs two clock reads (vDSO, tens of ns) and an increment per step.
 *
 * Buckets are log-linear over nanoseconds: exact below 16 ns, then 16
 * buckets per power of two, so a bucket is at most 1/16 of its value
 * wide and a quantile, read as its bucket's middle, is within 3% of the
 * truth.  512 buckets reach 2^35 ns (34 s); longer values fall in the
 * last.  The Prometheus buckets are counted separately at fixed bounds,
 * exactly, since log-linear bounds are not round numbers.
 */
#include <string.h>
#include <time.h>

#include "qt.h"

#define TM_SUB_BITS	4
#define TM_SUB		(1u << TM_SUB_BITS)

/* The names qtctl shows; qtctl(8) says what each step holds. */
static const char *const tm_names[TM_NSTAGES] = {
	[TM_FRONT_WAKE] = "front_wake",
	[TM_STEER] = "steer",
	[TM_FREEZE] = "freeze",
	[TM_REPLAY] = "replay",
	[TM_FRONT] = "front_handoff",
	[TM_CONFIRM] = "confirm",
	[TM_CAPTURE] = "capture_wake",
	[TM_REBUILD] = "rebuild",
	[TM_FIRST_BYTE] = "first_byte",
	[TM_BACK] = "back_handoff",
};

/* Prometheus bounds (ns): 5 us to 1 s. */
const uint64_t tm_le_ns[TM_NLE] = {
	5000, 10000, 20000, 50000, 100000, 200000, 500000, 1000000,
	2000000, 5000000, 10000000, 50000000, 100000000, 1000000000,
};

const char *
tm_stage_name(enum tm_stage s)
{
	return (unsigned)s < TM_NSTAGES ? tm_names[s] : "?";
}

/* The bucket of V: its power of two picks a band of TM_SUB buckets, the
 * next TM_SUB_BITS bits below the top one pick the bucket in it. */
size_t
tm_bucket(uint64_t v)
{
	unsigned e;
	size_t b;

	if (v < TM_SUB)
		return (size_t)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	b = TM_SUB + (size_t)(e - TM_SUB_BITS) * TM_SUB +
	    (size_t)((v >> (e - TM_SUB_BITS)) & (TM_SUB - 1));
	return b < TM_NBUCKETS ? b : TM_NBUCKETS - 1;
}

/* The smallest value in bucket B, and one past its largest. */
void
tm_bucket_range(size_t b, uint64_t *lo, uint64_t *hi)
{
	unsigned e;
	uint64_t sub;

	if (b < TM_SUB) {
		*lo = b;
		*hi = b + 1;
		return;
	}
	e = (unsigned)((b - TM_SUB) / TM_SUB) + TM_SUB_BITS;
	sub = (b - TM_SUB) % TM_SUB;
	*lo = (TM_SUB + sub) << (e - TM_SUB_BITS);
	*hi = (TM_SUB + sub + 1) << (e - TM_SUB_BITS);
}

void
tm_add(struct tm_hist *h, uint64_t ns)
{
	size_t i;

	h->h_count++;
	h->h_sum += ns;
	if (ns > h->h_max)
		h->h_max = ns;
	h->h_b[tm_bucket(ns)]++;
	for (i = TM_NLE; i > 0 && ns <= tm_le_ns[i - 1]; i--)
		h->h_le[i - 1]++;
}

/*
 * The value below which a fraction Q of the samples lie: the middle of
 * the bucket that holds the ceil(Q * count)-th smallest, never above the
 * largest sample.  0 without samples.
 */
uint64_t
tm_quantile(const struct tm_hist *h, double q)
{
	uint64_t rank, seen = 0, lo, hi, v;
	size_t b;

	if (h->h_count == 0)
		return 0;
	if (q <= 0)
		q = 0;
	if (q >= 1)
		return h->h_max;
	rank = (uint64_t)(q * (double)h->h_count);
	if ((double)rank < q * (double)h->h_count || rank == 0)
		rank++;
	for (b = 0; b < TM_NBUCKETS; b++) {
		seen += h->h_b[b];
		if (seen >= rank)
			break;
	}
	if (b == TM_NBUCKETS)
		return h->h_max;
	tm_bucket_range(b, &lo, &hi);
	v = lo + (hi - lo) / 2;
	return v < h->h_max ? v : h->h_max;
}

uint64_t
tm_mono_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
tm_real_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Adds the time from FROM to TO.  A kernel timestamp is on the wall
 * clock, which may step: a negative span, or one of over a minute, says
 * the clock moved, not the hand-off, and is not counted.
 */
void
tm_span(struct tm_hist *h, uint64_t from, uint64_t to)
{
	if (from == 0 || to < from || to - from > 60000000000u)
		return;
	tm_add(h, to - from);
}
