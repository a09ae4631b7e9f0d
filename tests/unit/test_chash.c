/*
 * Unit tests for chash_key() and chash_pick().  The balance tests print
 * the measured deviations so that they can be quoted.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "http.h"

#define NKEYS	100000
#define TOL	0.02		/* |share / ideal - 1| allowed */

static uint64_t	keys[NKEYS];

/*
 * The test's own generator (xorshift64*), kept apart from chash's mixers
 * so that the keys do not share structure with what is being tested.
 */
static uint64_t
prng(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

static int
make_keys(void **state)
{
	uint64_t	s = 0x0123456789abcdefULL;
	char		path[32];
	size_t		i;
	int		n;

	(void)state;
	for (i = 0; i < NKEYS; i++) {
		n = snprintf(path, sizeof(path), "/obj/%08x",
		    (unsigned)(prng(&s) >> 32));
		keys[i] = chash_key(path, (size_t)n);
	}
	return 0;
}

static void
set_nodes(struct chash_node *nodes, size_t n, const uint32_t *weights)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		nodes[i].cn_id = (uint32_t)i + 1;
		nodes[i].cn_weight = weights ? weights[i] : 1;
		nodes[i].cn_up = 1;
	}
}

/* Counts each node's keys; returns the largest |share / ideal - 1|. */
static double
balance(const struct chash_node *nodes, size_t n, const char *what)
{
	size_t	count[16] = { 0 }, i;
	double	total = 0, ideal, dev, maxdev = 0;
	int	k;

	for (i = 0; i < n; i++)
		if (nodes[i].cn_up)
			total += nodes[i].cn_weight;
	for (i = 0; i < NKEYS; i++) {
		k = chash_pick(nodes, n, keys[i]);
		assert_true(k >= 0 && (size_t)k < n);
		count[k]++;
	}
	for (i = 0; i < n; i++) {
		if (!nodes[i].cn_up)
			continue;
		ideal = NKEYS * nodes[i].cn_weight / total;
		dev = count[i] / ideal - 1;
		print_message("%s: node %u weight %u: %zu keys, ideal %.1f, "
		    "deviation %+.4f\n", what, nodes[i].cn_id,
		    nodes[i].cn_weight, count[i], ideal, dev);
		if (fabs(dev) > maxdev)
			maxdev = fabs(dev);
	}
	print_message("%s: max |share/ideal - 1| = %.4f (limit %.2f)\n", what,
	    maxdev, TOL);
	return maxdev;
}

/*
 * Pinned outputs: a change here moves keys between back ends across a
 * cluster upgrade, so it must be deliberate.
 */
static void
test_key_known(void **state)
{
	static const struct {
		const char	*s;
		uint64_t	 h;
	} t[] = {
		{ "", 0x276cf164237ca616ULL },
		{ "a", 0xbac1065aa84b831cULL },
		{ "abc", 0xab50eff8e625116dULL },
		{ "/obj/00000000", 0x98397a7b5e39fa5aULL },
		{ "12345678", 0x00422afb6e4ed5dfULL },
		{ "123456789", 0xd50b5cf423e3a2eeULL },
		{ "The quick brown fox jumps over the lazy dog",
		    0xbad236a440f462a4ULL },
	};
	size_t	i;
	int	bad = 0;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint64_t h = chash_key(t[i].s, strlen(t[i].s));

		if (h != t[i].h) {
			print_error("\"%s\": 0x%016llxULL\n", t[i].s,
			    (unsigned long long)h);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/*
 * Pinned owners, for the same reason: the 8-node counts of test_balance_equal
 * and a digest of which node owns each key.
 */
static void
test_pick_known(void **state)
{
	static const size_t	want[8] = { 12454, 12553, 12525, 12550, 12430,
				    12561, 12568, 12359 };
	struct chash_node	nodes[8];
	size_t			count[8] = { 0 }, i;
	uint64_t		digest = 0;
	int			k;

	(void)state;
	set_nodes(nodes, 8, NULL);
	for (i = 0; i < NKEYS; i++) {
		k = chash_pick(nodes, 8, keys[i]);
		count[k]++;
		digest = digest * 31 + (uint64_t)k;
	}
	print_message("owner digest 0x%016llx\n", (unsigned long long)digest);
	assert_memory_equal(count, want, sizeof(want));
	assert_true(digest == 0x7f592e2c08190791ULL);
}

static void
test_key_props(void **state)
{
	uint64_t	s = 42, in[2], h, d;
	unsigned char	buf[16];
	long		flips = 0, trials = 0;
	double		mean;
	int		i, b;

	(void)state;
	/* Length matters even when the extra bytes are zero. */
	assert_true(chash_key("a", 1) != chash_key("a\0", 2));
	assert_true(chash_key("", 0) != chash_key("\0", 1));
	assert_true(chash_key("12345678", 8) != chash_key("12345678\0", 9));
	/* Word order matters. */
	assert_true(chash_key("AAAAAAAABBBBBBBB", 16) !=
	    chash_key("BBBBBBBBAAAAAAAA", 16));
	/* The pointer's alignment does not. */
	memcpy(buf + 1, "/obj/1234", 9);
	assert_true(chash_key(buf + 1, 9) == chash_key("/obj/1234", 9));

	/* Avalanche: one flipped input bit flips half the output bits. */
	for (i = 0; i < 2000; i++) {
		in[0] = prng(&s);
		in[1] = prng(&s);
		memcpy(buf, in, sizeof(buf));
		h = chash_key(buf, sizeof(buf));
		for (b = 0; b < 128; b++) {
			buf[b / 8] ^= (unsigned char)(1 << (b % 8));
			d = h ^ chash_key(buf, sizeof(buf));
			buf[b / 8] ^= (unsigned char)(1 << (b % 8));
			flips += __builtin_popcountll(d);
			trials++;
		}
	}
	mean = (double)flips / trials;
	print_message("avalanche: %.3f of 64 output bits flip on average\n",
	    mean);
	assert_true(mean > 31.8 && mean < 32.2);
}

static void
test_balance_equal(void **state)
{
	struct chash_node	nodes[8];

	(void)state;
	set_nodes(nodes, 8, NULL);
	assert_true(balance(nodes, 8, "8 equal nodes") <= TOL);
}

static void
test_balance_weighted(void **state)
{
	static const uint32_t	w[3] = { 1, 2, 3 };
	struct chash_node	nodes[3];

	(void)state;
	set_nodes(nodes, 3, w);
	assert_true(balance(nodes, 3, "weights 1:2:3") <= TOL);
}

/*
 * Eight nodes of unequal weights, as a mixed cluster has them.  A node
 * with 1/21 of the weight gets about 4,760 of 100,000 keys, whose
 * sampling noise alone is 1.45% (one sigma): 2% would test luck, not the
 * hash.  A million keys bring that to 0.46%, so 2% here catches any real
 * bias (measured: 100,000 keys give 4.5% on the smallest node, a million
 * 0.4%).
 */
static void
test_balance_weighted8(void **state)
{
	static const uint32_t	w[8] = { 100, 100, 200, 200, 300, 300, 400,
				    500 };
	struct chash_node	nodes[8];
	size_t			count[8] = { 0 }, i;
	double			dev, maxdev = 0;
	char			buf[32];
	int			len;

	(void)state;
	set_nodes(nodes, 8, w);
	for (i = 0; i < 1000000; i++) {
		len = snprintf(buf, sizeof(buf), "/w8/%zu", i);
		count[chash_pick(nodes, 8, chash_key(buf, (size_t)len))]++;
	}
	for (i = 0; i < 8; i++) {
		dev = count[i] / (1e6 * w[i] / 2100.0) - 1;
		print_message("8 weighted nodes, 1M keys: node %zu weight %u: "
		    "%zu keys, deviation %+.4f\n", i + 1, w[i], count[i], dev);
		if (fabs(dev) > maxdev)
			maxdev = fabs(dev);
	}
	assert_true(maxdev <= TOL);
}

/*
 * Taking a node out, by removing it from the array, marking it down or
 * giving it weight 0, moves its keys and no other key.
 */
static void
test_remove(void **state)
{
	struct chash_node	all[8], less[7], mod[8];
	uint32_t		owner, now;
	size_t			i, r, j;
	int			how, bad = 0;

	(void)state;
	set_nodes(all, 8, NULL);
	for (r = 0; r < 8; r++) {
		for (i = 0, j = 0; i < 8; i++)
			if (i != r)
				less[j++] = all[i];
		for (how = 0; how < 3; how++) {
			memcpy(mod, all, sizeof(mod));
			if (how == 1)
				mod[r].cn_up = 0;
			else if (how == 2)
				mod[r].cn_weight = 0;
			for (i = 0; i < NKEYS; i++) {
				owner = all[chash_pick(all, 8, keys[i])].cn_id;
				now = how == 0 ?
				    less[chash_pick(less, 7, keys[i])].cn_id :
				    mod[chash_pick(mod, 8, keys[i])].cn_id;
				if (now == all[r].cn_id ||
				    (owner != all[r].cn_id && now != owner))
					bad++;
			}
		}
	}
	assert_int_equal(bad, 0);
}

/* A ninth node takes about a ninth of the keys, and only from others. */
static void
test_add(void **state)
{
	struct chash_node	nodes[9];
	size_t			i, moved = 0;
	double			dev;
	int			before, after, bad = 0;

	(void)state;
	set_nodes(nodes, 9, NULL);
	for (i = 0; i < NKEYS; i++) {
		before = chash_pick(nodes, 8, keys[i]);
		after = chash_pick(nodes, 9, keys[i]);
		if (after != before) {
			if (after != 8)
				bad++;
			moved++;
		}
	}
	assert_int_equal(bad, 0);
	dev = moved / (NKEYS / 9.0) - 1;
	print_message("9th node: took %zu keys, ideal %.1f, deviation "
	    "%+.4f\n", moved, NKEYS / 9.0, dev);
	assert_true(fabs(dev) <= TOL);
}

static void
test_down(void **state)
{
	struct chash_node	nodes[8];
	size_t			i;
	int			k, bad = 0;

	(void)state;
	set_nodes(nodes, 8, NULL);
	nodes[0].cn_up = 0;
	nodes[3].cn_up = 0;
	nodes[5].cn_weight = 0;
	nodes[7].cn_up = 0;
	for (i = 0; i < NKEYS; i++) {
		k = chash_pick(nodes, 8, keys[i]);
		if (k != 1 && k != 2 && k != 4 && k != 6)
			bad++;
	}
	assert_int_equal(bad, 0);

	for (i = 0; i < 8; i++)
		nodes[i].cn_up = 0;
	assert_int_equal(chash_pick(nodes, 8, keys[0]), -1);
	set_nodes(nodes, 8, NULL);
	for (i = 0; i < 8; i++)
		nodes[i].cn_weight = 0;
	assert_int_equal(chash_pick(nodes, 8, keys[0]), -1);
	assert_int_equal(chash_pick(nodes, 0, keys[0]), -1);

	/* One node left takes everything. */
	set_nodes(nodes, 8, NULL);
	for (i = 0; i < 8; i++)
		nodes[i].cn_up = i == 6;
	for (i = 0; i < 1000; i++)
		assert_int_equal(chash_pick(nodes, 8, keys[i]), 6);
}

/* Front ends may list the same nodes in different orders. */
static void
test_order(void **state)
{
	struct chash_node	fwd[8], rev[8];
	size_t			i;
	int			bad = 0;

	(void)state;
	set_nodes(fwd, 8, NULL);
	for (i = 0; i < 8; i++)
		rev[i] = fwd[7 - i];
	for (i = 0; i < NKEYS; i++)
		if (fwd[chash_pick(fwd, 8, keys[i])].cn_id !=
		    rev[chash_pick(rev, 8, keys[i])].cn_id)
			bad++;
	assert_int_equal(bad, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_known),
		cmocka_unit_test(test_key_props),
		cmocka_unit_test(test_pick_known),
		cmocka_unit_test(test_balance_equal),
		cmocka_unit_test(test_balance_weighted),
		cmocka_unit_test(test_balance_weighted8),
		cmocka_unit_test(test_remove),
		cmocka_unit_test(test_add),
		cmocka_unit_test(test_down),
		cmocka_unit_test(test_order),
	};

	return cmocka_run_group_tests(tests, make_keys, NULL);
}
