/*
 * The hand-off header: a fixed big-endian layout carried as the payload of
 * the replayed SYN.  Its MAC covers the header, the connection's 4-tuple
 * and the request bytes, so a back acts on nothing an outsider could have
 * chosen: not the address it will talk to, not the state, not the request.
 */
#include <string.h>

#include "qt.h"

static uint8_t *
put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
	return p + 4;
}

static uint8_t *
put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
	return p + 2;
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

#define HDR_BODY	(HDR_LEN - 32)	/* bytes before the MAC */
#define HDR_OPT_FIN	0x80

static void
tuple_bytes(const struct hdr_tuple *t, uint8_t out[12])
{
	memcpy(out, &t->t_cip, 4);
	memcpy(out + 4, &t->t_cport, 2);
	memcpy(out + 6, &t->t_bip, 4);
	memcpy(out + 10, &t->t_bport, 2);
}

void
hdr_encode(const struct hdr *h, const struct hdr_tuple *t, const void *req,
    const uint8_t key[QT_KEY_LEN], uint8_t out[HDR_LEN])
{
	const struct repair_state *rs = &h->h_rs;
	uint8_t tb[12], *p = out;

	memset(out, 0, HDR_LEN);
	p = put32(p, HDR_MAGIC);
	*p++ = HDR_VERSION;
	/* bit 7: the client's FIN was received (TCPI_OPT_* use bits 0-5) */
	*p++ = (uint8_t)(rs->rs_opts | (rs->rs_fin ? HDR_OPT_FIN : 0));
	p = put16(p, (uint16_t)h->h_origin);
	p = put16(p, (uint16_t)h->h_svc);
	p = put16(p, rs->rs_mss);
	memcpy(p, h->h_token, QT_TOKEN_LEN);
	p += QT_TOKEN_LEN;
	p = put32(p, (uint32_t)(h->h_time_ms >> 32));
	p = put32(p, (uint32_t)h->h_time_ms);
	p = put32(p, h->h_isn);
	p = put32(p, h->h_req_len);
	p = put32(p, rs->rs_snd_seq);
	p = put32(p, rs->rs_rcv_nxt);
	p = put32(p, rs->rs_ts);
	p = put32(p, rs->rs_snd_wl1);
	p = put32(p, rs->rs_snd_wnd);
	p = put32(p, rs->rs_max_window);
	p = put32(p, rs->rs_rcv_wnd);
	p = put32(p, rs->rs_rcv_wup);
	*p++ = rs->rs_snd_wscale;
	*p++ = rs->rs_rcv_wscale;
	/* In what were two reserved bytes, zero from an older front (and
	 * ignored, under the MAC all the same, by an older back). */
	p = put16(p, (uint16_t)(h->h_budget_ms > 65535 ? 65535 :
	    h->h_budget_ms));
	/* the rest of the body is reserved, zero */
	tuple_bytes(t, tb);
	auth_mac(key, out, HDR_BODY, tb, sizeof(tb), req, h->h_req_len,
	    out + HDR_BODY);
}

int
hdr_decode(const uint8_t *b, size_t len, struct hdr *h)
{
	struct repair_state *rs = &h->h_rs;

	if (len < HDR_LEN || get32(b) != HDR_MAGIC || b[4] != HDR_VERSION)
		return -1;
	memset(h, 0, sizeof(*h));
	rs->rs_opts = b[5] & (uint8_t)~HDR_OPT_FIN;
	rs->rs_fin = (b[5] & HDR_OPT_FIN) != 0;
	h->h_origin = get16(b + 6);
	h->h_svc = get16(b + 8);
	rs->rs_mss = get16(b + 10);
	memcpy(h->h_token, b + 12, QT_TOKEN_LEN);
	h->h_time_ms = (uint64_t)get32(b + 20) << 32 | get32(b + 24);
	h->h_isn = get32(b + 28);
	h->h_req_len = get32(b + 32);
	rs->rs_snd_seq = get32(b + 36);
	rs->rs_rcv_nxt = get32(b + 40);
	rs->rs_ts = get32(b + 44);
	rs->rs_snd_wl1 = get32(b + 48);
	rs->rs_snd_wnd = get32(b + 52);
	rs->rs_max_window = get32(b + 56);
	rs->rs_rcv_wnd = get32(b + 60);
	rs->rs_rcv_wup = get32(b + 64);
	rs->rs_snd_wscale = b[68];
	rs->rs_rcv_wscale = b[69];
	h->h_budget_ms = get16(b + 70);
	if (h->h_req_len > HDR_MAX_REQ || rs->rs_snd_wscale > 14 ||
	    rs->rs_rcv_wscale > 14)
		return -1;
	return 0;
}

int
hdr_verify(const uint8_t b[HDR_LEN], const struct hdr_tuple *t,
    const void *req, size_t reqlen, const uint8_t key[QT_KEY_LEN])
{
	uint8_t tb[12];

	tuple_bytes(t, tb);
	return auth_verify(key, b, HDR_BODY, tb, sizeof(tb), req, reqlen,
	    b + HDR_BODY);
}
