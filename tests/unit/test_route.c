/* Route rules and node choice (route.c), and chash_rank's agreement with
 * chash_pick. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http.h"
#include "qt.h"
#include "route.h"

static struct qt_config cf;
static int usable[QT_MAX_NODES];
static uint64_t load[QT_MAX_NODES];

static void
setup_nodes(size_t n)
{
	size_t i;

	memset(&cf, 0, sizeof(cf));
	cf.c_nnodes = n;
	for (i = 0; i < n; i++) {
		snprintf(cf.c_nodes[i].n_name, QT_NAME_MAX, "n%zu", i + 1);
		cf.c_nodes[i].n_id = (uint32_t)i + 1;
		cf.c_nodes[i].n_weight = 100;
		usable[i] = 1;
		load[i] = 0;
	}
}

static int
pick(const char *host, const char *target, int *status)
{
	struct http_req r;

	memset(&r, 0, sizeof(r));
	r.hr_host = host;
	r.hr_host_len = host ? strlen(host) : 0;
	r.hr_target = target;
	r.hr_target_len = strlen(target);
	return route_pick(&cf, &r, usable, load, status);
}

static void
add_route(const char *host, const char *prefix, enum qt_route_action a,
    uint32_t arg)
{
	struct qt_route *r = &cf.c_routes[cf.c_nroutes++];

	memset(r, 0, sizeof(*r));
	snprintf(r->r_host, sizeof(r->r_host), "%s", host);
	snprintf(r->r_prefix, sizeof(r->r_prefix), "%s", prefix);
	r->r_action = a;
	r->r_arg = arg;
}

static void
hash_default(void **state)
{
	char t[64];
	int st, i, n, counts[4] = { 0 };

	(void)state;
	setup_nodes(4);
	for (i = 0; i < 4000; i++) {
		snprintf(t, sizeof(t), "/obj/%d", i);
		n = pick("x", t, &st);
		assert_int_equal(st, 0);
		assert_true(n >= 0 && n < 4);
		counts[n]++;
		/* same key, same node, whatever the query or host */
		snprintf(t, sizeof(t), "/obj/%d?v=2", i);
		assert_int_equal(pick("other", t, &st), n);
	}
	for (i = 0; i < 4; i++)
		assert_true(counts[i] > 800 && counts[i] < 1200);
	/* an unusable node is never chosen; its keys go elsewhere */
	usable[2] = 0;
	for (i = 0; i < 4000; i++) {
		snprintf(t, sizeof(t), "/obj/%d", i);
		assert_int_not_equal(pick("x", t, &st), 2);
	}
	/* nobody usable: answered here */
	usable[0] = usable[1] = usable[3] = 0;
	assert_int_equal(pick("x", "/a", &st), -1);
	assert_int_equal(st, 0);
}

static void
hash_keys(void **state)
{
	int st, a, b, i, differ = 0;
	char t[64];

	(void)state;
	setup_nodes(8);
	cf.c_hash_key = HK_PATH_QUERY;
	for (i = 0; i < 200; i++) {
		snprintf(t, sizeof(t), "/v?seg=%d", i);
		a = pick("x", t, &st);
		snprintf(t, sizeof(t), "/v?seg=%d", i);
		assert_int_equal(pick("y", t, &st), a);
		differ += a != pick("x", "/v", &st);
	}
	assert_true(differ > 100);	/* the query moves keys */
	cf.c_hash_key = HK_HOST_PATH;
	differ = 0;
	for (i = 0; i < 200; i++) {
		snprintf(t, sizeof(t), "h%d.example", i);
		a = pick(t, "/same", &st);
		b = pick(t, "/same?q=1", &st);
		assert_int_equal(a, b);	/* query not part of this key */
		/* case and port of the host do not matter */
		snprintf(t, sizeof(t), "H%d.EXAMPLE:8080", i);
		assert_int_equal(pick(t, "/same", &st), a);
		differ += a != pick("h0.example", "/same", &st);
	}
	assert_true(differ > 100);
}

static void
rules(void **state)
{
	int st, i, n;
	char t[64];

	(void)state;
	setup_nodes(6);
	strcpy(cf.c_groups[0].g_name, "video");
	cf.c_groups[0].g_ids = 1ull << 5 | 1ull << 6;	/* n5, n6 */
	cf.c_ngroups = 1;
	add_route("", "/admin/", RT_REJECT, 403);
	add_route("static.example", "", RT_LOCAL, 0);
	add_route("*.media.example", "/video/", RT_GROUP, 0);
	add_route("", "/pinned", RT_NODE, 2);

	assert_int_equal(pick("x", "/admin/users", &st), -1);
	assert_int_equal(st, 403);
	assert_int_equal(pick("x", "/admin", &st), -1);	/* "/admin/" covers it */
	assert_int_equal(st, 403);
	n = pick("x", "/administrator", &st);
	assert_int_equal(st, 0);			/* not below /admin/ */
	assert_true(n >= 0);
	assert_int_equal(pick("STATIC.example:80", "/x", &st), -1);
	assert_int_equal(st, 0);
	for (i = 0; i < 500; i++) {
		snprintf(t, sizeof(t), "/video/%d.ts", i);
		n = pick("a.media.example", t, &st);
		assert_true(n == 4 || n == 5);
		/* the bare domain is not below itself */
		n = pick("media.example", t, &st);
		assert_true(n >= 0 && n < 6);
	}
	assert_int_equal(pick("x", "/pinned/a", &st), 1);
	/* the pinned node down: hashed over every node instead */
	usable[1] = 0;
	n = pick("x", "/pinned/a", &st);
	assert_true(n >= 0 && n != 1);
	/* the whole group down: answered here rather than refused */
	usable[4] = usable[5] = 0;
	assert_int_equal(pick("a.media.example", "/video/1.ts", &st), -1);
	assert_int_equal(st, 0);
	/* a target the responder refuses is answered here */
	assert_int_equal(pick("x", "/../etc/passwd", &st), -1);
}

static void
bounded(void **state)
{
	int st, i, n, plain, moved = 0, kept = 0;
	char t[64];

	(void)state;
	setup_nodes(4);
	cf.c_bounded_load = 125;
	load[0] = 100;		/* n1 far above 1.25 x average */
	load[1] = load[2] = load[3] = 10;
	for (i = 0; i < 2000; i++) {
		snprintf(t, sizeof(t), "/b/%d", i);
		cf.c_bounded_load = 0;
		plain = pick("x", t, &st);
		cf.c_bounded_load = 125;
		n = pick("x", t, &st);
		assert_int_not_equal(n, 0);
		if (plain == 0)
			moved++;
		else {
			assert_int_equal(n, plain);	/* others keep keys */
			kept++;
		}
	}
	assert_true(moved > 300 && kept > 1200);
	/* everyone equally loaded: nothing moves */
	load[0] = 10;
	for (i = 0; i < 500; i++) {
		snprintf(t, sizeof(t), "/b/%d", i);
		cf.c_bounded_load = 0;
		plain = pick("x", t, &st);
		cf.c_bounded_load = 125;
		assert_int_equal(pick("x", t, &st), plain);
	}
}

static void
rank_agrees(void **state)
{
	struct chash_node nodes[9];
	int order[9], i, j;
	size_t m;

	(void)state;
	for (i = 0; i < 9; i++) {
		nodes[i].cn_id = (uint32_t)(i * 7 + 1);
		nodes[i].cn_weight = (uint32_t)(i % 3 + 1) * 50;
		nodes[i].cn_up = i != 4;
	}
	for (i = 0; i < 20000; i++) {
		uint64_t k = chash_key(&i, sizeof(i));

		m = chash_rank(nodes, 9, k, order);
		assert_int_equal(m, 8);
		assert_int_equal(order[0], chash_pick(nodes, 9, k));
		for (j = 0; j < 8; j++)
			assert_int_not_equal(order[j], 4);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hash_default),
		cmocka_unit_test(hash_keys),
		cmocka_unit_test(rules),
		cmocka_unit_test(bounded),
		cmocka_unit_test(rank_agrees),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
