/*
 * Consistent hashing: a 64-bit string hash and weighted rendezvous
 * (highest random weight) node selection.
 *
 * Every front end of a cluster must send a given path to the same back
 * end, so chash_key() depends on nothing but the bytes: words are read
 * little-endian byte by byte whatever the host's order, and no seed is
 * drawn at run time.
 *
 * chash_pick() scores each eligible node independently of the others,
 * from the key and the node's id alone, and takes the highest score.
 * Removing a node therefore cannot change which of the remaining nodes
 * scores highest for any key that it did not own, and an added node can
 * only take keys, never shuffle them between the others: the movement is
 * minimal by construction, not by tuning.
 *
 * The score weight / -ln(u), u uniform in (0,1), is the weighted form of
 * rendezvous hashing: -ln(u) is exponentially distributed, so
 * -ln(u) / weight is an exponential with rate weight, and the node with
 * the smallest such value (the largest score) wins with probability
 * weight / total weight.
 */
#include <limits.h>
#include <math.h>

#include "http.h"

#define CHASH_GOLDEN	0x9e3779b97f4a7c15ULL	/* 2^64 / phi */
#define CHASH_MUL	0xd6e8feb86659fd93ULL	/* odd: multiplying is 1:1 */
#define CHASH_SEED	0x6a09e667f3bcc908ULL	/* frac(sqrt(2)) */

/*
 * The splitmix64 generator's output function: a bijection of 64-bit words
 * in which every input bit affects every output bit.
 */
static uint64_t
chash_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* One splitmix64 step from state x; unlike chash_mix(), 0 maps to non-0. */
static uint64_t
chash_splitmix(uint64_t x)
{
	return chash_mix(x + CHASH_GOLDEN);
}

static uint64_t
chash_rotl(uint64_t x, unsigned r)
{
	return (x << r) | (x >> (64 - r));
}

/* Up to 8 bytes as a little-endian word, the same on every host. */
static uint64_t
chash_load(const unsigned char *p, size_t n)
{
	uint64_t	w = 0;

	while (n-- > 0)
		w = (w << 8) | p[n];
	return w;
}

/*
 * Each 8-byte word is mixed fully on its own and folded into the state,
 * which is then stirred by a rotate and an odd multiply.  Every step is a
 * bijection of the state, so two inputs of the same length that differ in
 * one word always differ before the final mix; the length goes into the
 * seed, so the zero padding of the last word cannot make "a" and "a\0"
 * collide.
 */
uint64_t
chash_key(const void *buf, size_t len)
{
	const unsigned char	*p = buf;
	uint64_t		 h;
	size_t			 n;

	h = CHASH_SEED ^ chash_splitmix((uint64_t)len);
	while (len > 0) {
		n = len < 8 ? len : 8;
		h ^= chash_splitmix(chash_load(p, n));
		h = chash_rotl(h, 29) * CHASH_MUL;
		p += n;
		len -= n;
	}
	return chash_mix(h);
}

/*
 * The node's uniform variate for this key.  The id is mixed before the
 * key is folded in so that consecutive ids do not give related variates
 * for the same key.  The top 52 bits plus one half fit a double exactly,
 * giving u in (0,1) with neither end reachable: -ln(u) is finite and > 0.
 */
static double
chash_uniform(uint64_t key, uint32_t id)
{
	uint64_t	h;

	h = chash_splitmix(key ^ chash_splitmix(id));
	return ((double)(h >> 12) + 0.5) * 0x1p-52;
}

int
chash_pick(const struct chash_node *nodes, size_t n, uint64_t key)
{
	double	score, best_score = 0;
	size_t	i;
	int	best = -1;

	if (n > INT_MAX)
		n = INT_MAX;
	for (i = 0; i < n; i++) {
		if (!nodes[i].cn_up || nodes[i].cn_weight == 0)
			continue;
		score = (double)nodes[i].cn_weight /
		    -log(chash_uniform(key, nodes[i].cn_id));
		/*
		 * Ties go to the lower id, not the lower index, so that the
		 * order of nodes[] (which differs between front ends) never
		 * matters.
		 */
		if (best < 0 || score > best_score || (score == best_score &&
		    nodes[i].cn_id < nodes[best].cn_id)) {
			best = (int)i;
			best_score = score;
		}
	}
	return best;
}

/*
 * Every eligible node in the order of its score for key, best first: the
 * order bounded-load routing walks when the best is too busy.  Same ties
 * rule as chash_pick(), so order[0] is always chash_pick()'s answer.
 */
size_t
chash_rank(const struct chash_node *nodes, size_t n, uint64_t key,
    int *order)
{
	double	score[256];
	size_t	i, j, m = 0;

	if (n > 256)
		n = 256;
	for (i = 0; i < n; i++) {
		double s;

		if (!nodes[i].cn_up || nodes[i].cn_weight == 0)
			continue;
		s = (double)nodes[i].cn_weight /
		    -log(chash_uniform(key, nodes[i].cn_id));
		/* insertion sort: n is a cluster's size */
		for (j = m; j > 0; j--) {
			const struct chash_node *o = &nodes[order[j - 1]];

			if (score[j - 1] > s || (score[j - 1] == s &&
			    o->cn_id < nodes[i].cn_id))
				break;
			score[j] = score[j - 1];
			order[j] = order[j - 1];
		}
		score[j] = s;
		order[j] = (int)i;
		m++;
	}
	return m;
}
