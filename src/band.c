/*
 * The second band: small authenticated UDP messages between daemons, from
 * node address to node address.  A back confirms or refuses a hand-off,
 * reports when a handed-off connection has fully closed, and answers a
 * front's periodic check of the flows it believes handed off.
 *
 * Wire format, big-endian:
 *   0 magic "QTB1"   4 version  5 type  6 sender id (16)  8 stamp (64)
 *  16 token (8)     24 status (32)     28 a (64)   36 b (64)
 *  44 client ip (4) 48 client port (16) 50 service (16) 52 payload len (16)
 *  54 reserved (16) 56 payload           then HMAC-SHA-256 (32) over all
 * A message is acted on only if its MAC is right under the cluster key
 * (or the key being rotated out), its sender id names a node whose
 * address is the datagram's source, its stamp (microseconds of the
 * sender's clock, strictly increasing per sender) is within the replay
 * window and above every stamp seen from that sender: a message replayed
 * by someone on the path is dropped even inside the window.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qtd.h"

#define BAND_MAGIC	0x51544231u	/* "QTB1" */
#define BAND_VERSION	2
#define BAND_HDR	56
#define BAND_MAC	32

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

/* Microseconds, strictly increasing even within one microsecond. */
static uint64_t
band_stamp(void)
{
	static uint64_t last;
	uint64_t now = now_us();

	last = now > last ? now : last + 1;
	return last;
}

int
band_send(int node, const struct band_msg *bm)
{
	const struct qt_config *cf = qtd->cf;
	struct sockaddr_in to = { .sin_family = AF_INET };
	uint8_t m[BAND_HDR + BAND_PAYLOAD_MAX + BAND_MAC];
	uint32_t v;
	uint16_t s;
	size_t len;

	if (bm->bm_plen > BAND_PAYLOAD_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	memset(m, 0, BAND_HDR);
	v = htonl(BAND_MAGIC);
	memcpy(m, &v, 4);
	m[4] = BAND_VERSION;
	m[5] = (uint8_t)bm->bm_type;
	s = htons((uint16_t)config_self(cf)->n_id);
	memcpy(m + 6, &s, 2);
	put64(m + 8, band_stamp());
	memcpy(m + 16, bm->bm_token, QT_TOKEN_LEN);
	v = htonl(bm->bm_status);
	memcpy(m + 24, &v, 4);
	put64(m + 28, bm->bm_a);
	put64(m + 36, bm->bm_b);
	memcpy(m + 44, &bm->bm_cip, 4);
	memcpy(m + 48, &bm->bm_cport, 2);
	s = htons(bm->bm_svc);
	memcpy(m + 50, &s, 2);
	s = htons(bm->bm_plen);
	memcpy(m + 52, &s, 2);
	/* Most messages have no payload and a NULL bm_payload: memcpy
	 * from NULL is undefined even for 0 bytes (UBSan stops on it). */
	if (bm->bm_plen > 0)
		memcpy(m + BAND_HDR, bm->bm_payload, bm->bm_plen);
	len = BAND_HDR + bm->bm_plen;
	auth_mac(cf->c_key, m, len, NULL, 0, NULL, 0, m + len);
	len += BAND_MAC;
	to.sin_addr.s_addr = cf->c_nodes[node].n_addr;
	to.sin_port = htons(cf->c_band_port);
	if (sendto(qtd->band_fd, m, len, 0, (struct sockaddr *)&to,
	    sizeof(to)) != (ssize_t)len)
		return -1;
	return 0;
}

void
band_closed_put(uint8_t *e, const struct band_closed *c)
{
	memcpy(e, c->c_token, QT_TOKEN_LEN);
	memcpy(e + 8, &c->c_cip, 4);
	memcpy(e + 12, &c->c_cport, 2);
	e[14] = (uint8_t)(c->c_svc >> 8);
	e[15] = (uint8_t)c->c_svc;
	put64(e + 16, c->c_bytes);
	e[24] = (uint8_t)(c->c_requests >> 24);
	e[25] = (uint8_t)(c->c_requests >> 16);
	e[26] = (uint8_t)(c->c_requests >> 8);
	e[27] = (uint8_t)c->c_requests;
}

void
band_closed_get(const uint8_t *e, struct band_closed *c)
{
	memcpy(c->c_token, e, QT_TOKEN_LEN);
	memcpy(&c->c_cip, e + 8, 4);
	memcpy(&c->c_cport, e + 12, 2);
	c->c_svc = (uint16_t)(e[14] << 8 | e[15]);
	c->c_bytes = get64(e + 16);
	c->c_requests = (uint32_t)e[24] << 24 | (uint32_t)e[25] << 16 |
	    (uint32_t)e[26] << 8 | e[27];
}

void
band_confirm_put(uint8_t *e, const struct band_msg *bm)
{
	memcpy(e, bm->bm_token, QT_TOKEN_LEN);
	memcpy(e + 8, &bm->bm_cip, 4);
	memcpy(e + 12, &bm->bm_cport, 2);
	e[14] = (uint8_t)(bm->bm_svc >> 8);
	e[15] = (uint8_t)bm->bm_svc;
}

/* The CONFIRM an entry stands for. */
void
band_confirm_get(const uint8_t *e, struct band_msg *bm)
{
	memset(bm, 0, sizeof(*bm));
	bm->bm_type = BAND_CONFIRM;
	memcpy(bm->bm_token, e, QT_TOKEN_LEN);
	memcpy(&bm->bm_cip, e + 8, 4);
	memcpy(&bm->bm_cport, e + 12, 2);
	bm->bm_svc = (uint16_t)(e[14] << 8 | e[15]);
}

/* Sends a message about flow f to its peer: the usual case. */
int
band_send_flow(const struct flow *f, enum band_type type, uint32_t status,
    uint64_t a, uint64_t b)
{
	struct band_msg bm = {
		.bm_type = type,
		.bm_status = status,
		.bm_a = a,
		.bm_b = b,
		.bm_cip = f->f_cip,
		.bm_cport = f->f_cport,
		.bm_svc = (uint16_t)f->f_svc,
	};

	memcpy(bm.bm_token, f->f_token, QT_TOKEN_LEN);
	return band_send(f->f_peer, &bm);
}

/*
 * The wire half of band_decode, with no daemon state so that it can be
 * fuzzed on its own: framing, then the MAC under key (or key2, the key
 * being rotated out, when not NULL), and only then the fields.  Whether
 * the sender, the stamp and the service are acceptable is the caller's
 * business.
 */
int
band_parse(const uint8_t *m, size_t len, const uint8_t key[QT_KEY_LEN],
    const uint8_t *key2, struct band_msg *bm, uint16_t *sender_id,
    uint64_t *stamp)
{
	uint32_t v;
	uint16_t s;

	if (len < BAND_HDR + BAND_MAC)
		return -1;
	memcpy(&v, m, 4);
	if (ntohl(v) != BAND_MAGIC || m[4] != BAND_VERSION)
		return -1;
	memcpy(&s, m + 52, 2);
	bm->bm_plen = ntohs(s);
	if (bm->bm_plen > BAND_PAYLOAD_MAX ||
	    len != BAND_HDR + (size_t)bm->bm_plen + BAND_MAC)
		return -1;
	if (auth_verify(key, m, len - BAND_MAC, NULL, 0, NULL, 0,
	    m + len - BAND_MAC) == -1 && (key2 == NULL ||
	    auth_verify(key2, m, len - BAND_MAC, NULL, 0, NULL, 0,
	    m + len - BAND_MAC) == -1))
		return -1;
	memcpy(&s, m + 6, 2);
	*sender_id = ntohs(s);
	*stamp = get64(m + 8);
	bm->bm_time = *stamp / 1000;
	bm->bm_type = m[5];
	memcpy(bm->bm_token, m + 16, QT_TOKEN_LEN);
	memcpy(&v, m + 24, 4);
	bm->bm_status = ntohl(v);
	bm->bm_a = get64(m + 28);
	bm->bm_b = get64(m + 36);
	memcpy(&bm->bm_cip, m + 44, 4);
	memcpy(&bm->bm_cport, m + 48, 2);
	memcpy(&s, m + 50, 2);
	bm->bm_svc = ntohs(s);
	bm->bm_payload = m + BAND_HDR;
	return 0;
}

static int
band_decode(const uint8_t *m, size_t len, const struct sockaddr_in *from,
    struct band_msg *bm, int *node)
{
	const struct qt_config *cf = qtd->cf;
	uint64_t now = now_ms(), stamp;
	uint16_t sender;

	if (band_parse(m, len, cf->c_key, cf->c_have_key2 ? cf->c_key2 : NULL,
	    bm, &sender, &stamp) == -1)
		return -1;
	*node = config_node_by_id(cf, sender);
	if (*node < 0 || *node == cf->c_self ||
	    cf->c_nodes[*node].n_addr != from->sin_addr.s_addr)
		return -1;
	if (bm->bm_time + cf->c_replay_window < now ||
	    bm->bm_time > now + cf->c_replay_window ||
	    stamp <= qtd->band_last[cf->c_nodes[*node].n_id])
		return -1;
	qtd->band_last[cf->c_nodes[*node].n_id] = stamp;
	if (bm->bm_svc >= cf->c_nsvcs)
		return -1;
	return 0;
}

static void
band_dispatch(const uint8_t *m, size_t len, const struct sockaddr_in *from)
{
	struct band_msg bm;
	int node;

	if (band_decode(m, len, from, &bm, &node) == -1) {
		qtd->st.st_band_bad++;
		log_debug("band: rejected a %zu-byte message from %s", len,
		    addr_str(from->sin_addr.s_addr));
		return;
	}
	switch (bm.bm_type) {
	case BAND_CONFIRM:
	case BAND_CONFIRMS:
	case BAND_REFUSE:
	case BAND_CLOSED:
	case BAND_CHECK_REPLY:
		front_band(node, &bm);
		return;
	case BAND_ABORT:
	case BAND_CHECK:
		back_band(node, &bm);
		return;
	case BAND_HEARTBEAT:
		health_band(node, &bm);
		return;
	default:
		qtd->st.st_band_bad++;
		return;
	}
}

/*
 * Up to 64 datagrams, BAND_BATCH to a system call: fewer than asked for
 * means the queue was empty, so a wake-up for one CONFIRM costs one call,
 * not a second that finds nothing.  MSG_TRUNC makes each length the
 * datagram's own: one too long for our buffer is dispatched as empty,
 * that is, rejected.
 */
#define BAND_BATCH	16
#define BAND_DGRAM	2048

static void
band_read(struct ev_loop *loop, ev_io *w, int revents)
{
	uint8_t m[BAND_BATCH][BAND_DGRAM];
	struct sockaddr_in from[BAND_BATCH];
	struct mmsghdr mh[BAND_BATCH];
	struct iovec iov[BAND_BATCH];
	int i, k, n;

	(void)loop;
	(void)w;
	(void)revents;
	for (k = 0; k < 64 / BAND_BATCH; k++) {
		memset(mh, 0, sizeof(mh));
		for (i = 0; i < BAND_BATCH; i++) {
			iov[i].iov_base = m[i];
			iov[i].iov_len = sizeof(m[i]);
			mh[i].msg_hdr.msg_iov = &iov[i];
			mh[i].msg_hdr.msg_iovlen = 1;
			mh[i].msg_hdr.msg_name = &from[i];
			mh[i].msg_hdr.msg_namelen = sizeof(from[i]);
		}
		n = recvmmsg(qtd->band_fd, mh, BAND_BATCH, MSG_TRUNC, NULL);
		if (n <= 0)
			return;
		for (i = 0; i < n; i++)
			band_dispatch(m[i], mh[i].msg_len > sizeof(m[i]) ? 0 :
			    mh[i].msg_len, &from[i]);
		if (n < BAND_BATCH)
			return;
	}
}

/*
 * Handles every band message already queued, now, up to a bound.  A loop
 * turn polls its descriptors, then runs the timers due by then: in a long
 * turn, a CONFIRM that came after the poll waits for the next one while a
 * hand-off's timer runs.  Timer callbacks that act on a back's silence
 * call this first, so a message that is there is seen.  (A higher
 * priority for the band watcher does not do it: measured, t_slowfront
 * still saw 207 and 290 take-backs.)
 */
void
band_poll(void)
{
	int i;

	for (i = 0; i < 16 && qtd->band_fd != -1; i++) {
		int avail = 0;

		if (ioctl(qtd->band_fd, FIONREAD, &avail) == -1 || avail == 0)
			return;
		band_read(qtd->loop, &qtd->band_io, EV_READ);
	}
}

int
band_open(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int fd, rcvbuf = 1 << 20;

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
	/* Room for a burst (CONFIRMs and close reports from every back
	 * while the loop was busy): a datagram dropped here is a replay
	 * sent again 200 ms later, or a hand-off taken back.  Forced past
	 * rmem_max with CAP_NET_ADMIN; without it, whatever the host
	 * allows. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
	    sizeof(rcvbuf)) == -1)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
		    sizeof(rcvbuf));
	qtd->band_fd = fd;
	ev_io_init(&qtd->band_io, band_read, fd, EV_READ);
	ev_io_start(qtd->loop, &qtd->band_io);
	return 0;
}
