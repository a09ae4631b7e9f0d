/*
 * The second band: small authenticated UDP messages between daemons, from
 * node address to node address.  A back confirms or refuses a hand-off and
 * reports when a handed-off connection has fully closed.
 *
 * Wire format, big-endian, 76 bytes:
 *   0 magic "QTB1"  4 version  5 type  6 sender id (16)  8 time ms (64)
 *  16 token (8)    24 status (32)     28 a (64)   36 b (64)   44 HMAC (32)
 * A message is acted on only if its MAC is right under the cluster key,
 * its sender id names a node whose address is the datagram's source, and
 * its time is within the replay window.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qtd.h"

#define BAND_MAGIC	0x51544231u	/* "QTB1" */
#define BAND_VERSION	1
#define BAND_BODY	44
#define BAND_LEN	(BAND_BODY + 32)

static void
put64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t
get64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

int
band_send(int node, enum band_type type, const uint8_t token[QT_TOKEN_LEN],
    uint32_t status, uint64_t a, uint64_t b)
{
	const struct qt_config *cf = qtd->cf;
	struct sockaddr_in to = { .sin_family = AF_INET };
	uint8_t m[BAND_LEN];
	uint32_t v;
	uint16_t id;

	v = htonl(BAND_MAGIC);
	memcpy(m, &v, 4);
	m[4] = BAND_VERSION;
	m[5] = (uint8_t)type;
	id = htons((uint16_t)config_self(cf)->n_id);
	memcpy(m + 6, &id, 2);
	put64(m + 8, now_ms());
	memcpy(m + 16, token, QT_TOKEN_LEN);
	v = htonl(status);
	memcpy(m + 24, &v, 4);
	put64(m + 28, a);
	put64(m + 36, b);
	auth_mac(cf->c_key, m, BAND_BODY, NULL, 0, NULL, 0, m + BAND_BODY);
	to.sin_addr.s_addr = cf->c_nodes[node].n_addr;
	to.sin_port = htons(cf->c_band_port);
	if (sendto(qtd->band_fd, m, sizeof(m), 0, (struct sockaddr *)&to,
	    sizeof(to)) != (ssize_t)sizeof(m))
		return -1;
	return 0;
}

static void
band_dispatch(const uint8_t *m, size_t len, const struct sockaddr_in *from)
{
	const struct qt_config *cf = qtd->cf;
	uint8_t token[QT_TOKEN_LEN];
	uint64_t t, now = now_ms();
	uint32_t v, status;
	uint16_t id;
	struct flow *f;
	int node;

	if (len != BAND_LEN)
		goto bad;
	memcpy(&v, m, 4);
	if (ntohl(v) != BAND_MAGIC || m[4] != BAND_VERSION)
		goto bad;
	if (auth_verify(cf->c_key, m, BAND_BODY, NULL, 0, NULL, 0,
	    m + BAND_BODY) == -1)
		goto bad;
	memcpy(&id, m + 6, 2);
	node = config_node_by_id(cf, ntohs(id));
	if (node < 0 || cf->c_nodes[node].n_addr != from->sin_addr.s_addr)
		goto bad;
	t = get64(m + 8);
	if (t + cf->c_replay_window < now || t > now + cf->c_replay_window)
		goto bad;
	memcpy(token, m + 16, QT_TOKEN_LEN);
	memcpy(&v, m + 24, 4);
	status = ntohl(v);
	f = flow_by_token(m[5] == BAND_ABORT, token);
	if (!f || f->f_peer != node)
		return;		/* late or duplicate: nothing to do */
	switch (m[5]) {
	case BAND_ABORT:
		back_abort(f);
		return;
	case BAND_CONFIRM:
		front_confirmed(f);
		return;
	case BAND_REFUSE:
		front_refused(f, (int)status);
		return;
	case BAND_CLOSED:
		front_closed(f, get64(m + 28), (unsigned)get64(m + 36));
		return;
	default:
		goto bad;
	}
bad:
	qtd->st.st_band_bad++;
	log_debug("band: rejected a %zu-byte message from %s", len,
	    addr_str(from->sin_addr.s_addr));
}

static void
band_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sockaddr_in from;
	socklen_t fl;
	uint8_t m[512];
	ssize_t n;
	int i;

	(void)loop;
	(void)w;
	(void)revents;
	for (i = 0; i < 64; i++) {
		fl = sizeof(from);
		n = recvfrom(qtd->band_fd, m, sizeof(m), MSG_TRUNC,
		    (struct sockaddr *)&from, &fl);
		if (n == -1)
			return;
		band_dispatch(m, (size_t)n, &from);
	}
}

int
band_open(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int fd;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	sin.sin_addr.s_addr = config_self(qtd->cf)->n_addr;
	sin.sin_port = htons(qtd->cf->c_band_port);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		int e = errno;

		(void)close(fd);
		errno = e;
		return -1;
	}
	qtd->band_fd = fd;
	ev_io_init(&qtd->band_io, band_read, fd, EV_READ);
	ev_io_start(qtd->loop, &qtd->band_io);
	return 0;
}
