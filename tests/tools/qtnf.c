/*
 * qtnf: drives the nf_set.c and nf_ct.c wrappers from the command line so
 * integration tests can compare them with ipset(8) and conntrack(8).
 *
 *   qtnf set-create NAME [MAXELEM]
 *   qtnf set-destroy NAME
 *   qtnf set-flush NAME
 *   qtnf set-add|set-del|set-test NAME CIP CPORT DIP
 *   qtnf set-list NAME          one "CIP,CPORT,DIP" a line
 *   qtnf set-names PREFIX       one name a line
 *   qtnf set-bench NAME N       median microseconds per add and per del
 *   qtnf ct-del SRC SPORT DST DPORT
 *   qtnf ct-del-many SRC SPORT DST DPORT [SRC SPORT DST DPORT...]
 *                               the same, all in one batch
 *   qtnf ct-list DST DPORT      "SRC:SPORT DST:DPORT -> RSRC:RSPORT"
 *   qtnf ct-bench SRC SPORT DST DPORT N   median microseconds per delete
 *   qtnf ct-create-dnat CIP CPORT FIP FPORT BIP BPORT TIMEOUT
 *                               a steered entry, DNATed to BIP:BPORT
 *   qtnf ct-bench-create CIP FIP FPORT BIP BPORT N
 *                               creates N steered entries (clients CIP+k,
 *                               ports 10000..59999), then deletes them:
 *                               median and 99th percentile microseconds
 *
 * Exit 0 on success (set-test: 0 present, 3 absent), 1 on failure, 2 on
 * usage errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nf.h"

static void
usage(void)
{
	fprintf(stderr,
	    "usage: qtnf set-create NAME [MAXELEM] | set-destroy NAME |\n"
	    "       set-flush NAME | set-add|set-del|set-test NAME CIP CPORT DIP |\n"
	    "       set-del-queue NAME CIP CPORT DIP [NAME CIP CPORT DIP...] |\n"
	    "       set-list NAME | set-names PREFIX | set-bench NAME N |\n"
	    "       ct-del SRC SPORT DST DPORT | ct-list DST DPORT |\n"
	    "       ct-del-many SRC SPORT DST DPORT [SRC SPORT DST DPORT...] |\n"
	    "       ct-bench SRC SPORT DST DPORT N |\n"
	    "       ct-create-dnat CIP CPORT FIP FPORT BIP BPORT TIMEOUT |\n"
	    "       ct-bench-create CIP FIP FPORT BIP BPORT N\n");
	exit(2);
}

static uint32_t
addr(const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1) {
		fprintf(stderr, "qtnf: bad address \"%s\"\n", s);
		exit(2);
	}
	return a.s_addr;
}

static unsigned long
number(const char *s, unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (s[0] == '\0' || *end != '\0' || errno != 0 || v > max) {
		fprintf(stderr, "qtnf: bad number \"%s\"\n", s);
		exit(2);
	}
	return v;
}

static const char *
ntoa(uint32_t a, char *buf)
{
	struct in_addr in = { .s_addr = a };

	return inet_ntop(AF_INET, &in, buf, INET_ADDRSTRLEN);
}

static double
now_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The p-th percentile of v, which median() has already sorted. */
static double
percentile(const double *v, size_t n, unsigned int p)
{
	return v[(n - 1) * p / 100];
}

static void
print_entry(uint32_t cip, uint16_t cport, uint32_t dip, void *arg)
{
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];

	(void)arg;
	printf("%s,%u,%s\n", ntoa(cip, a), cport, ntoa(dip, b));
}

static void
print_name(const char *name, void *arg)
{
	(void)arg;
	printf("%s\n", name);
}

static void
print_ct(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport,
    uint32_t rsrc, uint16_t rsport, void *arg)
{
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN], c[INET_ADDRSTRLEN];

	(void)arg;
	printf("%s:%u %s:%u -> %s:%u\n", ntoa(src, a), sport, ntoa(dst, b),
	    dport, ntoa(rsrc, c), rsport);
}

static int
set_fail(struct qset *qs, const char *what)
{
	fprintf(stderr, "qtnf: %s: %s (%s)\n", what, strerror(errno),
	    qset_strerror(qs));
	return 1;
}

/*
 * Adds N entries one at a time, then deletes them, timing each call.
 * Entries are 198.18.0.10+i/256, tcp:(10000+i), 198.18.0.1.
 */
static int
set_bench(struct qset *qs, const char *name, unsigned long n)
{
	double *add, *del, *del16, t;
	unsigned long i, j, k;
	uint32_t dip = addr("198.18.0.1");
	uint32_t cip, failed;
	int ret = 1;

	add = calloc(n, sizeof(*add));
	del = calloc(n, sizeof(*del));
	del16 = calloc(n, sizeof(*del16));
	if (add == NULL || del == NULL || del16 == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		cip = htonl(ntohl(addr("198.18.0.10")) + (uint32_t)(i / 50000));
		t = now_us();
		if (qset_add(qs, name, cip, (uint16_t)(10000 + i % 50000),
		    dip) < 0) {
			ret = set_fail(qs, "add");
			goto out;
		}
		add[i] = now_us() - t;
	}
	for (i = 0; i < n; i++) {
		cip = htonl(ntohl(addr("198.18.0.10")) + (uint32_t)(i / 50000));
		t = now_us();
		if (qset_del(qs, name, cip, (uint16_t)(10000 + i % 50000),
		    dip) < 0) {
			ret = set_fail(qs, "del");
			goto out;
		}
		del[i] = now_us() - t;
	}
	/* The same deletes queued, 16 to a message (as a back's batch of
	 * close reports ends flows together): the time per delete. */
	for (i = 0; i < n; i++) {
		cip = htonl(ntohl(addr("198.18.0.10")) + (uint32_t)(i / 50000));
		if (qset_add(qs, name, cip, (uint16_t)(10000 + i % 50000),
		    dip) < 0) {
			ret = set_fail(qs, "add");
			goto out;
		}
	}
	for (i = 0; i < n; i += k) {
		k = n - i < 16 ? n - i : 16;
		t = now_us();
		for (j = i; j < i + k; j++) {
			cip = htonl(ntohl(addr("198.18.0.10")) +
			    (uint32_t)(j / 50000));
			if (qset_del_queue(qs, name, cip,
			    (uint16_t)(10000 + j % 50000), dip) < 0) {
				ret = set_fail(qs, "del-queue");
				goto out;
			}
		}
		if (qset_commit(qs, &failed) < 0) {
			ret = set_fail(qs, "commit");
			goto out;
		}
		t = (now_us() - t) / (double)k;
		for (j = i; j < i + k; j++)
			del16[j] = t;
	}
	printf("add_us %.2f del_us %.2f del16_us %.2f n %lu\n",
	    median(add, n), median(del, n), median(del16, n), n);
	ret = 0;
out:
	free(add);
	free(del);
	free(del16);
	return ret;
}

static int
set_main(int argc, char **argv)
{
	struct qset *qs;
	const char *cmd = argv[1];
	int r, ret = 0;

	if (argc < 3)
		usage();
	if ((qs = qset_open()) == NULL) {
		fprintf(stderr, "qtnf: qset_open: %s\n", strerror(errno));
		return 1;
	}
	if (strcmp(cmd, "set-create") == 0 && (argc == 3 || argc == 4)) {
		if (qset_create(qs, argv[2], argc == 4 ?
		    (uint32_t)number(argv[3], UINT32_MAX) : 0) < 0)
			ret = set_fail(qs, "create");
	} else if (strcmp(cmd, "set-destroy") == 0 && argc == 3) {
		if (qset_destroy(qs, argv[2]) < 0)
			ret = set_fail(qs, "destroy");
	} else if (strcmp(cmd, "set-flush") == 0 && argc == 3) {
		if (qset_flush(qs, argv[2]) < 0)
			ret = set_fail(qs, "flush");
	} else if (strcmp(cmd, "set-add") == 0 && argc == 6) {
		if (qset_add(qs, argv[2], addr(argv[3]),
		    (uint16_t)number(argv[4], UINT16_MAX), addr(argv[5])) < 0)
			ret = set_fail(qs, "add");
	} else if (strcmp(cmd, "set-del") == 0 && argc == 6) {
		if (qset_del(qs, argv[2], addr(argv[3]),
		    (uint16_t)number(argv[4], UINT16_MAX), addr(argv[5])) < 0)
			ret = set_fail(qs, "del");
	} else if (strcmp(cmd, "set-del-queue") == 0 && argc >= 6 &&
	    (argc - 2) % 4 == 0) {
		uint32_t failed;
		int i;

		for (i = 2; i < argc && ret == 0; i += 4)
			if (qset_del_queue(qs, argv[i], addr(argv[i + 1]),
			    (uint16_t)number(argv[i + 2], UINT16_MAX),
			    addr(argv[i + 3])) < 0)
				ret = set_fail(qs, "del-queue");
		if (ret == 0 && qset_commit(qs, &failed) < 0) {
			fprintf(stderr, "qtnf: %u queued deletes failed\n",
			    failed);
			ret = set_fail(qs, "commit");
		}
	} else if (strcmp(cmd, "set-test") == 0 && argc == 6) {
		r = qset_test(qs, argv[2], addr(argv[3]),
		    (uint16_t)number(argv[4], UINT16_MAX), addr(argv[5]));
		if (r < 0)
			ret = set_fail(qs, "test");
		else
			ret = r ? 0 : 3;
	} else if (strcmp(cmd, "set-list") == 0 && argc == 3) {
		if (qset_list(qs, argv[2], print_entry, NULL) < 0)
			ret = set_fail(qs, "list");
	} else if (strcmp(cmd, "set-names") == 0 && argc == 3) {
		if (qset_names(qs, argv[2], print_name, NULL) < 0)
			ret = set_fail(qs, "names");
	} else if (strcmp(cmd, "set-bench") == 0 && argc == 4) {
		ret = set_bench(qs, argv[2], number(argv[3], 10000000));
	} else
		usage();
	qset_close(qs);
	return ret;
}

/*
 * Creates n steered entries one at a time, then deletes them, timing each
 * call.  Entry i: client cip+i/50000, port 10000+i%50000.  On a failed
 * create the entries made so far are deleted before returning.
 */
static int
ct_bench_create(struct qct *qc, uint32_t cip, uint32_t fip, uint16_t fport,
    uint32_t bip, uint16_t bport, unsigned long n)
{
	double *cre, *del, t;
	unsigned long i, made = 0;
	uint32_t c;
	int ret = 1;

	cre = calloc(n ? n : 1, sizeof(*cre));
	del = calloc(n ? n : 1, sizeof(*del));
	if (cre == NULL || del == NULL)
		goto out;
	for (i = 0; i < n; i++, made++) {
		c = htonl(ntohl(cip) + (uint32_t)(i / 50000));
		t = now_us();
		if (qct_create_dnat(qc, c, (uint16_t)(10000 + i % 50000), fip,
		    fport, bip, bport, 600) < 0) {
			fprintf(stderr, "qtnf: ct-bench-create: create %lu: "
			    "%s\n", i, strerror(errno));
			break;
		}
		cre[i] = now_us() - t;
	}
	for (i = 0; i < made; i++) {
		c = htonl(ntohl(cip) + (uint32_t)(i / 50000));
		t = now_us();
		if (qct_delete(qc, c, (uint16_t)(10000 + i % 50000), fip,
		    fport) < 0) {
			fprintf(stderr, "qtnf: ct-bench-create: delete %lu: "
			    "%s\n", i, strerror(errno));
			goto out;
		}
		del[i] = now_us() - t;
	}
	if (made < n || n == 0)
		goto out;
	/* median() sorts: take each percentile after it, not in printf's
	 * unspecified order of evaluation. */
	t = median(cre, n);
	printf("create_us %.2f create_p99_us %.2f ", t, percentile(cre, n, 99));
	t = median(del, n);
	printf("del_us %.2f del_p99_us %.2f n %lu\n", t,
	    percentile(del, n, 99), n);
	ret = 0;
out:
	free(cre);
	free(del);
	return ret;
}

static int
ct_main(int argc, char **argv)
{
	struct qct *qc;
	const char *cmd = argv[1];
	unsigned long i, n;
	double *v, t;
	int ret = 0;

	if ((qc = qct_open()) == NULL) {
		fprintf(stderr, "qtnf: qct_open: %s\n", strerror(errno));
		return 1;
	}
	if (strcmp(cmd, "ct-del") == 0 && argc == 6) {
		if (qct_delete(qc, addr(argv[2]),
		    (uint16_t)number(argv[3], UINT16_MAX), addr(argv[4]),
		    (uint16_t)number(argv[5], UINT16_MAX)) < 0) {
			fprintf(stderr, "qtnf: ct-del: %s\n", strerror(errno));
			ret = 1;
		}
	} else if (strcmp(cmd, "ct-del-many") == 0 && argc >= 6 &&
	    (argc - 2) % 4 == 0) {
		struct qct_tuple *t;

		n = (unsigned long)(argc - 2) / 4;
		if ((t = calloc(n, sizeof(*t))) == NULL) {
			ret = 1;
			goto out;
		}
		for (i = 0; i < n; i++) {
			t[i].t_src = addr(argv[2 + 4 * i]);
			t[i].t_sport = (uint16_t)number(argv[3 + 4 * i],
			    UINT16_MAX);
			t[i].t_dst = addr(argv[4 + 4 * i]);
			t[i].t_dport = (uint16_t)number(argv[5 + 4 * i],
			    UINT16_MAX);
		}
		if (qct_delete_many(qc, t, n) < 0) {
			fprintf(stderr, "qtnf: ct-del-many: %s\n",
			    strerror(errno));
			ret = 1;
		}
		free(t);
	} else if (strcmp(cmd, "ct-list") == 0 && argc == 4) {
		if (qct_list(qc, addr(argv[2]),
		    (uint16_t)number(argv[3], UINT16_MAX), print_ct, NULL) < 0) {
			fprintf(stderr, "qtnf: ct-list: %s\n", strerror(errno));
			ret = 1;
		}
	} else if (strcmp(cmd, "ct-bench") == 0 && argc == 7) {
		n = number(argv[6], 10000000);
		if ((v = calloc(n ? n : 1, sizeof(*v))) == NULL) {
			ret = 1;
			goto out;
		}
		for (i = 0; i < n && ret == 0; i++) {
			t = now_us();
			if (qct_delete(qc, addr(argv[2]),
			    (uint16_t)number(argv[3], UINT16_MAX),
			    addr(argv[4]),
			    (uint16_t)number(argv[5], UINT16_MAX)) < 0) {
				fprintf(stderr, "qtnf: ct-bench: %s\n",
				    strerror(errno));
				ret = 1;
			}
			v[i] = now_us() - t;
		}
		if (ret == 0 && n > 0)
			printf("del_us %.2f n %lu\n", median(v, n), n);
		free(v);
	} else if (strcmp(cmd, "ct-create-dnat") == 0 && argc == 9) {
		if (qct_create_dnat(qc, addr(argv[2]),
		    (uint16_t)number(argv[3], UINT16_MAX), addr(argv[4]),
		    (uint16_t)number(argv[5], UINT16_MAX), addr(argv[6]),
		    (uint16_t)number(argv[7], UINT16_MAX),
		    (uint32_t)number(argv[8], UINT32_MAX)) < 0) {
			/* The errno's name too: the tests act on it. */
			fprintf(stderr, "qtnf: ct-create-dnat: %s (%s)\n",
			    strerror(errno), errno == ENOMEM ? "ENOMEM" :
			    errno == EEXIST ? "EEXIST" : errno == EBUSY ?
			    "EBUSY" : errno == EINVAL ? "EINVAL" : "other");
			ret = 1;
		}
	} else if (strcmp(cmd, "ct-bench-create") == 0 && argc == 8) {
		ret = ct_bench_create(qc, addr(argv[2]), addr(argv[3]),
		    (uint16_t)number(argv[4], UINT16_MAX), addr(argv[5]),
		    (uint16_t)number(argv[6], UINT16_MAX),
		    number(argv[7], 10000000));
	} else
		usage();
out:
	qct_close(qc);
	return ret;
}

int
main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (strncmp(argv[1], "set-", 4) == 0)
		return set_main(argc, argv);
	if (strncmp(argv[1], "ct-", 3) == 0)
		return ct_main(argc, argv);
	usage();
	return 2;
}
