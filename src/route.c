/*
 * Choosing the node that serves a request: route rules first (host and
 * path prefix, in config order), then weighted rendezvous hashing over
 * the rule's nodes, optionally bounded by load.  Pure: the caller passes
 * which nodes are usable and how loaded each is.
 */
#include <ctype.h>
#include <limits.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "qt.h"
#include "route.h"

/* The request's host, lower-cased, without a port. */
static size_t
host_norm(const char *h, size_t len, char *out, size_t outsz)
{
	size_t i, n = 0;

	if (len && h[0] == '[')		/* IPv6 literal: keep as it is */
		for (i = 0; i < len && n + 1 < outsz; i++)
			out[n++] = (char)tolower((unsigned char)h[i]);
	else
		for (i = 0; i < len && h[i] != ':' && n + 1 < outsz; i++)
			out[n++] = (char)tolower((unsigned char)h[i]);
	out[n] = '\0';
	return n;
}

static int
host_match(const char *pat, const char *host, size_t hlen)
{
	size_t plen = strlen(pat);

	if (plen == 0)
		return 1;
	if (pat[0] == '*' && pat[1] == '.') {
		/* "*.example.com" matches any name below example.com */
		return hlen > plen - 1 &&
		    strcasecmp(host + hlen - (plen - 1), pat + 1) == 0;
	}
	return plen == hlen && strcasecmp(pat, host) == 0;
}

/* prefix is "/..."; path is http_path()'s form, without the leading '/'. */
static int
prefix_match(const char *prefix, const char *path, size_t plen)
{
	size_t n = strlen(prefix);

	if (n <= 1)
		return 1;
	if (prefix[n - 1] == '/') {
		/* "/video/" matches "/video/x" and "/video" itself */
		if (plen == n - 2 && strncmp(path, prefix + 1, n - 2) == 0)
			return 1;
	}
	return plen >= n - 1 && strncmp(path, prefix + 1, n - 1) == 0;
}

static uint64_t
route_key(const struct qt_config *cf, const char *host, size_t hlen,
    const char *path, size_t plen, const char *target, size_t tlen)
{
	char buf[PATH_MAX + 256];
	const char *q;
	size_t n;

	switch (cf->c_hash_key) {
	case HK_PATH_QUERY:
		q = memchr(target, '?', tlen);
		if (!q)
			break;
		n = (size_t)(target + tlen - q);
		if (plen + n > sizeof(buf))
			break;
		memcpy(buf, path, plen);
		memcpy(buf + plen, q, n);
		return chash_key(buf, plen + n);
	case HK_HOST_PATH:
		if (hlen + 1 + plen > sizeof(buf))
			break;
		memcpy(buf, host, hlen);
		buf[hlen] = '/';
		memcpy(buf + hlen + 1, path, plen);
		return chash_key(buf, hlen + 1 + plen);
	default:
		break;
	}
	return chash_key(path, plen);
}

int
route_pick(const struct qt_config *cf, const struct http_req *r,
    const int *usable, const uint64_t *load, int *status)
{
	struct chash_node nodes[QT_MAX_NODES];
	char path[PATH_MAX], host[256];
	int order[QT_MAX_NODES];
	uint64_t ids = ~0ull, total = 0, cap;
	size_t i, hlen, m, eligible = 0;
	int plen, fixed = -1;

	*status = 0;
	if ((plen = http_path(r->hr_target, r->hr_target_len, path,
	    sizeof(path))) < 0)
		return -1;	/* the responder refuses it */
	hlen = host_norm(r->hr_host ? r->hr_host : "", r->hr_host_len, host,
	    sizeof(host));
	for (i = 0; i < cf->c_nroutes; i++) {
		const struct qt_route *rt = &cf->c_routes[i];

		if (!host_match(rt->r_host, host, hlen) ||
		    !prefix_match(rt->r_prefix, path, (size_t)plen))
			continue;
		switch (rt->r_action) {
		case RT_LOCAL:
			return -1;
		case RT_REJECT:
			*status = (int)rt->r_arg;
			return -1;
		case RT_GROUP:
			ids = cf->c_groups[rt->r_arg].g_ids;
			break;
		case RT_NODE:
			fixed = config_node_by_id(cf, rt->r_arg);
			break;
		}
		break;
	}
	/* A route to one node that cannot take it falls back to hashing
	 * over every node: the client is served either way. */
	if (fixed >= 0 && usable[fixed])
		return fixed;
	for (i = 0; i < cf->c_nnodes; i++) {
		const struct qt_node *n = &cf->c_nodes[i];

		nodes[i].cn_id = n->n_id;
		nodes[i].cn_weight = n->n_weight;
		nodes[i].cn_up = usable[i] && (ids >> n->n_id & 1);
		if (nodes[i].cn_up) {
			eligible++;
			total += load[i];
		}
	}
	m = chash_rank(nodes, cf->c_nnodes, route_key(cf, host, hlen, path,
	    (size_t)plen, r->hr_target, r->hr_target_len), order);
	if (m == 0)
		return -1;
	if (!cf->c_bounded_load)
		return order[0];
	/* Bounded load: no node above c times the average.  The first node
	 * in hash order with room takes it; that keeps a key on its node
	 * whenever the node is not overloaded. */
	cap = ((total + 1) * cf->c_bounded_load + eligible * 100 - 1) /
	    (eligible * 100);
	for (i = 0; i < m; i++)
		if (load[order[i]] + 1 <= cap)
			return order[i];
	return order[0];
}
