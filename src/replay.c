/*
 * The replay: the client's connection as the client would have opened it,
 * sent from the front to the back over a raw socket.  The only file that
 * uses libnet.  Every packet carries our marker as its first TCP option,
 * so the back's raw table can drop it before TCP sees it, the front's raw
 * table can leave it untracked, and the back's capture filter can match
 * exactly these packets and nothing a real client sends.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/tcp.h>

#include <libnet.h>

#include "qt.h"

/* Payload per data segment: with 20 + 20 + 4 bytes of headers and marker
 * this stays below any MTU of 1500 or more, so nothing fragments. */
#define REPLAY_SEG	1400
/* Request bytes in the SYN, after the header: its options take at most
 * 20 bytes more than the marker's 4, so the SYN stays within REPLAY_SEG. */
#define REPLAY_SYN_REQ	(REPLAY_SEG - HDR_LEN - 20)

struct replay {
	libnet_t	*r_net;
};

struct replay *
replay_open(char *err, size_t errlen)
{
	char ebuf[LIBNET_ERRBUF_SIZE];
	struct replay *r;

	if (!(r = calloc(1, sizeof(*r)))) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ebuf[0] = '\0';
	if (!(r->r_net = libnet_init(LIBNET_RAW4, NULL, ebuf))) {
		snprintf(err, errlen, "libnet_init: %s", ebuf);
		free(r);
		return NULL;
	}
	return r;
}

void
replay_close(struct replay *r)
{
	if (!r)
		return;
	libnet_destroy(r->r_net);
	free(r);
}

static size_t
opt_marker(uint8_t *o)
{
	o[0] = QT_MARK_KIND;
	o[1] = 4;
	o[2] = QT_MARK_EXID >> 8;
	o[3] = QT_MARK_EXID & 0xff;
	return 4;
}

/* The SYN's options: marker first, then what the client negotiated. */
static size_t
opt_syn(uint8_t *o, const struct repair_state *rs)
{
	size_t n = opt_marker(o);

	o[n++] = 2;	/* MSS */
	o[n++] = 4;
	o[n++] = rs->rs_mss >> 8;
	o[n++] = rs->rs_mss & 0xff;
	if (rs->rs_opts & TCPI_OPT_SACK) {
		o[n++] = 4;
		o[n++] = 2;
	}
	if (rs->rs_opts & TCPI_OPT_TIMESTAMPS) {
		o[n++] = 8;
		o[n++] = 10;
		memset(o + n, 0, 8);	/* the client's clock is not ours to
					 * know; the back restores the front's */
		n += 8;
	}
	if (rs->rs_opts & TCPI_OPT_WSCALE) {
		o[n++] = 1;	/* NOP */
		o[n++] = 3;
		o[n++] = 3;
		o[n++] = rs->rs_snd_wscale;
	}
	while (n % 4)
		o[n++] = 1;
	return n;
}

static int
replay_one(struct replay *r, const struct hdr_tuple *t, uint32_t seq,
    uint32_t ack, uint8_t flags, uint16_t win, const uint8_t *opt,
    size_t optlen, const uint8_t *data, size_t len)
{
	libnet_t *l = r->r_net;

	libnet_clear_packet(l);
	if (libnet_build_tcp_options(opt, (uint32_t)optlen, l, 0) == -1)
		goto fail;
	if (libnet_build_tcp(ntohs(t->t_cport), ntohs(t->t_bport), seq, ack,
	    flags, win, 0, 0, (uint16_t)(LIBNET_TCP_H + optlen + len), data,
	    (uint32_t)len, l, 0) == -1)
		goto fail;
	if (libnet_build_ipv4((uint16_t)(LIBNET_IPV4_H + LIBNET_TCP_H + optlen +
	    len), 0, (uint16_t)libnet_get_prand(LIBNET_PRu16), 0, 64,
	    IPPROTO_TCP, 0, t->t_cip, t->t_bip, NULL, 0, l, 0) == -1)
		goto fail;
	if (libnet_write(l) == -1)
		goto fail;
	return 0;
fail:
	errno = EIO;
	return -1;
}

/* The request bytes from OFF on, in marked ACK|PSH segments. */
static int
send_from(struct replay *r, const struct hdr_tuple *t, uint32_t isn,
    const struct repair_state *rs, const void *req, size_t reqlen,
    size_t off)
{
	uint8_t opt[4];
	size_t optlen = opt_marker(opt), n;

	for (; off < reqlen; off += n) {
		n = reqlen - off < REPLAY_SEG ? reqlen - off : REPLAY_SEG;
		if (replay_one(r, t, isn + 1 + (uint32_t)off, rs->rs_snd_seq,
		    TH_ACK | TH_PUSH, 65535, opt, optlen,
		    (const uint8_t *)req + off, n) == -1)
			return -1;
	}
	return 0;
}

/*
 * One packet for a request that fits: the SYN carries the hand-off header
 * and then the request's first bytes (as a Fast Open SYN carries data);
 * the rest, if any, follows in marked ACK|PSH segments, the first of which
 * stands for the handshake's ACK.  The back's kernel never sees any of
 * them (its raw table drops marked packets): they only carry the state to
 * its capture, and each packet sent costs a trip through the front's
 * output path, netfilter and the bridge.  Sending the SYN, a bare ACK and
 * the request separately took three.
 */
int
replay_send(struct replay *r, const struct hdr_tuple *t, uint32_t isn,
    const struct repair_state *rs, const uint8_t hdr[HDR_LEN],
    const void *req, size_t reqlen)
{
	uint8_t opt[40], syn[HDR_LEN + REPLAY_SYN_REQ];
	size_t optlen, k = reqlen < REPLAY_SYN_REQ ? reqlen : REPLAY_SYN_REQ;

	memcpy(syn, hdr, HDR_LEN);
	if (k)
		memcpy(syn + HDR_LEN, req, k);
	optlen = opt_syn(opt, rs);
	if (replay_one(r, t, isn, 0, TH_SYN, 65535, opt, optlen, syn,
	    HDR_LEN + k) == -1)
		return -1;
	return send_from(r, t, isn, rs, req, reqlen, k);
}

int
replay_send_data(struct replay *r, const struct hdr_tuple *t, uint32_t isn,
    const struct repair_state *rs, const void *req, size_t reqlen)
{
	return send_from(r, t, isn, rs, req, reqlen, 0);
}
