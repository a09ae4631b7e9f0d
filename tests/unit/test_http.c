/*
 * Unit tests for http_parse() and http_path().
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http.h"

#define MAXHDR	8192

static int
parse(const char *s, struct http_req *r)
{
	return http_parse(s, strlen(s), MAXHDR, r);
}

/* Compares a (pointer, length) pair from the parser with a C string. */
static void
assert_span(const char *p, size_t n, const char *want)
{
	assert_non_null(p);
	if (n != strlen(want) || memcmp(p, want, n) != 0) {
		print_error("got \"%.*s\", want \"%s\"\n", (int)n, p, want);
		fail();
	}
}

static void
test_get_basic(void **state)
{
	const char	*s = "GET /index.html?x=1 HTTP/1.1\r\n"
			    "Host: example.com\r\n"
			    "User-Agent: t\r\n"
			    "\r\n";
	struct http_req	 r;

	(void)state;
	assert_int_equal(parse(s, &r), (int)strlen(s));
	assert_int_equal(r.hr_hdrlen, strlen(s));
	assert_int_equal(r.hr_method, HTTP_M_GET);
	assert_span(r.hr_method_str, r.hr_method_len, "GET");
	assert_span(r.hr_target, r.hr_target_len, "/index.html?x=1");
	assert_int_equal(r.hr_minor, 1);
	assert_span(r.hr_host, r.hr_host_len, "example.com");
	assert_int_equal(r.hr_keepalive, 1);
	assert_int_equal(r.hr_clen, -1);
	assert_int_equal(r.hr_chunked, 0);
	/* Pointers go into the caller's buffer. */
	assert_ptr_equal(r.hr_method_str, s);
	assert_ptr_equal(r.hr_target, s + 4);
}

static void
test_head_and_methods(void **state)
{
	struct http_req	r;

	(void)state;
	assert_true(parse("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", &r) > 0);
	assert_int_equal(r.hr_method, HTTP_M_HEAD);

	assert_true(parse("POST /f HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 12\r\n\r\n", &r) > 0);
	assert_int_equal(r.hr_method, HTTP_M_OTHER);
	assert_span(r.hr_method_str, r.hr_method_len, "POST");
	assert_int_equal(r.hr_clen, 12);

	/* Methods are case-sensitive. */
	assert_true(parse("get / HTTP/1.1\r\nHost: a\r\n\r\n", &r) > 0);
	assert_int_equal(r.hr_method, HTTP_M_OTHER);
	assert_true(parse("GETS / HTTP/1.1\r\nHost: a\r\n\r\n", &r) > 0);
	assert_int_equal(r.hr_method, HTTP_M_OTHER);
	assert_true(parse("HEA / HTTP/1.1\r\nHost: a\r\n\r\n", &r) > 0);
	assert_int_equal(r.hr_method, HTTP_M_OTHER);
	/* Any token is a method. */
	assert_true(parse("M-SEARCH! / HTTP/1.1\r\nHost: a\r\n\r\n", &r) > 0);
	assert_int_equal(r.hr_method, HTTP_M_OTHER);
}

static void
test_keepalive(void **state)
{
	static const struct {
		const char	*req;
		int		 ka;
	} t[] = {
		{ "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nConnection: CLOSE\r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\nHost: a\r\n"
		    "Connection: Keep-Alive ,\tClose \r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n", 1 },
		{ "GET / HTTP/1.1\r\nHost: a\r\n"
		    "Connection: closed, xclose\r\n\r\n", 1 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nConnection: te\r\n"
		    "connection: close\r\n\r\n", 0 },
		{ "GET / HTTP/1.0\r\n\r\n", 0 },
		{ "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1 },
		{ "GET / HTTP/1.0\r\nConnection: foo, KEEP-ALIVE\r\n\r\n", 1 },
		{ "GET / HTTP/1.0\r\nConnection: keep-alive\r\n"
		    "Connection: close\r\n\r\n", 0 },
		{ "GET / HTTP/1.0\r\nConnection: keep-alive-ish\r\n\r\n", 0 },
		/* Later 1.x minors are served as 1.1. */
		{ "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 1 },
	};
	struct http_req	r;
	size_t		i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (parse(t[i].req, &r) != (int)strlen(t[i].req) ||
		    r.hr_keepalive != t[i].ka) {
			print_error("case %zu: %s", i, t[i].req);
			fail();
		}
	}
}

/*
 * Every proper prefix of a valid request is "need more", and the whole of
 * it parses; also when max is exactly the head's length.
 */
static void
test_prefixes(void **state)
{
	static const char *reqs[] = {
		"GET /a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\n"
		    "Accept: */*\r\nConnection: keep-alive\r\n\r\n",
		"\r\n\r\nHEAD / HTTP/1.0\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
		    "\r\n",
		"GET http://h.example/p HTTP/1.1\r\nHost: x\r\n\r\n",
	};
	struct http_req	r;
	size_t		i, k, n;
	char		*copy;

	(void)state;
	for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		n = strlen(reqs[i]);
		for (k = 0; k < n; k++) {
			/* A copy of exactly k bytes, so ASan sees overreads. */
			copy = malloc(k ? k : 1);
			assert_non_null(copy);
			memcpy(copy, reqs[i], k);
			if (http_parse(copy, k, MAXHDR, &r) != 0 ||
			    http_parse(copy, k, n, &r) != 0) {
				print_error("req %zu, prefix %zu\n", i, k);
				fail();
			}
			free(copy);
		}
		assert_int_equal(http_parse(reqs[i], n, MAXHDR, &r), (int)n);
		assert_int_equal(http_parse(reqs[i], n, n, &r), (int)n);
		assert_int_equal(http_parse(reqs[i], n, n - 1, &r), -431);
	}
}

static void
test_pipelined(void **state)
{
	const char	*s = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
			    "HEAD /two HTTP/1.1\r\nHost: b\r\n"
			    "Connection: close\r\n\r\n"
			    "GET /thr";
	struct http_req	 r;
	size_t		 off = 0, len = strlen(s);
	int		 rc;

	(void)state;
	rc = http_parse(s, len, MAXHDR, &r);
	assert_int_equal(rc, (int)strlen("GET /one HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_span(r.hr_target, r.hr_target_len, "/one");
	assert_int_equal(r.hr_keepalive, 1);
	assert_memory_equal(s + r.hr_hdrlen, "HEAD /two", 9);

	off += rc;
	rc = http_parse(s + off, len - off, MAXHDR, &r);
	assert_true(rc > 0);
	assert_int_equal(r.hr_method, HTTP_M_HEAD);
	assert_span(r.hr_target, r.hr_target_len, "/two");
	assert_span(r.hr_host, r.hr_host_len, "b");
	assert_int_equal(r.hr_keepalive, 0);
	assert_memory_equal(s + off + r.hr_hdrlen, "GET /thr", 8);

	off += rc;
	assert_int_equal(http_parse(s + off, len - off, MAXHDR, &r), 0);

	/* A complete head is accepted even when more than max follows. */
	assert_int_equal(http_parse(s, len, 40, &r),
	    (int)strlen("GET /one HTTP/1.1\r\nHost: a\r\n\r\n"));
}

static void
test_valid_variants(void **state)
{
	struct http_req	r;

	(void)state;
	/* OWS around values is trimmed; names are case-insensitive. */
	assert_true(parse("GET / HTTP/1.1\r\nhOsT: \t example.com \t\r\n"
	    "\r\n", &r) > 0);
	assert_span(r.hr_host, r.hr_host_len, "example.com");

	/* HTTP/1.0 needs no Host. */
	assert_true(parse("GET / HTTP/1.0\r\n\r\n", &r) > 0);
	assert_null(r.hr_host);
	assert_int_equal(r.hr_minor, 0);

	/* An empty Host is allowed; the server picks its default. */
	assert_true(parse("GET / HTTP/1.1\r\nHost:\r\n\r\n", &r) > 0);
	assert_non_null(r.hr_host);
	assert_int_equal(r.hr_host_len, 0);

	assert_true(parse("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
	    &r) > 0);
	assert_span(r.hr_host, r.hr_host_len, "[::1]:8080");
	assert_true(parse("GET / HTTP/1.1\r\nHost: 10.0.0.1:\r\n\r\n", &r) > 0);
	assert_true(parse("GET / HTTP/1.1\r\nHost: xn--bcher-kva.ex%41\r\n"
	    "\r\n", &r) > 0);

	/* Empty lines before the request-line are skipped and counted. */
	assert_int_equal(parse("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	    &r), 31);
	assert_span(r.hr_method_str, r.hr_method_len, "GET");

	/* obs-text and HTAB inside a value are fine. */
	assert_true(parse("GET / HTTP/1.1\r\nHost: a\r\nX-T: caf\xc3\xa9\tb\r\n"
	    "\r\n", &r) > 0);
	/* A field with an empty value. */
	assert_true(parse("GET / HTTP/1.1\r\nHost: a\r\nX-E:\r\n\r\n", &r) > 0);

	assert_true(parse("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n"
	    "\r\n", &r) > 0);
	assert_int_equal(r.hr_clen, 0);
	assert_true(parse("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: "
	    "007\r\n\r\n", &r) > 0);
	assert_int_equal(r.hr_clen, 7);
	assert_true(parse("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: "
	    "9223372036854775807\r\n\r\n", &r) > 0);
	assert_int_equal(r.hr_clen, 9223372036854775807LL);

	assert_true(parse("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: Chunked\r\n\r\n", &r) > 0);
	assert_int_equal(r.hr_chunked, 1);
	assert_int_equal(r.hr_clen, -1);

	assert_true(parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", &r) > 0);
	assert_span(r.hr_target, r.hr_target_len, "*");

	assert_true(parse("GET / HTTP/1.9\r\nHost: a\r\n\r\n", &r) > 0);
	assert_int_equal(r.hr_minor, 9);
}

/* absolute-form: the target's authority wins over the Host field. */
static void
test_absolute_form(void **state)
{
	struct http_req	r;

	(void)state;
	assert_true(parse("GET http://origin.example:81/a/b?q HTTP/1.1\r\n"
	    "Host: other.example\r\n\r\n", &r) > 0);
	assert_span(r.hr_host, r.hr_host_len, "origin.example:81");
	assert_span(r.hr_target, r.hr_target_len,
	    "http://origin.example:81/a/b?q");

	assert_true(parse("GET HTTPS://o.example HTTP/1.1\r\nHost: x\r\n\r\n",
	    &r) > 0);
	assert_span(r.hr_host, r.hr_host_len, "o.example");
	assert_true(parse("GET http://o.example?x HTTP/1.1\r\nHost: x\r\n\r\n",
	    &r) > 0);
	assert_span(r.hr_host, r.hr_host_len, "o.example");
	assert_true(parse("GET http://[2001:db8::1]/ HTTP/1.0\r\n\r\n", &r) > 0);
	assert_span(r.hr_host, r.hr_host_len, "[2001:db8::1]");

	/* Host is still required in 1.1, and still only once. */
	assert_int_equal(parse("GET http://o/ HTTP/1.1\r\n\r\n", &r), -400);
	assert_int_equal(parse("GET http://o/ HTTP/1.1\r\nHost: a\r\n"
	    "Host: a\r\n\r\n", &r), -400);
}

struct errcase {
	const char	*req;
	int		 want;
};

static void
run_errors(const struct errcase *t, size_t n)
{
	struct http_req	r;
	size_t		i;
	int		rc, bad = 0;

	for (i = 0; i < n; i++) {
		rc = parse(t[i].req, &r);
		if (rc != t[i].want) {
			print_error("case %zu: got %d want %d: \"%s\"\n", i, rc,
			    t[i].want, t[i].req);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

#define H11	"Host: a\r\n"

static void
test_errors_400(void **state)
{
	static const struct errcase t[] = {
		/* Line endings. */
		{ "GET / HTTP/1.1\n" H11 "\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: a\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\n" H11 "\n", -400 },
		{ "GET / HTTP/1.1\r\r\n" H11 "\r\n", -400 },
		{ "GET / HTTP/1.1\r\nX: a\rb\r\n" H11 "\r\n", -400 },
		{ "\nGET / HTTP/1.1\r\n" H11 "\r\n", -400 },
		/* Control bytes. */
		{ "GET /\001 HTTP/1.1\r\n" H11 "\r\n", -400 },
		{ "GET / HTTP/1.1\r\nX: a\001b\r\n" H11 "\r\n", -400 },
		{ "GET / HTTP/1.1\r\nX: a\177b\r\n" H11 "\r\n", -400 },
		{ "GET / HTTP/1.1\r\nX: \033[31m\r\n" H11 "\r\n", -400 },
		{ "GET / HTTP/1.1\r\nX\001: a\r\n" H11 "\r\n", -400 },
		/* Request-line syntax. */
		{ "GET  / HTTP/1.1\r\n" H11 "\r\n", -400 },
		{ "GET /  HTTP/1.1\r\n" H11 "\r\n", -400 },
		{ "GET / HTTP/1.1 \r\n" H11 "\r\n", -400 },
		{ " GET / HTTP/1.1\r\n" H11 "\r\n", -400 },
		{ "GET\t/ HTTP/1.1\r\n" H11 "\r\n", -400 },
		{ "GET /\tHTTP/1.1\r\n" H11 "\r\n", -400 },
		{ "G(T / HTTP/1.1\r\n" H11 "\r\n", -400 },
		{ "GET / http/1.1\r\n" H11 "\r\n", -400 },
		{ "GET / HTTP/1.10\r\n" H11 "\r\n", -400 },
		{ "GET / HTTP/1\r\n" H11 "\r\n", -400 },
		{ "GET / HTTP/1.x\r\n" H11 "\r\n", -400 },
		{ "GET / HTTP/11.1\r\n" H11 "\r\n", -400 },
		{ "GET / FTP/1.1\r\n" H11 "\r\n", -400 },
		{ "GET /\r\n\r\n", -400 },		/* HTTP/0.9 style */
		{ "GET\r\n\r\n", -400 },
		{ "GET HTTP/1.1\r\n" H11 "\r\n", -400 },
		/* Targets. */
		{ "GET foo HTTP/1.1\r\n" H11 "\r\n", -400 },
		{ "GET * HTTP/1.1\r\n" H11 "\r\n", -400 },
		{ "OPTIONS *x HTTP/1.1\r\n" H11 "\r\n", -400 },
		{ "CONNECT h.example:443 HTTP/1.1\r\n" H11 "\r\n", -400 },
		{ "GET ftp://h/x HTTP/1.1\r\n" H11 "\r\n", -400 },
		{ "GET http:///x HTTP/1.1\r\n" H11 "\r\n", -400 },
		{ "GET http:// HTTP/1.1\r\n" H11 "\r\n", -400 },
		{ "GET http://u:p@h/x HTTP/1.1\r\n" H11 "\r\n", -400 },
		{ "GET http://h:8x/ HTTP/1.1\r\n" H11 "\r\n", -400 },
		{ "GET /a#frag HTTP/1.1\r\n" H11 "\r\n", -400 },
		{ "GET /caf\xc3\xa9 HTTP/1.1\r\n" H11 "\r\n", -400 },
		/* Field lines. */
		{ "GET / HTTP/1.1\r\nHost : a\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\n Host: a\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\n" H11 "X: a\r\n b\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\n" H11 "X: a\r\n\tb\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\n" H11 "NoColon\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\n" H11 ": v\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\n" H11 "X(y): v\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\n" H11 "X\xc3\xa9: v\r\n\r\n", -400 },
		/* Host. */
		{ "GET / HTTP/1.1\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nX-Host: a\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", -400 },
		{ "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: a:http\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: []\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", -400 },
		/* Content-Length. */
		{ "GET / HTTP/1.1\r\n" H11 "Content-Length: 5\r\n"
		    "Content-Length: 5\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\n" H11 "Content-Length: 5\r\n"
		    "Content-Length: 6\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\n" H11 "Content-Length: 5, 5\r\n\r\n",
		    -400 },
		{ "GET / HTTP/1.1\r\n" H11 "Content-Length: -1\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\n" H11 "Content-Length: +1\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\n" H11 "Content-Length: 1 2\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\n" H11 "Content-Length: 0x10\r\n\r\n",
		    -400 },
		{ "GET / HTTP/1.1\r\n" H11 "Content-Length:\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\n" H11 "Content-Length: "
		    "9223372036854775808\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\n" H11 "Content-Length: "
		    "99999999999999999999999\r\n\r\n", -400 },
		/* Transfer-Encoding with Content-Length, either order. */
		{ "POST / HTTP/1.1\r\n" H11 "Content-Length: 5\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n", -400 },
		{ "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n"
		    "Content-Length: 5\r\n\r\n", -400 },
		{ "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip\r\n"
		    "Content-Length: 5\r\n\r\n", -400 },
		/* Transfer-Encoding in HTTP/1.0. */
		{ "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
		    -400 },
	};

	(void)state;
	run_errors(t, sizeof(t) / sizeof(t[0]));
}

static void
test_errors_501_505(void **state)
{
	static const struct errcase t[] = {
		{ "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip\r\n\r\n",
		    -501 },
		{ "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip, chunked"
		    "\r\n\r\n", -501 },
		{ "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked, gzip"
		    "\r\n\r\n", -501 },
		{ "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n", -501 },
		{ "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunkedx\r\n"
		    "\r\n", -501 },
		{ "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: identity\r\n"
		    "\r\n", -501 },
		{ "GET / HTTP/2.0\r\n" H11 "\r\n", -505 },
		{ "GET / HTTP/0.9\r\n\r\n", -505 },
		{ "GET / HTTP/3.0\r\n" H11 "\r\n", -505 },
		{ "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", -505 },
	};

	(void)state;
	run_errors(t, sizeof(t) / sizeof(t[0]));
}

/* Garbage is refused as soon as it arrives, without waiting for CRLF. */
static void
test_early_reject(void **state)
{
	struct http_req	r;

	(void)state;
	assert_int_equal(http_parse("GET /\0", 6, MAXHDR, &r), -400);
	assert_int_equal(http_parse("GET / HTTP/1.1\r\nHost: a\0", 24,
	    MAXHDR, &r), -400);
	assert_int_equal(http_parse("GET / HTTP/1.1\n", 15, MAXHDR, &r),
	    -400);
	assert_int_equal(http_parse("GET / HTTP/1.1\rX", 16, MAXHDR, &r),
	    -400);
	/* A CR at the end may yet be followed by LF. */
	assert_int_equal(http_parse("GET / HTTP/1.1\r", 15, MAXHDR, &r), 0);
	/* An error in a complete line comes before running out of room. */
	assert_int_equal(http_parse("GET / HTTP/2.0\r\nHost: aaaa", 26, 20,
	    &r), -505);
	/* A NUL in a complete head. */
	assert_int_equal(http_parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n\0", 28,
	    MAXHDR, &r), 27);
	assert_int_equal(http_parse("GET / HTTP/1.1\r\nX: \0\r\nHost: a\r\n"
	    "\r\n", 33, MAXHDR, &r), -400);
}

static void
test_too_large(void **state)
{
	char		buf[4096];
	struct http_req	r;
	size_t		n;
	int		hl;

	(void)state;
	/* A long request-line alone. */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "GET /", 5);
	assert_int_equal(http_parse(buf, 1000, 1000, &r), -431);
	assert_int_equal(http_parse(buf, 999, 1000, &r), 0);
	assert_int_equal(http_parse(buf, 4096, 1000, &r), -431);

	/* A long field. */
	n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\n"
	    "X: %0*d\r\n\r\n", 3000, 0);
	assert_int_equal(http_parse(buf, n, 2000, &r), -431);
	assert_int_equal(http_parse(buf, 1999, 2000, &r), 0);
	assert_int_equal(http_parse(buf, n, n, &r), (int)n);
	assert_int_equal(http_parse(buf, n, n - 1, &r), -431);
	/* Even the last LF must fit. */
	assert_int_equal(http_parse(buf, n - 1, n - 1, &r), -431);

	/* Many small fields. */
	n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\n");
	while (n + 10 < sizeof(buf))
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-A: bb\r\n");
	memcpy(buf + n, "\r\n", 2);
	n += 2;
	assert_int_equal(http_parse(buf, n, n, &r), (int)n);
	assert_int_equal(http_parse(buf, n, 1024, &r), -431);

	/* Leading empty lines count. */
	hl = http_parse("\r\n\r\nGET / HTTP/1.0\r\n\r\n", 22, 21, &r);
	assert_int_equal(hl, -431);

	/* max 0 admits nothing. */
	assert_int_equal(http_parse("", 0, 0, &r), -431);
	assert_int_equal(http_parse("", 0, 10, &r), 0);
}

struct pathcase {
	const char	*in;
	const char	*out;	/* NULL: must be refused */
};

static void
test_path(void **state)
{
	static const struct pathcase t[] = {
		{ "/", "" },
		{ "/a%20b/c?q", "a b/c" },
		{ "/index.html", "index.html" },
		{ "//a///b//", "a/b" },
		{ "/a/b/", "a/b" },
		{ "/./a/./b/.", "a/b" },
		{ "/a/b/../c", "a/c" },
		{ "/a/b/c/../../d", "a/d" },
		{ "/a/..", "" },
		{ "/a/../", "" },
		{ "/a/b/..", "a" },
		{ "/a/%2E%2e/b", "b" },
		{ "/a/.%2e/b", "b" },
		{ "/a/%2e/b", "a/b" },
		{ "/...", "..." },
		{ "/..a/a..", "..a/a.." },
		{ "/.hidden", ".hidden" },
		{ "/%41%42c", "ABc" },
		{ "/a+b", "a+b" },
		{ "/%e2%82%ac", "\xe2\x82\xac" },
		{ "/a%3fb", "a?b" },
		{ "/?x=../../etc", "" },
		{ "/a?b/../../c", "a" },
		{ "/a?", "a" },
		{ "/a#frag/../..", "a" },
		{ "/a;x=1/b", "a;x=1/b" },
		{ "http://h.example/x/y?z", "x/y" },
		{ "HTTP://h.example", "" },
		{ "http://h.example?x", "" },
		{ "https://h/../a", NULL },
		/* Traversal. */
		{ "/..", NULL },
		{ "/../etc/passwd", NULL },
		{ "/a/../../b", NULL },
		{ "/a/../..", NULL },
		{ "/./../x", NULL },
		{ "/%2e%2e/etc/passwd", NULL },
		{ "/%2E%2E", NULL },
		{ "/.%2e/x", NULL },
		{ "/%2e./x", NULL },
		{ "//../x", NULL },
		/* Escapes and bytes. */
		{ "/%00", NULL },
		{ "/a%00b", NULL },
		{ "/a%00.html", NULL },
		{ "/%zz", NULL },
		{ "/%2", NULL },
		{ "/%", NULL },
		{ "/a%g0", NULL },
		{ "/%0a", NULL },
		{ "/%7f", NULL },
		{ "/a%2fb", NULL },
		{ "/..%2f..%2fetc", NULL },
		{ "/a%5cb", NULL },
		{ "/a\\b", NULL },
		{ "/..\\..\\x", NULL },
		/* Not origin-form. */
		{ "", NULL },
		{ "a/b", NULL },
		{ "*", NULL },
		{ "ftp://h/x", NULL },
	};
	char	out[64];
	size_t	i;
	int	rc, bad = 0;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(out, 'Z', sizeof(out));
		rc = http_path(t[i].in, strlen(t[i].in), out, sizeof(out));
		if (t[i].out == NULL ? rc != -1 : (rc != (int)strlen(t[i].out)
		    || strcmp(out, t[i].out) != 0)) {
			print_error("case %zu \"%s\": got %d \"%.*s\"\n", i,
			    t[i].in, rc, rc > 0 ? rc : 0, out);
			bad++;
		}
	}
	assert_int_equal(bad, 0);

	/* The output never starts with '/' and never holds "..". */
	rc = http_path("/x/../y//./z", 12, out, sizeof(out));
	assert_int_equal(rc, 3);
	assert_string_equal(out, "y/z");
}

static void
test_path_len(void **state)
{
	char	out[8];

	(void)state;
	/* The length given is honoured: what follows is not read. */
	assert_int_equal(http_path("/ab/../..", 3, out, sizeof(out)), 2);
	assert_string_equal(out, "ab");
	assert_int_equal(http_path("/a%2", 2, out, sizeof(out)), 1);
	assert_int_equal(http_path("/a%2", 4, out, sizeof(out)), -1);

	/* Room for the NUL is needed. */
	assert_int_equal(http_path("/abc/defg", 9, out, 8), -1);
	assert_int_equal(http_path("/abc/def", 8, out, 8), 7);
	assert_string_equal(out, "abc/def");
	assert_int_equal(http_path("/abcdefgh", 9, out, 8), -1);
	assert_int_equal(http_path("/", 1, out, 1), 0);
	assert_string_equal(out, "");
	assert_int_equal(http_path("/a", 2, out, 1), -1);
	assert_int_equal(http_path("/", 1, out, 0), -1);
	/* Dot-segments need no room of their own. */
	assert_int_equal(http_path("/ab/./../ab/.", 13, out, 3), 2);
	assert_string_equal(out, "ab");
}

/* The parser's target feeds http_path() as is. */
static void
test_parse_then_path(void **state)
{
	const char	*s = "GET /a/./b%20c/../d?x=1 HTTP/1.1\r\nHost: h\r\n\r\n";
	struct http_req	 r;
	char		 out[64];

	(void)state;
	assert_true(parse(s, &r) > 0);
	assert_int_equal(http_path(r.hr_target, r.hr_target_len, out,
	    sizeof(out)), 3);
	assert_string_equal(out, "a/d");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_basic),
		cmocka_unit_test(test_head_and_methods),
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_valid_variants),
		cmocka_unit_test(test_absolute_form),
		cmocka_unit_test(test_errors_400),
		cmocka_unit_test(test_errors_501_505),
		cmocka_unit_test(test_early_reject),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_path),
		cmocka_unit_test(test_path_len),
		cmocka_unit_test(test_parse_then_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
