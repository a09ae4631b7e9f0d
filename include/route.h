/* route.c: which node serves a request. */
#ifndef QT_ROUTE_H
#define QT_ROUTE_H

#include <stdint.h>

#include "http.h"
#include "qt.h"

/*
 * The index in cf->c_nodes of the node that should serve r, or -1 for
 * "this node answers it" (a local route, a request no node can take, or
 * a target the responder will refuse).  *status is set to an HTTP status
 * when a reject route matched (and -1 returned).  usable[i] says whether
 * node i may be given new connections; load[i] how many it serves.
 */
int	route_pick(const struct qt_config *cf, const struct http_req *r,
	    const int *usable, const uint64_t *load, int *status);

#endif
