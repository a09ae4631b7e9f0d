/*
 * TCP_REPAIR: freezing an accepted connection on the front and rebuilding
 * it, in exactly that state, on the back.  The order of every call here is
 * the one measured in shared/design/handoff-field-notes.md; each step
 * names the pitfall it avoids.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/sockios.h>

#include "qt.h"

#ifndef TCPOPT_MAXSEG
#define TCPOPT_MAXSEG		2
#define TCPOPT_WINDOW		3
#define TCPOPT_SACK_PERMITTED	4
#define TCPOPT_TIMESTAMP	8
#endif

static int
setint(int fd, int opt, int val)
{
	return setsockopt(fd, IPPROTO_TCP, opt, &val, sizeof(val));
}

static int
queue_seq(int fd, int queue, uint32_t *seq)
{
	socklen_t len = sizeof(*seq);

	if (setint(fd, TCP_REPAIR_QUEUE, queue) == -1)
		return -1;
	return getsockopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, seq, &len);
}

int
repair_freeze(int fd, struct repair_state *rs, char *extra, size_t extra_max,
    size_t *extra_len)
{
	struct tcp_repair_window w;
	struct tcp_info ti;
	socklen_t len;
	int v, inq;

	memset(rs, 0, sizeof(*rs));
	*extra_len = 0;
	if (setint(fd, TCP_REPAIR, TCP_REPAIR_ON) == -1)
		return -1;
	len = sizeof(ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == -1)
		return -1;
	/* The front never writes before a hand-off: a segment in flight
	 * (our SYN-ACK not yet acknowledged) means state we cannot move. */
	if (ti.tcpi_unacked != 0) {
		errno = EBUSY;
		return -1;
	}
	if (queue_seq(fd, TCP_SEND_QUEUE, &rs->rs_snd_seq) == -1 ||
	    queue_seq(fd, TCP_RECV_QUEUE, &rs->rs_rcv_nxt) == -1)
		return -1;
	/* Bytes that arrived after our last read are part of the request
	 * stream: take them along (the receive queue is still selected). */
	if (ioctl(fd, SIOCINQ, &inq) == -1)
		return -1;
	if (inq > 0) {
		ssize_t n;

		if ((size_t)inq > extra_max) {
			errno = EMSGSIZE;
			return -1;
		}
		n = recv(fd, extra, (size_t)inq, MSG_PEEK | MSG_DONTWAIT);
		if (n != inq) {
			errno = EIO;
			return -1;
		}
		*extra_len = (size_t)n;
	}
	/* The receive queue stays selected: nothing below reads a queue,
	 * and leaving repair mode (thaw) or entering it again (close)
	 * forgets the choice. */
	len = sizeof(v);
	if (getsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &v, &len) == -1)
		return -1;
	rs->rs_mss = (uint16_t)v;	/* in repair mode: the MSS clamp */
	rs->rs_opts = ti.tcpi_options &
	    (TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE);
	/* A client that half-closed right after its request: its FIN is
	 * counted in rcv_nxt, and the back must know it will not come. */
	rs->rs_fin = ti.tcpi_state == TCP_CLOSE_WAIT;
	rs->rs_snd_wscale = ti.tcpi_snd_wscale;
	rs->rs_rcv_wscale = ti.tcpi_rcv_wscale;
	len = sizeof(v);
	if (getsockopt(fd, IPPROTO_TCP, TCP_TIMESTAMP, &v, &len) == -1)
		return -1;
	rs->rs_ts = (uint32_t)v;
	len = sizeof(w);
	if (getsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &len) == -1)
		return -1;
	rs->rs_snd_wl1 = w.snd_wl1;
	rs->rs_snd_wnd = w.snd_wnd;
	rs->rs_max_window = w.max_window;
	rs->rs_rcv_wnd = w.rcv_wnd;
	rs->rs_rcv_wup = w.rcv_wup;
	return 0;
}

int
repair_thaw(int fd)
{
	return setint(fd, TCP_REPAIR, TCP_REPAIR_OFF);
}

/* Only for a socket repair_freeze() froze and nothing thawed since: it is
 * in repair mode, and a close() alone puts nothing on the wire (the
 * front's last step of every hand-off, a system call fewer). */
void
repair_drop(int fd)
{
	(void)close(fd);
}

void
repair_close(int fd)
{
	/* Still in repair mode: close() puts nothing on the wire. */
	(void)setint(fd, TCP_REPAIR, TCP_REPAIR_ON);
	(void)close(fd);
}

/*
 * The filter that drops every segment a socket being rebuilt receives
 * (see repair_restore), as an eBPF program loaded once: a classic filter
 * is compiled (JIT) anew for each socket it is attached to, 9 us of CPU
 * per hand-off on the back against 0.6 us for attaching a loaded
 * program.  Loading needs CAP_BPF or CAP_SYS_ADMIN, so it is done at
 * start, before the capabilities go; where it fails (an older kernel,
 * BPF disabled), the classic filter serves.
 */
static int	drop_prog = -1;

void
repair_init(void)
{
	struct bpf_insn prog[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0,
		    .imm = 0 },		/* r0 = 0: keep no byte */
		{ .code = BPF_JMP | BPF_EXIT },
	};
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
	a.insn_cnt = sizeof(prog) / sizeof(prog[0]);
	a.insns = (uint64_t)(uintptr_t)prog;
	a.license = (uint64_t)(uintptr_t)"GPL";
	drop_prog = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof(a));
	if (drop_prog == -1)
		log_info("no eBPF socket filter (%m): rebuilds use a classic "
		    "one, compiled for each socket");
}

/* Attaches the drop-all filter to fd. */
static int
attach_drop(int fd)
{
	static struct sock_filter drop_all[] = {
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	static const struct sock_fprog drop = {
		.len = 1,
		.filter = drop_all,
	};

	if (drop_prog != -1)
		return setsockopt(fd, SOL_SOCKET, SO_ATTACH_BPF, &drop_prog,
		    sizeof(drop_prog));
	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &drop,
	    sizeof(drop));
}

/*
 * The first steps of a rebuild, which depend on no flow: back.c keeps a
 * few such sockets made while it waits, four system calls off the
 * path from the replay to the client's first byte.
 */
int
repair_socket(void)
{
	int fd, saved;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	/* SO_REUSEADDR before TCP_REPAIR: the other order lets the later
	 * SO_REUSEADDR overwrite repair's forced reuse, and bind() fails
	 * with EADDRINUSE while another socket holds the port.  The filter
	 * drops every segment: see repair_restore.  No Nagle, as on the
	 * front's listener (front.c, listen_tune): a relay's socket. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 },
	    sizeof(int)) == -1 ||
	    setint(fd, TCP_NODELAY, 1) == -1 ||
	    setint(fd, TCP_REPAIR, TCP_REPAIR_ON) == -1 ||
	    attach_drop(fd) == -1) {
		saved = errno;
		(void)close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/*
 * Rebuilds the connection on fd, a socket from repair_socket() (-1: one
 * is made here).  Returns fd, or -1 with the socket closed.
 */
int
repair_restore(int fd, const struct sockaddr_in *local,
    const struct sockaddr_in *peer, const struct repair_state *rs)
{
	struct tcp_repair_opt opts[4];
	struct tcp_repair_window w;
	int n = 0, saved;

	if (fd == -1 && (fd = repair_socket()) == -1)
		return -1;
	if (bind(fd, (const struct sockaddr *)local, sizeof(*local)) == -1)
		goto fail;
	/* The queue selected last stays so: it only matters to data sent
	 * or read in repair mode, and we leave repair mode with none. */
	if (setint(fd, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) == -1 ||
	    setint(fd, TCP_QUEUE_SEQ, (int)rs->rs_snd_seq) == -1 ||
	    setint(fd, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) == -1 ||
	    setint(fd, TCP_QUEUE_SEQ, (int)rs->rs_rcv_nxt) == -1)
		goto fail;
	/* The MSS as a user limit, before connect(): connect() sizes the
	 * segments from the MSS clamp as it is then, and nothing sizes them
	 * again after TCP_REPAIR_OPTIONS sets it.  Without this the clamp
	 * at connect() is the 536-byte default, and a rebuilt connection
	 * sent 524-byte segments: a short response whole, a long one for
	 * its first 100 KB or so, until something made the kernel size
	 * them again (seen: GSO packets cut at multiples of 524).  The
	 * kernel takes a limit of 88 to 32767 bytes only; a client beyond
	 * (one on a loopback-sized path says 65483) keeps the default, as
	 * before, rather than lose its hand-off. */
	if (rs->rs_mss >= 88 && rs->rs_mss <= 32767 &&
	    setint(fd, TCP_MAXSEG, rs->rs_mss) == -1)
		goto fail;
	/* In repair mode connect() sends nothing: the socket is simply
	 * ESTABLISHED, and from here in the table, where the client's
	 * packets (steered to us since the front froze) find it.  A repair
	 * socket processes them: a FIN in CLOSE_WAIT, and the options
	 * below fail with EPERM (3 of 30 hand-offs whose client blasts its
	 * FIN, 1 in ~100k in a wrk run), the hand-off refused and the FIN
	 * acknowledged by a socket about to vanish.  The filter attached in
	 * repair_socket() drops them until the socket is whole; the client
	 * sends them again, as it does those that came before the socket. */
	if (connect(fd, (const struct sockaddr *)peer, sizeof(*peer)) == -1)
		goto fail;
	opts[n].opt_code = TCPOPT_MAXSEG;
	opts[n++].opt_val = rs->rs_mss;
	if (rs->rs_opts & TCPI_OPT_WSCALE) {
		opts[n].opt_code = TCPOPT_WINDOW;
		opts[n++].opt_val = rs->rs_snd_wscale |
		    (uint32_t)rs->rs_rcv_wscale << 16;
	}
	if (rs->rs_opts & TCPI_OPT_SACK) {
		opts[n].opt_code = TCPOPT_SACK_PERMITTED;
		opts[n++].opt_val = 0;
	}
	if (rs->rs_opts & TCPI_OPT_TIMESTAMPS) {
		opts[n].opt_code = TCPOPT_TIMESTAMP;
		opts[n++].opt_val = 0;
	}
	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_OPTIONS, opts,
	    (socklen_t)(n * sizeof(opts[0]))) == -1)
		goto fail;
	/* Without the front's timestamp clock the client drops our
	 * segments as PAWS violations (seen in 13 of 20 runs).  Two ticks
	 * ahead: since Linux 6.7 the value's low bit is a flag (1: the
	 * microsecond clock), cleared on read for a millisecond clock, so
	 * the read can be a tick behind the front's last segment and the
	 * first segments went out one tick behind it (seen; PAWS tolerates
	 * exactly one).  Adding 2 keeps the flag bit as read. */
	if ((rs->rs_opts & TCPI_OPT_TIMESTAMPS) &&
	    setint(fd, TCP_TIMESTAMP, (int)(rs->rs_ts + 2)) == -1)
		goto fail;
	w.snd_wl1 = rs->rs_snd_wl1;
	w.snd_wnd = rs->rs_snd_wnd;
	w.max_window = rs->rs_max_window;
	w.rcv_wnd = rs->rs_rcv_wnd;
	w.rcv_wup = rs->rs_rcv_wup;
	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w,
	    sizeof(w)) == -1)
		goto fail;
	/* Without a window probe: TCP_REPAIR_OFF sends one (a bare ACK at
	 * snd_una - 1), which only makes the client answer with an ACK that
	 * then crosses the front, two packets per hand-off for nothing: our
	 * response follows at once and tells the client all it needs. */
	if (setint(fd, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &(int){ 0 },
	    sizeof(int)) == -1)
		goto fail;
	return fd;
fail:
	saved = errno;
	repair_close(fd);
	errno = saved;
	return -1;
}

int
tcp_state(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == -1)
		return -1;
	return ti.tcpi_state;
}

const char *
tcp_state_name(int st)
{
	static const char *const names[] = {
		[TCP_ESTABLISHED] = "ESTABLISHED", [TCP_SYN_SENT] = "SYN-SENT",
		[TCP_SYN_RECV] = "SYN-RECV", [TCP_FIN_WAIT1] = "FIN-WAIT-1",
		[TCP_FIN_WAIT2] = "FIN-WAIT-2", [TCP_TIME_WAIT] = "TIME-WAIT",
		[TCP_CLOSE] = "CLOSED", [TCP_CLOSE_WAIT] = "CLOSE-WAIT",
		[TCP_LAST_ACK] = "LAST-ACK", [TCP_LISTEN] = "LISTEN",
		[TCP_CLOSING] = "CLOSING",
	};

	if (st < 0 || (size_t)st >= sizeof(names) / sizeof(names[0]) ||
	    !names[st])
		return "unknown";
	return names[st];
}

/* The kernel's tcp_info goes on past glibc's (which ends at
 * tcpi_total_retrans) with fields that have not moved since 4.1. */
struct tcp_info_more {
	struct tcp_info	ti;
	uint64_t	pacing_rate, max_pacing_rate;
	uint64_t	bytes_acked, bytes_received;
};
_Static_assert(offsetof(struct tcp_info_more, bytes_acked) == 120,
    "struct tcp_info layout");

int
tcp_heard(int fd)
{
	struct tcp_info_more t;
	socklen_t len = sizeof(t);

	memset(&t, 0, sizeof(t));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &t, &len) == -1)
		return -1;
	if (len < sizeof(t))
		return 1;	/* cannot tell: never treat it as unheard */
	/* Counted from the rebuild on: the front's part is not in them. */
	return t.bytes_acked > 0 || t.bytes_received > 0;
}
