/*
 * HTTP/1.x request parsing and path handling: pure functions over byte
 * buffers, no I/O, no allocation.
 */
#ifndef QT_HTTP_H
#define QT_HTTP_H

#include <stddef.h>
#include <stdint.h>

enum http_method { HTTP_M_OTHER, HTTP_M_GET, HTTP_M_HEAD };

struct http_req {
	enum http_method	 hr_method;
	const char		*hr_method_str;	/* points into the buffer */
	size_t			 hr_method_len;
	const char		*hr_target;	/* request-target as sent */
	size_t			 hr_target_len;
	int			 hr_minor;	/* HTTP/1.<minor> */
	const char		*hr_host;	/* Host header value, or NULL */
	size_t			 hr_host_len;
	int			 hr_keepalive;	/* after Connection and version */
	long long		 hr_clen;	/* Content-Length, -1 if none */
	int			 hr_chunked;
	size_t			 hr_hdrlen;	/* bytes up to and incl. CRLFCRLF */
};

/*
 * Parses the request at the start of buf.  Returns hr_hdrlen (> 0) when a
 * whole header block is present and valid, 0 when more bytes are needed
 * (and fewer than max have been seen), or minus an HTTP status when the
 * request must be refused: -400 malformed, -431 header block longer than
 * max, -501 Transfer-Encoding other than chunked, -505 version not 1.x.
 */
int	http_parse(const char *buf, size_t len, size_t max, struct http_req *);

/*
 * Turns an origin-form target ("/a%20b/c?q") into a clean relative path
 * ("a b/c"): drops the query, percent-decodes, collapses "//" and ".",
 * refuses ".." that would leave the root, NUL bytes, invalid escapes and
 * targets not starting with '/', except that an absolute-form target
 * ("http://host/a") gives its path ("a").  Also refuses other control
 * bytes, '\' and an encoded '/' or '\'.  The result never starts or ends
 * with '/' ("/" gives "") and is NUL-terminated.  Returns the length
 * written (without the NUL) or -1.
 */
int	http_path(const char *target, size_t len, char *out, size_t outsz);

/* A stable 64-bit hash of a byte string, for consistent hashing. */
uint64_t	chash_key(const void *buf, size_t len);

struct chash_node {
	uint32_t	cn_id;		/* cluster-wide node id */
	uint32_t	cn_weight;	/* 0: never chosen */
	int		cn_up;		/* 0: never chosen */
};

/*
 * Weighted rendezvous hashing: the index in nodes[] of the node that owns
 * key, or -1 if none can.  Removing a node moves only its own keys; a
 * node's share of keys is its weight's share of the total.
 */
int	chash_pick(const struct chash_node *nodes, size_t n, uint64_t key);
/* The indexes of the eligible nodes, best first; returns their number. */
size_t	chash_rank(const struct chash_node *nodes, size_t n, uint64_t key,
	    int *order);

#endif
