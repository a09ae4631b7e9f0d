/*
 * tstamp: what the step timings' receive timestamps cost, on their own.
 *
 * The daemons ask for SO_TIMESTAMPNS on their listeners.  That turns on
 * the kernel's receive stamping for every packet the machine takes in
 * (one static key for all namespaces), not only for the listener's, and
 * the front then reads its request with recvmsg and a control buffer
 * instead of read.  This times 1-byte round trips over loopback TCP
 * (both ends on the caller's CPU, as in the benchmark's layout) in three
 * variants, so that bench/tstamp.sh can print the difference:
 *
 *   plain    no socket asks for stamps; read
 *   stamped  an idle socket asks for them (every packet is stamped); read
 *   recvmsg  the reading socket asks for them and reads with recvmsg,
 *            taking the SCM_TIMESTAMPNS message as the front does
 *
 * Usage: tstamp plain|stamped|recvmsg ROUNDTRIPS; prints us per round trip.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void
setint(int fd, int level, int opt)
{
	if (setsockopt(fd, level, opt, &(int){ 1 }, sizeof(int)) == -1)
		err(1, "setsockopt");
}

/* The peer: echo one byte for every read until the connection ends. */
static void
echo(const struct sockaddr_in *a)
{
	char b[64];
	int c;

	if ((c = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    connect(c, (const struct sockaddr *)a, sizeof(*a)) == -1)
		err(1, "connect");
	setint(c, IPPROTO_TCP, TCP_NODELAY);
	while (read(c, b, sizeof(b)) > 0)
		if (write(c, b, 1) != 1)
			err(1, "write");
	_exit(0);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	/* A control buffer aligned for the cmsghdr it will hold. */
	union {
		char buf[CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr align;
	} cb;
	char b[64];
	int l, s, idle, stamped, usemsg, n, got = 0;
	double t0;

	if (argc != 3 || (n = atoi(argv[2])) <= 0)
		errx(2, "usage: tstamp plain|stamped|recvmsg ROUNDTRIPS");
	usemsg = strcmp(argv[1], "recvmsg") == 0;
	stamped = usemsg || strcmp(argv[1], "stamped") == 0;
	if (!stamped && strcmp(argv[1], "plain") != 0)
		errx(2, "unknown variant %s", argv[1]);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((l = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    bind(l, (struct sockaddr *)&a, sizeof(a)) == -1 ||
	    listen(l, 1) == -1 ||
	    getsockname(l, (struct sockaddr *)&a, &al) == -1)
		err(1, "listener");
	/* Held open for the whole run: the static key stays on while any
	 * socket has the option set. */
	if ((idle = socket(AF_INET, SOCK_DGRAM, 0)) == -1)
		err(1, "socket");
	if (stamped && !usemsg)
		setint(idle, SOL_SOCKET, SO_TIMESTAMPNS);
	switch (fork()) {
	case -1:
		err(1, "fork");
	case 0:
		echo(&a);
	}
	if ((s = accept(l, NULL, NULL)) == -1)
		err(1, "accept");
	setint(s, IPPROTO_TCP, TCP_NODELAY);
	if (usemsg)
		setint(s, SOL_SOCKET, SO_TIMESTAMPNS);

	t0 = now();
	for (int i = 0; i < n; i++) {
		if (write(s, "x", 1) != 1)
			err(1, "write");
		if (usemsg) {
			struct iovec iov = { b, sizeof(b) };
			struct msghdr m = {
				.msg_iov = &iov, .msg_iovlen = 1,
				.msg_control = cb.buf, .msg_controllen = sizeof(cb.buf),
			};

			if (recvmsg(s, &m, 0) != 1)
				err(1, "recvmsg");
			/* Take the stamp as flow_read() does, so that the
			 * figure includes finding it. */
			for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL;
			    c = CMSG_NXTHDR(&m, c))
				got += c->cmsg_level == SOL_SOCKET &&
				    c->cmsg_type == SCM_TIMESTAMPNS;
		} else if (read(s, b, sizeof(b)) != 1)
			err(1, "read");
	}
	printf("%.3f\n", (now() - t0) / n * 1e6);
	if (usemsg && got != n)
		errx(1, "%d of %d reads carried a timestamp", got, n);
	close(s);
	wait(NULL);
	return 0;
}
