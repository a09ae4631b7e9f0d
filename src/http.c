/*
 * HTTP/1.x request-head parser and request-target cleaner (RFC 9112,
 * RFC 9110, RFC 3986).  Pure functions over the caller's bytes: no I/O, no
 * allocation, no locale; every pointer stored in struct http_req points
 * into the caller's buffer.
 *
 * The front end reads a request head and then hands the connection and
 * those very bytes to a back end, so two parsers see every request.  Any
 * place where they could disagree on framing is a request-smuggling hole;
 * where RFC 9112 lets a recipient choose between lenient and strict, this
 * parser is strict:
 *
 * - Lines end in CRLF only.  A bare LF or a bare CR anywhere in the head
 *   is 400 (RFC 9112 2.2 allows, but does not require, accepting bare LF).
 * - Any other control byte (NUL, 0x01-0x1f but HTAB, DEL) in the head is
 *   400, and is refused as soon as it is seen, before the line is complete.
 * - Exactly one SP between the request-line's three parts; the version is
 *   exactly "HTTP/" DIGIT "." DIGIT.  A major version other than 1 is 505;
 *   a line with no version at all (HTTP/0.9's simple request) is 400.
 *   HTTP/1.2 .. 1.9 are served as 1.1 (RFC 9110 6.2) but hr_minor keeps
 *   the digit that was sent.
 * - Empty lines before the request-line are skipped (RFC 9112 2.2) and
 *   counted in hr_hdrlen and in max.
 * - A field line starting with SP or HTAB (obs-fold, or whitespace before
 *   the first field) is 400, as is whitespace between name and colon.
 *   Field values may carry obs-text (0x80-0xff); OWS around them is cut.
 * - Content-Length: one field line with 1*DIGIT, else 400 (a repeated
 *   line is 400 even when the values agree, and so is a "5, 5" list).
 * - Transfer-Encoding: with Content-Length 400, in HTTP/1.0 400 (RFC 9112
 *   6.1 calls that framing faulty), otherwise the combined value must be
 *   exactly "chunked" (case-insensitive) or the answer is 501.  Two
 *   Transfer-Encoding lines therefore give 501.
 * - Host: more than one, or an invalid value, is 400 in every version;
 *   none in HTTP/1.1 is 400.  An empty value is accepted (hr_host_len 0):
 *   RFC 9112 3.3 leaves the default authority to the server.
 * - Targets: origin-form; absolute-form with scheme http or https, a
 *   non-empty host and no userinfo, whose authority becomes hr_host and
 *   overrides the Host field (RFC 9112 3.2.2; Host must still be present
 *   in 1.1); "*" for OPTIONS only.  Authority-form (CONNECT) is 400: we are
 *   no forward proxy.  Only VCHAR is allowed, and '#' is 400 since a
 *   fragment is never part of a request-target.
 * - Methods are case-sensitive tokens: "GET" and "HEAD" are recognised,
 *   every other token is HTTP_M_OTHER for the caller to refuse.
 *
 * The parser keeps no state between calls: it re-reads the buffer from the
 * start each time, which costs at most max bytes per call and makes it
 * impossible for a partial read to leave it confused.
 */
#include <limits.h>
#include <string.h>

#include "http.h"

struct http_state {
	int	hs_nhost;	/* Host field lines seen */
	int	hs_target_host;	/* hr_host is from an absolute target */
	int	hs_nclen;	/* Content-Length field lines seen */
	int	hs_nte;		/* Transfer-Encoding field lines seen */
	int	hs_te_chunked;	/* the only TE line said "chunked" */
	int	hs_close;	/* Connection: close */
	int	hs_keepalive;	/* Connection: keep-alive */
};

static int
http_is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int
http_is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
http_hexval(unsigned char c)
{
	if (http_is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* RFC 9110 5.6.2 tchar. */
static int
http_is_tchar(unsigned char c)
{
	if (http_is_digit(c) || http_is_alpha(c))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* ASCII-only lowering: the locale must not change what a header means. */
static unsigned char
http_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* Case-insensitive comparison of s[0..n) with a lower-case literal. */
static int
http_ci_eq(const char *s, size_t n, const char *lit)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (lit[i] == '\0' || http_lower(s[i]) != (unsigned char)lit[i])
			return 0;
	return lit[n] == '\0';
}

static int
http_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static void
http_trim(const char **s, size_t *n)
{
	while (*n > 0 && http_is_ows((*s)[0])) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && http_is_ows((*s)[*n - 1]))
		(*n)--;
}

/*
 * uri-host [ ":" port ] (RFC 3986 3.2.2): an IPv6 literal, or a reg-name
 * or IPv4 address made of unreserved, sub-delims and pct-encoded.  A Host
 * field may be empty; the authority of an absolute target may not.  The
 * port may be empty (RFC 3986) but not longer than five digits.
 */
static int
http_host_ok(const char *s, size_t n, int empty_ok)
{
	size_t		i = 0, p;
	unsigned char	c;

	if (n == 0)
		return empty_ok;
	if (s[0] == '[') {
		for (i = 1; i < n && s[i] != ']'; i++)
			if (http_hexval(s[i]) < 0 && s[i] != ':' && s[i] != '.')
				return 0;
		if (i == n || i == 1)
			return 0;
		i++;
	} else {
		for (; i < n && s[i] != ':'; i++) {
			c = s[i];
			if (c == '%') {
				if (i + 2 >= n || http_hexval(s[i + 1]) < 0 ||
				    http_hexval(s[i + 2]) < 0)
					return 0;
				i += 2;
				continue;
			}
			if (!http_is_digit(c) && !http_is_alpha(c) &&
			    strchr("-._~!$&'()*+,;=", c) == NULL)
				return 0;
		}
		if (i == 0)
			return 0;
	}
	if (i == n)
		return 1;
	if (s[i] != ':')
		return 0;
	for (p = ++i; i < n; i++)
		if (!http_is_digit(s[i]))
			return 0;
	return i - p <= 5;
}

/*
 * Length of "http://" or "https://" at the start of s, or 0.  Shared by
 * the parser and http_path() so that both agree on what absolute-form is.
 */
static size_t
http_scheme_len(const char *s, size_t n)
{
	if (n >= 7 && http_ci_eq(s, 7, "http://"))
		return 7;
	if (n >= 8 && http_ci_eq(s, 8, "https://"))
		return 8;
	return 0;
}

/*
 * absolute-form: the authority becomes the request's host (RFC 9112
 * 3.2.2).  Userinfo is refused: RFC 9110 4.2.4 deprecates it in http URIs
 * and it is a favourite for disguising the real host.
 */
static int
http_absolute(const char *t, size_t n, struct http_req *req)
{
	size_t	a, i;

	if ((a = http_scheme_len(t, n)) == 0)
		return -400;
	for (i = a; i < n && t[i] != '/' && t[i] != '?'; i++)
		if (t[i] == '@')
			return -400;
	if (!http_host_ok(t + a, i - a, 0))
		return -400;
	req->hr_host = t + a;
	req->hr_host_len = i - a;
	return 0;
}

static int
http_reqline(const char *l, size_t n, struct http_req *req,
    struct http_state *st)
{
	const char	*t, *v;
	size_t		 i, tn;
	unsigned char	 c;

	for (i = 0; i < n && http_is_tchar(l[i]); i++)
		;
	if (i == 0 || i == n || l[i] != ' ')
		return -400;
	req->hr_method_str = l;
	req->hr_method_len = i;

	t = l + ++i;
	for (; i < n && l[i] != ' '; i++) {
		c = l[i];
		if (c <= ' ' || c >= 0x7f || c == '#')
			return -400;
	}
	tn = (size_t)(l + i - t);
	/* No second SP: an HTTP/0.9 simple request, or garbage. */
	if (tn == 0 || i == n)
		return -400;
	req->hr_target = t;
	req->hr_target_len = tn;

	v = l + i + 1;
	if (n - i - 1 != 8 || memcmp(v, "HTTP/", 5) != 0 ||
	    !http_is_digit(v[5]) || v[6] != '.' || !http_is_digit(v[7]))
		return -400;
	/* Before the target checks, so that "PRI * HTTP/2.0" gets its 505. */
	if (v[5] != '1')
		return -505;
	req->hr_minor = v[7] - '0';

	if (req->hr_method_len == 3 && memcmp(l, "GET", 3) == 0)
		req->hr_method = HTTP_M_GET;
	else if (req->hr_method_len == 4 && memcmp(l, "HEAD", 4) == 0)
		req->hr_method = HTTP_M_HEAD;
	else
		req->hr_method = HTTP_M_OTHER;

	if (t[0] == '/')
		return 0;
	if (tn == 1 && t[0] == '*')
		return (req->hr_method_len == 7 &&
		    memcmp(l, "OPTIONS", 7) == 0) ? 0 : -400;
	if (http_absolute(t, tn, req) < 0)
		return -400;
	st->hs_target_host = 1;
	return 0;
}

static int
http_clen(const char *v, size_t n, struct http_req *req)
{
	long long	val = 0;
	size_t		i;
	int		d;

	if (n == 0)
		return -400;
	for (i = 0; i < n; i++) {
		if (!http_is_digit(v[i]))
			return -400;
		d = v[i] - '0';
		if (val > (LLONG_MAX - d) / 10)
			return -400;
		val = val * 10 + d;
	}
	req->hr_clen = val;
	return 0;
}

/* Connection is a comma-separated token list (RFC 9110 7.6.1). */
static void
http_connection(const char *v, size_t n, struct http_state *st)
{
	const char	*e;
	size_t		 i = 0, j, en;

	while (i < n) {
		for (j = i; j < n && v[j] != ','; j++)
			;
		e = v + i;
		en = j - i;
		http_trim(&e, &en);
		if (http_ci_eq(e, en, "close"))
			st->hs_close = 1;
		else if (http_ci_eq(e, en, "keep-alive"))
			st->hs_keepalive = 1;
		i = j + 1;
	}
}

/*
 * One field line.  The byte-level checks (controls, CR, LF) were done by
 * http_line(), so only the structure is left to check here.
 */
static int
http_field(const char *l, size_t n, struct http_req *req,
    struct http_state *st)
{
	const char	*v;
	size_t		 i, vn;

	if (http_is_ows(l[0]))
		return -400;
	for (i = 0; i < n && l[i] != ':'; i++)
		if (!http_is_tchar(l[i]))
			return -400;
	if (i == 0 || i == n)
		return -400;
	v = l + i + 1;
	vn = n - i - 1;
	http_trim(&v, &vn);

	if (http_ci_eq(l, i, "host")) {
		if (++st->hs_nhost > 1 || !http_host_ok(v, vn, 1))
			return -400;
		if (!st->hs_target_host) {
			req->hr_host = v;
			req->hr_host_len = vn;
		}
	} else if (http_ci_eq(l, i, "content-length")) {
		if (++st->hs_nclen > 1)
			return -400;
		return http_clen(v, vn, req);
	} else if (http_ci_eq(l, i, "transfer-encoding")) {
		st->hs_nte++;
		st->hs_te_chunked = st->hs_nte == 1 &&
		    http_ci_eq(v, vn, "chunked");
	} else if (http_ci_eq(l, i, "connection"))
		http_connection(v, vn, st);
	return 0;
}

/* Checks that need the whole head. */
static int
http_finish(struct http_req *req, struct http_state *st)
{
	if (req->hr_minor >= 1 && st->hs_nhost == 0)
		return -400;
	if (st->hs_nte > 0) {
		if (st->hs_nclen > 0 || req->hr_minor == 0)
			return -400;
		if (!st->hs_te_chunked)
			return -501;
		req->hr_chunked = 1;
	}
	if (req->hr_minor >= 1)
		req->hr_keepalive = !st->hs_close;
	else
		req->hr_keepalive = st->hs_keepalive && !st->hs_close;
	return 0;
}

/*
 * Finds the CRLF that ends the line starting at off, checking every byte
 * on the way so that control bytes are refused as soon as they arrive, not
 * when the line is complete.  Returns 1 and the CR's index in *eol, 0 if
 * the line goes on past w, or -400.
 */
static int
http_line(const char *buf, size_t w, size_t off, size_t *eol)
{
	size_t		i;
	unsigned char	c;

	for (i = off; i < w; i++) {
		c = buf[i];
		if (c == '\r') {
			if (i + 1 == w)
				return 0;
			if (buf[i + 1] != '\n')
				return -400;
			*eol = i;
			return 1;
		}
		/* A LF here has no CR before it. */
		if (c == '\n' || (c < ' ' && c != '\t') || c == 0x7f)
			return -400;
	}
	return 0;
}

int
http_parse(const char *buf, size_t len, size_t max, struct http_req *req)
{
	struct http_state	st;
	size_t			w, off = 0, eol;
	int			rc;

	/* The head's length is returned as an int. */
	if (max > INT_MAX)
		max = INT_MAX;
	/* Nothing past max can belong to an acceptable head. */
	w = len < max ? len : max;

	memset(req, 0, sizeof(*req));
	req->hr_method_str = req->hr_target = req->hr_host = NULL;
	req->hr_clen = -1;
	memset(&st, 0, sizeof(st));

	while (off + 1 < w && buf[off] == '\r' && buf[off + 1] == '\n')
		off += 2;

	if ((rc = http_line(buf, w, off, &eol)) <= 0)
		goto more;
	if ((rc = http_reqline(buf + off, eol - off, req, &st)) < 0)
		return rc;
	off = eol + 2;

	for (;;) {
		if ((rc = http_line(buf, w, off, &eol)) <= 0)
			goto more;
		if (eol == off)
			break;
		if ((rc = http_field(buf + off, eol - off, req, &st)) < 0)
			return rc;
		off = eol + 2;
	}
	off += 2;

	if ((rc = http_finish(req, &st)) < 0)
		return rc;
	req->hr_hdrlen = off;
	return (int)off;

more:
	if (rc < 0)
		return rc;
	return len >= max ? -431 : 0;
}

/*
 * Decodes the byte at s[*i], a plain byte or a %XX escape, and advances *i.
 * Refuses invalid escapes, NUL and other control bytes (which have no
 * business in a file name and end up in logs), and both path separators:
 * a decoded '/' would change the segment structure after dot-segments were
 * resolved ("..%2f.." is the classic), and '\' is a separator to some back
 * ends and file systems.  Returns the byte or -1.
 */
static int
http_path_byte(const char *s, size_t n, size_t *i)
{
	unsigned char	c = s[*i];
	int		hi, lo;

	if (c == '%') {
		if (n - *i < 3 || (hi = http_hexval(s[*i + 1])) < 0 ||
		    (lo = http_hexval(s[*i + 2])) < 0)
			return -1;
		c = (unsigned char)(hi << 4 | lo);
		*i += 3;
	} else
		(*i)++;
	if (c < ' ' || c == 0x7f || c == '/' || c == '\\')
		return -1;
	return c;
}

/*
 * Appends one raw segment to out[0..*o), resolving "." and ".." after
 * decoding (so "%2e%2e" is "..").  A first pass validates and measures, so
 * that a dot-segment is never written and then taken back, and a too-small
 * buffer is found before anything is written.
 */
static int
http_path_seg(const char *s, size_t n, char *out, size_t outsz, size_t *o)
{
	size_t	i, dlen = 0, dots = 0;
	int	c;

	for (i = 0; i < n; dlen++) {
		if ((c = http_path_byte(s, n, &i)) < 0)
			return -1;
		if (c == '.')
			dots++;
	}
	if (dlen == 0 || (dlen == 1 && dots == 1))
		return 0;
	if (dlen == 2 && dots == 2) {
		/* ".." at the root would leave it. */
		if (*o == 0)
			return -1;
		while (*o > 0 && out[*o - 1] != '/')
			(*o)--;
		if (*o > 0)
			(*o)--;
		return 0;
	}
	/* The separator, the segment, and room for the final NUL. */
	if (dlen + (*o > 0) >= outsz - *o)
		return -1;
	if (*o > 0)
		out[(*o)++] = '/';
	for (i = 0; i < n;)
		out[(*o)++] = (char)http_path_byte(s, n, &i);
	return 0;
}

/*
 * The result is the target's segments, decoded and resolved, joined by
 * single slashes: it never starts or ends with '/' (so "/a/" and "/a" are
 * the same path), never holds an empty, "." or ".." segment, and is
 * NUL-terminated (outsz must leave room for the NUL).  An absolute-form
 * target is accepted too: its path is what follows the authority, and an
 * empty one is the root.  The query and anything after '#' are dropped.
 */
int
http_path(const char *target, size_t len, char *out, size_t outsz)
{
	size_t	i, end, seg, o = 0;

	if (outsz == 0 || len == 0)
		return -1;
	if ((i = http_scheme_len(target, len)) > 0) {
		while (i < len && target[i] != '/' && target[i] != '?' &&
		    target[i] != '#')
			i++;
		if (i < len && target[i] != '/')
			i = len;
	} else if (target[0] != '/')
		return -1;
	for (end = i; end < len && target[end] != '?' && target[end] != '#';
	    end++)
		;
	/* target[i] is '/' at the top of every round. */
	while (i < end) {
		seg = ++i;
		while (i < end && target[i] != '/')
			i++;
		if (http_path_seg(target + seg, i - seg, out, outsz, &o) < 0)
			return -1;
	}
	if (o > INT_MAX)
		return -1;
	out[o] = '\0';
	return (int)o;
}
