/*
 * The built-in static file responder: GET and HEAD from the document root,
 * Content-Length, sendfile(), HTTP/1.1 keep-alive and pipelining.  It runs
 * on any connected socket: one the front accepted, or one a back rebuilt,
 * whose first request came in the replay and whose later ones arrive
 * through the front's steering.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "qtd.h"

static int	docroot_fd = -1;

static const char *
status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 410: return "Gone";
	case 413: return "Content Too Large";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 451: return "Unavailable For Legal Reasons";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

static const char *
content_type(const char *path)
{
	static const struct { const char *ext, *type; } types[] = {
		{ ".html", "text/html" }, { ".htm", "text/html" },
		{ ".txt", "text/plain" }, { ".css", "text/css" },
		{ ".js", "text/javascript" }, { ".json", "application/json" },
		{ ".png", "image/png" }, { ".jpg", "image/jpeg" },
		{ ".gif", "image/gif" }, { ".svg", "image/svg+xml" },
		{ ".mp4", "video/mp4" }, { ".ts", "video/mp2t" },
		{ ".m3u8", "application/vnd.apple.mpegurl" },
	};
	const char *dot = strrchr(path, '.');
	size_t i;

	if (dot)
		for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (!strcmp(dot, types[i].ext))
				return types[i].type;
	return "application/octet-stream";
}

/*
 * Opens path below the document root.  RESOLVE_BENEATH makes the kernel
 * refuse any resolution that leaves the root, by ".." or by symlink, on
 * top of the parser's own checks.
 */
static int
docroot_open(const char *path)
{
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};

	if (docroot_fd == -1) {
		docroot_fd = open(qtd->cf->c_docroot,
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (docroot_fd == -1)
			return -1;
	}
	return (int)syscall(SYS_openat2, docroot_fd, *path ? path : ".", &how,
	    sizeof(how));
}

static void	serve_next(struct flow *);
static void	serve_write(struct ev_loop *, ev_io *, int);

static void
serve_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct flow *f = container_of(w, struct flow, f_timer);

	(void)loop;
	(void)revents;
	flow_finish(f, "idle timeout");
}

static void
serve_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct flow *f = container_of(w, struct flow, f_io);
	ssize_t n;

	(void)loop;
	(void)revents;
	if ((n = flow_read(f, NULL)) == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		flow_close(f, errno == ECONNRESET ? "client reset" :
		    errno == ENOMEM ? "out of memory" : "read error");
		return;
	}
	if (n == 0) {
		flow_finish(f, f->f_blen ? "client closed mid-request" :
		    "client closed");
		return;
	}
	serve_next(f);
}

static void
wait_read(struct flow *f)
{
	flow_stop_watchers(f);
	ev_io_init(&f->f_io, serve_read, f->f_fd, EV_READ);
	ev_io_start(qtd->loop, &f->f_io);
	ev_timer_init(&f->f_timer, serve_idle, 0,
	    qtd->cf->c_idle_timeout / 1000.0);
	ev_timer_again(qtd->loop, &f->f_timer);
}

static void
start_write(struct flow *f)
{
	flow_stop_watchers(f);
	ev_io_init(&f->f_io, serve_write, f->f_fd, EV_WRITE);
	ev_io_start(qtd->loop, &f->f_io);
	/* A client that stops reading is dropped after the idle timeout. */
	ev_timer_init(&f->f_timer, serve_idle, 0,
	    qtd->cf->c_idle_timeout / 1000.0);
	ev_timer_again(qtd->loop, &f->f_timer);
	serve_write(qtd->loop, &f->f_io, EV_WRITE);
}

static void
respond_status(struct flow *f, int status, int keepalive, const char *extra)
{
	const char *text = status_text(status);
	int n;

	if (!flow_out(f)) {
		flow_close(f, "out of memory");
		return;
	}
	n = snprintf(f->f_out, FLOW_OUT,
	    "HTTP/1.1 %d %s\r\nServer: quicktwitch\r\nX-Served-By: %s\r\n"
	    "Content-Type: text/plain\r\nContent-Length: %zu\r\n%s"
	    "Connection: %s\r\n\r\n%d %s\n", status, text,
	    config_self(qtd->cf)->n_name, strlen(text) + 5, extra ? extra : "",
	    keepalive ? "keep-alive" : "close", status, text);
	f->f_olen = (size_t)n < FLOW_OUT ? (size_t)n : FLOW_OUT - 1;
	f->f_ooff = 0;
	f->f_keepalive = keepalive;
	start_write(f);
}

void
serve_error(struct flow *f, int status)
{
	qtd->st.st_bad_requests++;
	serve_error_quiet(f, status);
}

/* An error status and a close, not counted as the client's fault. */
void
serve_error_quiet(struct flow *f, int status)
{
	f->f_consume = f->f_blen;
	respond_status(f, status, 0, NULL);
}

static void
respond(struct flow *f, const struct http_req *r)
{
	char path[PATH_MAX];
	struct stat sb;
	int n, fd;

	if (r->hr_method != HTTP_M_GET && r->hr_method != HTTP_M_HEAD) {
		/* We do not read request bodies: close after answering. */
		f->f_consume = f->f_blen;
		respond_status(f, 405, 0, "Allow: GET, HEAD\r\n");
		return;
	}
	if (http_path(r->hr_target, r->hr_target_len, path,
	    sizeof(path) - 16) < 0) {
		serve_error(f, 400);
		return;
	}
	fd = docroot_open(path);
	if (fd != -1 && fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		(void)close(fd);
		strcat(path, *path ? "/index.html" : "index.html");
		fd = docroot_open(path);
	}
	if (fd == -1 || fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		if (fd != -1)
			(void)close(fd);
		respond_status(f, 404, f->f_keepalive, NULL);
		return;
	}
	if (!flow_out(f)) {
		(void)close(fd);
		flow_close(f, "out of memory");
		return;
	}
	n = snprintf(f->f_out, FLOW_OUT,
	    "HTTP/1.1 200 OK\r\nServer: quicktwitch\r\nX-Served-By: %s\r\n"
	    "Content-Type: %s\r\nContent-Length: %lld\r\nConnection: %s\r\n"
	    "\r\n", config_self(qtd->cf)->n_name, content_type(path),
	    (long long)sb.st_size, f->f_keepalive ? "keep-alive" : "close");
	f->f_olen = (size_t)n < FLOW_OUT ? (size_t)n : FLOW_OUT - 1;
	f->f_ooff = 0;
	if (r->hr_method == HTTP_M_GET) {
		f->f_file = fd;
		f->f_foff = 0;
		f->f_fend = sb.st_size;
	} else
		(void)close(fd);
	start_write(f);
}

static void
serve_next(struct flow *f)
{
	struct http_req r;
	int rc;

	rc = http_parse(f->f_buf, f->f_blen, qtd->cf->c_max_header, &r);
	if (rc == 0 && f->f_peer_fin) {
		/* The client half-closed: no further request can come. */
		flow_finish(f, "client half-closed");
		return;
	}
	if (rc == 0) {
		wait_read(f);
		return;
	}
	if (rc < 0) {
		serve_error(f, -rc);
		return;
	}
	if (r.hr_chunked || r.hr_clen > 65536) {
		serve_error(f, 413);
		return;
	}
	if (r.hr_clen > 0 && f->f_blen < (size_t)rc + (size_t)r.hr_clen) {
		wait_read(f);	/* a body we must skip: wait for all of it */
		return;
	}
	f->f_consume = (size_t)rc + (size_t)(r.hr_clen > 0 ? r.hr_clen : 0);
	f->f_keepalive = r.hr_keepalive;
	if (f->f_requests++ == 0)
		flow_note_request(f, &r);
	respond(f, &r);
}

/* Called when a response is fully written. */
static void
serve_done(struct flow *f)
{
	if (f->f_file != -1) {
		(void)close(f->f_file);
		f->f_file = -1;
	}
	memmove(f->f_buf, f->f_buf + f->f_consume, f->f_blen - f->f_consume);
	f->f_blen -= f->f_consume;
	f->f_consume = 0;
	if (!f->f_keepalive) {
		flow_finish(f, "response complete");
		return;
	}
	serve_next(f);
}

static void
serve_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct flow *f = container_of(w, struct flow, f_io);
	ssize_t n;

	(void)loop;
	(void)revents;
	while (f->f_ooff < f->f_olen) {
		n = send(f->f_fd, f->f_out + f->f_ooff, f->f_olen - f->f_ooff,
		    MSG_NOSIGNAL | (f->f_file != -1 ? MSG_MORE : 0));
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			flow_close(f, errno == ECONNRESET || errno == EPIPE ?
			    "client reset" : "write error");
			return;
		}
		f->f_ooff += (size_t)n;
	}
	flow_answered(f);
	while (f->f_file != -1 && f->f_foff < f->f_fend) {
		size_t want = (size_t)(f->f_fend - f->f_foff);

		if (want > (1 << 20))
			want = 1 << 20;
		n = sendfile(f->f_fd, f->f_file, &f->f_foff, want);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR) {
				ev_timer_again(qtd->loop, &f->f_timer);
				return;
			}
			flow_close(f, errno == ECONNRESET || errno == EPIPE ?
			    "client reset" : "sendfile error");
			return;
		}
		if (n == 0) {
			flow_close(f, "file shrank");
			return;
		}
		f->f_bytes += (uint64_t)n;
		qtd->st.st_bytes_served += (uint64_t)n;
	}
	serve_done(f);
}

void
serve_start(struct flow *f)
{
	const struct qt_service *sv = &qtd->cf->c_svcs[f->f_svc];

	if (!f->f_serving) {
		f->f_serving = 1;
		qtd->nserving++;
	}
	if (sv->s_uplen) {
		relay_start(f, &sv->s_upstream, sv->s_uplen, 0);
		return;
	}
	serve_next(f);
}
