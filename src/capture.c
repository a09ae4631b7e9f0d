/*
 * Packet capture.  The only file that uses libpcap.  A capture hands each
 * matching TCP/IPv4 packet, parsed, to a callback.  It reads an interface
 * (the back's replays) or an NFLOG group, "nflog:N" (the front's watch of
 * its steered flows, which our own rules select).  Captured checksums are
 * never looked at: for packets sent by the local kernel over veth they are
 * still pending offload and lie.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/if_packet.h>

#include <pcap/pcap.h>

#include "qt.h"

struct capture {
	pcap_t	*c_pcap;
	int	 c_dlt;
	unsigned	 c_tsmul;	/* ts.tv_usec to ns */
	cap_cb	 c_cb;
	void	*c_arg;
};

struct capture *
capture_open(const char *iface, const char *filter, cap_cb cb, void *arg,
    char *err, size_t errlen)
{
	char ebuf[PCAP_ERRBUF_SIZE];
	struct bpf_program prog;
	struct capture *c;

	if (!(c = calloc(1, sizeof(*c)))) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->c_cb = cb;
	c->c_arg = arg;
	ebuf[0] = '\0';
	if (!(c->c_pcap = pcap_create(iface, ebuf))) {
		snprintf(err, errlen, "pcap_create %s: %s", iface, ebuf);
		goto fail;
	}
	/* Nanosecond timestamps where the source has them (the step
	 * timings); an NFLOG source may not, and that is no error. */
	(void)pcap_set_tstamp_precision(c->c_pcap,
	    PCAP_TSTAMP_PRECISION_NANO);
	/* GRO may merge consecutive segments into one longer than the MTU:
	 * capture whole packets.  Immediate mode: a hand-off waits on us. */
	if (pcap_set_snaplen(c->c_pcap, 65535) != 0 ||
	    pcap_set_immediate_mode(c->c_pcap, 1) != 0 ||
	    pcap_set_buffer_size(c->c_pcap, 4 << 20) != 0 ||
	    pcap_activate(c->c_pcap) < 0) {
		snprintf(err, errlen, "pcap on %s: %s", iface,
		    pcap_geterr(c->c_pcap));
		goto fail;
	}
	/*
	 * Incoming packets only.  With a packet socket bound to the
	 * interface, the kernel clones every packet the node sends before
	 * the filter can drop it: each response segment on a back, each
	 * forwarded client ACK on a front.  libpcap's own direction setting
	 * filters in user space, after the clone.  A kernel without the
	 * option (before 4.20) only loses the saving.
	 */
	(void)setsockopt(pcap_get_selectable_fd(c->c_pcap), SOL_PACKET,
	    PACKET_IGNORE_OUTGOING, &(int){ 1 }, sizeof(int));
	if (pcap_setnonblock(c->c_pcap, 1, ebuf) == -1) {
		snprintf(err, errlen, "pcap_setnonblock: %s", ebuf);
		goto fail;
	}
	c->c_dlt = pcap_datalink(c->c_pcap);
	c->c_tsmul = pcap_get_tstamp_precision(c->c_pcap) ==
	    PCAP_TSTAMP_PRECISION_NANO ? 1 : 1000;
	if (pcap_compile(c->c_pcap, &prog, filter, 1,
	    PCAP_NETMASK_UNKNOWN) == -1) {
		snprintf(err, errlen, "capture filter \"%s\": %s", filter,
		    pcap_geterr(c->c_pcap));
		goto fail;
	}
	if (pcap_setfilter(c->c_pcap, &prog) == -1) {
		snprintf(err, errlen, "pcap_setfilter: %s",
		    pcap_geterr(c->c_pcap));
		pcap_freecode(&prog);
		goto fail;
	}
	pcap_freecode(&prog);
	return c;
fail:
	if (c->c_pcap)
		pcap_close(c->c_pcap);
	free(c);
	return NULL;
}

int
capture_fd(struct capture *c)
{
	return pcap_get_selectable_fd(c->c_pcap);
}

/*
 * An NFLOG record: a 4-byte header (family, version, resource id), then
 * TLVs of 4-byte aligned length, length and type in host order (the type
 * may carry netlink's flag bits).  The packet, from its IP header, is the
 * payload TLV's value; its offset, or -1.
 */
#define NFULA_PAYLOAD_TYPE	9

static int
nflog_payload(const uint8_t *p, size_t len)
{
	size_t off = 4;
	uint16_t tl, tt;

	if (len < 4 || p[0] != 2 /* AF_INET */)
		return -1;
	while (off + 4 <= len) {
		memcpy(&tl, p + off, 2);
		memcpy(&tt, p + off + 2, 2);
		if (tl < 4 || off + tl > len)
			return -1;
		if ((tt & 0x3fff) == NFULA_PAYLOAD_TYPE)
			return (int)off + 4;
		off += ((size_t)tl + 3) & ~(size_t)3;
	}
	return -1;
}

/* Offset of the IPv4 header in a frame, or -1. */
static int
l3_offset(int dlt, const uint8_t *p, size_t len)
{
	size_t off;
	uint16_t et;

	switch (dlt) {
	case DLT_EN10MB:
		off = 12;
		for (;;) {
			if (len < off + 2)
				return -1;
			et = (uint16_t)(p[off] << 8 | p[off + 1]);
			if (et != 0x8100 && et != 0x88a8)
				break;
			off += 4;
		}
		return et == 0x0800 ? (int)off + 2 : -1;
	case DLT_LINUX_SLL:
		if (len < 16 || p[14] != 0x08 || p[15] != 0x00)
			return -1;
		return 16;
	case DLT_LINUX_SLL2:
		if (len < 20 || p[0] != 0x08 || p[1] != 0x00)
			return -1;
		return 20;
	case DLT_RAW:
		return 0;
	case DLT_NFLOG:
		return nflog_payload(p, len);
	default:
		return -1;
	}
}

static void
capture_pkt(u_char *arg, const struct pcap_pkthdr *h, const u_char *p)
{
	struct capture *c = (struct capture *)arg;
	struct cap_pkt pkt;
	size_t len = h->caplen, ihl, thl, totlen;
	int off;

	if ((off = l3_offset(c->c_dlt, p, len)) < 0)
		return;
	p += off;
	len -= (size_t)off;
	if (len < 20 || (p[0] >> 4) != 4 || p[9] != IPPROTO_TCP)
		return;
	ihl = (size_t)(p[0] & 0x0f) * 4;
	totlen = (size_t)(p[2] << 8 | p[3]);
	/* A GRO-merged packet may carry a total length that no longer
	 * covers it; trust the captured length when it is shorter only. */
	if (totlen >= ihl && totlen < len)
		len = totlen;
	if ((p[6] & 0x3f) != 0 || p[7] != 0)
		return;		/* fragments: replays never fragment */
	if (ihl < 20 || len < ihl + 20)
		return;
	memcpy(&pkt.p_src, p + 12, 4);
	memcpy(&pkt.p_dst, p + 16, 4);
	p += ihl;
	len -= ihl;
	thl = (size_t)(p[12] >> 4) * 4;
	if (thl < 20 || len < thl)
		return;
	pkt.p_sport = (uint16_t)(p[0] << 8 | p[1]);
	pkt.p_dport = (uint16_t)(p[2] << 8 | p[3]);
	pkt.p_seq = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 |
	    (uint32_t)p[6] << 8 | p[7];
	pkt.p_ack = (uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 |
	    (uint32_t)p[10] << 8 | p[11];
	pkt.p_flags = p[13];
	pkt.p_data = p + thl;
	pkt.p_len = len - thl;
	/* tv_usec holds nanoseconds when the nano precision took. */
	pkt.p_ts = (uint64_t)h->ts.tv_sec * 1000000000u +
	    (uint64_t)h->ts.tv_usec * c->c_tsmul;
	c->c_cb(&pkt, c->c_arg);
}

void
capture_dispatch(struct capture *c)
{
	/* Bounded so one busy capture cannot starve the loop. */
	(void)pcap_dispatch(c->c_pcap, 256, capture_pkt, (u_char *)c);
}

void
capture_close(struct capture *c)
{
	if (!c)
		return;
	pcap_close(c->c_pcap);
	free(c);
}
