/*
 * qtipt: drives nf_ipt.c for tests/integration/t_ipt.sh.
 *
 *   qtipt apply-sample F B SET	install one rule of every kind
 *   qtipt apply-empty		our chains and jumps, no rules
 *   qtipt remove		remove chains and jumps
 *
 * F is a front end's address, B a back end's, SET an existing
 * hash:ip,port,ip set.  Exit status 0 on success, 1 on failure, 2 on usage.
 */
#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>

#include "nf.h"

static void
usage(void)
{
	fprintf(stderr, "usage: qtipt apply-sample F B SET\n"
	    "       qtipt apply-empty\n"
	    "       qtipt remove\n");
}

static int
parse_addr(const char *s, uint32_t *addr)
{
	struct in_addr in;

	if (inet_pton(AF_INET, s, &in) != 1) {
		fprintf(stderr, "qtipt: bad IPv4 address \"%s\"\n", s);
		return -1;
	}
	*addr = in.s_addr;
	return 0;
}

/* The rules the design calls for on a front end F and a back end B. */
static int
apply_sample(const char *fs, const char *bs, const char *set)
{
	uint32_t f, b;

	if (parse_addr(fs, &f) == -1 || parse_addr(bs, &b) == -1)
		return 2;

	const struct ipt_rule rules[] = {
		/* B: the front's replays never reach TCP or conntrack. */
		{ .ir_hook = IPT_RAW_PRE, .ir_dst = b,
		  .ir_dport_lo = 8000, .ir_dport_hi = 8063,
		  .ir_tcp_option = 253, .ir_verdict = IPT_V_DROP },
		{ .ir_hook = IPT_RAW_PRE, .ir_dst = b,
		  .ir_dport_lo = 8000, .ir_dport_hi = 8063,
		  .ir_verdict = IPT_V_NOTRACK },
		/* F: a steered flow's client FIN is logged, in batches. */
		{ .ir_hook = IPT_RAW_PRE, .ir_dst = f,
		  .ir_dport_lo = 80, .ir_dport_hi = 80, .ir_set = set,
		  .ir_tcp_flg_mask = 0x01, .ir_tcp_flg_cmp = 0x01,
		  .ir_verdict = IPT_V_NFLOG, .ir_nflog_group = 20820,
		  .ir_nflog_threshold = 64, .ir_nflog_size = 128 },
		/* F: steered flows are tracked (skip the rest of the chain). */
		{ .ir_hook = IPT_RAW_PRE, .ir_dst = f,
		  .ir_dport_lo = 80, .ir_dport_hi = 80, .ir_set = set,
		  .ir_verdict = IPT_V_RETURN },
		/* F: its own replays stay untracked. */
		{ .ir_hook = IPT_RAW_OUT, .ir_tcp_option = 253,
		  .ir_verdict = IPT_V_NOTRACK },
		/* F: steered flows go to B. */
		{ .ir_hook = IPT_NAT_PRE, .ir_dst = f,
		  .ir_dport_lo = 80, .ir_dport_hi = 80, .ir_set = set,
		  .ir_verdict = IPT_V_DNAT, .ir_nat_addr = b,
		  .ir_nat_port = 8001 },
		/* B: answers leave as F:80. */
		{ .ir_hook = IPT_NAT_POST, .ir_src = b,
		  .ir_sport_lo = 8002, .ir_sport_hi = 8002,
		  .ir_verdict = IPT_V_SNAT, .ir_nat_addr = f,
		  .ir_nat_port = 80 },
		/* B: nothing but an existing socket gets a client packet. */
		{ .ir_hook = IPT_FILTER_IN, .ir_dst = b,
		  .ir_dport_lo = 8000, .ir_dport_hi = 8063,
		  .ir_socket = 1, .ir_verdict = IPT_V_ACCEPT },
		{ .ir_hook = IPT_FILTER_IN, .ir_dst = b,
		  .ir_dport_lo = 8000, .ir_dport_hi = 8063,
		  .ir_verdict = IPT_V_DROP },
	};

	if (ipt_apply(rules, sizeof(rules) / sizeof(rules[0])) == -1) {
		fprintf(stderr, "qtipt: apply: %s\n", ipt_strerror());
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "apply-sample") == 0)
		return apply_sample(argv[2], argv[3], argv[4]);
	if (argc == 2 && strcmp(argv[1], "apply-empty") == 0) {
		if (ipt_apply(NULL, 0) == -1) {
			fprintf(stderr, "qtipt: apply: %s\n", ipt_strerror());
			return 1;
		}
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "remove") == 0) {
		if (ipt_remove() == -1) {
			fprintf(stderr, "qtipt: remove: %s\n", ipt_strerror());
			return 1;
		}
		return 0;
	}
	usage();
	return 2;
}
