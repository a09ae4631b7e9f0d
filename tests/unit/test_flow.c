/*
 * Unit tests for flow_tuple_hv(): how evenly the flow table's tuple hash
 * spreads the clients a front really sees.  Each case fills a table of
 * 65,536 buckets (the size the table has grown to at 50,000 flows) and
 * prints the mean chain walked by a lookup of a present flow and the
 * longest chain, so that they can be quoted.  A uniform hash gives a
 * mean of 1 + n / buckets, 1.76 here, and a longest chain of about
 * 8; the bounds below leave room for chance and nothing for structure
 * (the hash this test came with gave 20.4 and 40 in the first case).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "qtd.h"

#define NB	65536u
#define NFLOWS	50000u

static unsigned	chain[NB];

/* Mean chain length seen by a lookup of each flow, and the longest. */
static void
spread(const char *what, uint32_t (*cip)(unsigned), uint16_t (*port)(unsigned))
{
	unsigned i, max = 0;
	double probes = 0;

	memset(chain, 0, sizeof(chain));
	for (i = 0; i < NFLOWS; i++)
		chain[flow_tuple_hv(cip(i), htons(port(i)), htons(80)) &
		    (NB - 1)]++;
	for (i = 0; i < NB; i++) {
		probes += (double)chain[i] * chain[i];
		if (chain[i] > max)
			max = chain[i];
	}
	probes /= NFLOWS;
	printf("# %s: mean chain per lookup %.2f, longest %u\n", what, probes,
	    max);
	assert_true(probes < 1.9);
	assert_true(max <= 12);
}

/* 20 addresses in one /24, ports from the ephemeral range: the
 * benchmark's held flows. */
static uint32_t
cip_20(unsigned i)
{
	return htonl(0xc6120065u + i % 20);	/* 198.18.0.101 + i % 20 */
}

static uint16_t
port_seq20(unsigned i)
{
	return (uint16_t)(32768 + i / 20);
}

/* One address (a NAT gateway), every port. */
static uint32_t
cip_one(unsigned i)
{
	(void)i;
	return htonl(0xc6120001u);
}

static uint16_t
port_seq(unsigned i)
{
	return (uint16_t)(10000 + i);
}

/* An address each, all on the same port (clients behind many NATs, or
 * a test tool that fixes its source port). */
static uint32_t
cip_seq(unsigned i)
{
	return htonl(0x0a000000u + i);
}

static uint16_t
port_one(unsigned i)
{
	(void)i;
	return 40000;
}

static void
test_twenty_addresses(void **state)
{
	(void)state;
	spread("20 addresses, sequential ports", cip_20, port_seq20);
}

static void
test_one_address(void **state)
{
	(void)state;
	spread("one address, 50,000 ports", cip_one, port_seq);
}

static void
test_many_addresses(void **state)
{
	(void)state;
	spread("50,000 addresses, one port", cip_seq, port_one);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_twenty_addresses),
		cmocka_unit_test(test_one_address),
		cmocka_unit_test(test_many_addresses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
