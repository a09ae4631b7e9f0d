/*
 * The netlink requests we build ourselves rather than through a library:
 * the ipset add that shares a datagram with the conntrack create
 * (qset_add_build).  The kernel's acceptance is t_handoff's and
 * t_setct's to show; here, that every field it parses is where and how
 * it looks for it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter.h>	/* NFPROTO_IPV4 */
#include <libipset/linux_ip_set.h>

#include "nf.h"

/* The attributes of one nest (or of the message, nest NULL) by type;
 * each type at most once, flags kept in the raw nla_type. */
struct attrs {
	const struct nlattr	*a[IPSET_ATTR_ADT_MAX + 1];
	int			 n;
};

static void
collect(const struct nlattr *a, struct attrs *as)
{
	uint16_t t = mnl_attr_get_type(a);

	assert_true(t <= IPSET_ATTR_ADT_MAX);
	assert_null(as->a[t]);
	as->a[t] = a;
	as->n++;
}

static void
msg_attrs(const struct nlmsghdr *nlh, struct attrs *as)
{
	const struct nlattr *a;

	memset(as, 0, sizeof(*as));
	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
		collect(a, as);
}

static void
nest_attrs(const struct nlattr *nest, struct attrs *as)
{
	const struct nlattr *a;

	memset(as, 0, sizeof(*as));
	assert_true(nest->nla_type & NLA_F_NESTED);
	mnl_attr_for_each_nested(a, nest)
		collect(a, as);
}

/* An IPSET_ATTR_IP or _IP2 nest: one IPv4 address, network order. */
static void
check_ip(const struct nlattr *nest, uint32_t want)
{
	struct attrs ip;
	const struct nlattr *a;

	assert_non_null(nest);
	nest_attrs(nest, &ip);
	assert_int_equal(ip.n, 1);
	a = ip.a[IPSET_ATTR_IPADDR_IPV4];
	assert_non_null(a);
	assert_true(a->nla_type & NLA_F_NET_BYTEORDER);
	assert_int_equal(mnl_attr_get_payload_len(a), 4);
	assert_int_equal(mnl_attr_get_u32(a), want);
}

static void
add_message(void **state)
{
	char buf[QSET_ADD_MSGLEN + 8] __attribute__((aligned));
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
	const struct nfgenmsg *nfg;
	struct attrs top, data;
	uint32_t cip = inet_addr("198.18.0.100"), dip = inet_addr("198.18.0.1");
	size_t len;

	(void)state;
	memset(buf, 0xaa, sizeof(buf));
	len = qset_add_build(buf, QSET_ADD_MSGLEN, 77, "qt-0-2", cip, 40123,
	    dip);
	assert_true(len > 0);
	assert_true(len <= QSET_ADD_MSGLEN);
	assert_int_equal(nlh->nlmsg_len, len);
	assert_true(mnl_nlmsg_ok(nlh, (int)len));
	assert_int_equal(nlh->nlmsg_type,
	    (NFNL_SUBSYS_IPSET << 8) | IPSET_CMD_ADD);
	/* Acked; no NLM_F_EXCL: an entry already there is success. */
	assert_int_equal(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
	assert_int_equal(nlh->nlmsg_seq, 77);
	nfg = mnl_nlmsg_get_payload(nlh);
	assert_int_equal(nfg->nfgen_family, NFPROTO_IPV4);
	assert_int_equal(nfg->version, NFNETLINK_V0);

	msg_attrs(nlh, &top);
	assert_int_equal(top.n, 3);
	assert_non_null(top.a[IPSET_ATTR_PROTOCOL]);
	assert_int_equal(mnl_attr_get_u8(top.a[IPSET_ATTR_PROTOCOL]),
	    IPSET_PROTOCOL);
	assert_non_null(top.a[IPSET_ATTR_SETNAME]);
	assert_string_equal(mnl_attr_get_str(top.a[IPSET_ATTR_SETNAME]),
	    "qt-0-2");
	assert_non_null(top.a[IPSET_ATTR_DATA]);

	nest_attrs(top.a[IPSET_ATTR_DATA], &data);
	assert_int_equal(data.n, 4);
	check_ip(data.a[IPSET_ATTR_IP], cip);
	check_ip(data.a[IPSET_ATTR_IP2], dip);
	assert_non_null(data.a[IPSET_ATTR_PORT]);
	assert_true(data.a[IPSET_ATTR_PORT]->nla_type & NLA_F_NET_BYTEORDER);
	assert_int_equal(mnl_attr_get_u16(data.a[IPSET_ATTR_PORT]),
	    htons(40123));
	/* hash:ip,port,ip refuses an element without its protocol. */
	assert_non_null(data.a[IPSET_ATTR_PROTO]);
	assert_int_equal(mnl_attr_get_u8(data.a[IPSET_ATTR_PROTO]),
	    IPPROTO_TCP);
}

static void
add_message_limits(void **state)
{
	char buf[QSET_ADD_MSGLEN] __attribute__((aligned));
	char name[IPSET_MAXNAMELEN + 1];
	size_t len;

	(void)state;
	/* The longest name a set can have still fits the stated room. */
	memset(name, 'n', IPSET_MAXNAMELEN - 1);
	name[IPSET_MAXNAMELEN - 1] = '\0';
	len = qset_add_build(buf, sizeof(buf), 1, name, 1, 2, 3);
	assert_true(len > 0 && len <= sizeof(buf));
	/* Never a truncated name, never past the room given. */
	name[IPSET_MAXNAMELEN - 1] = 'n';
	name[IPSET_MAXNAMELEN] = '\0';
	assert_int_equal(qset_add_build(buf, sizeof(buf), 1, name, 1, 2, 3), 0);
	assert_int_equal(qset_add_build(buf, sizeof(buf), 1, "", 1, 2, 3), 0);
	assert_int_equal(qset_add_build(buf, sizeof(buf), 1, NULL, 1, 2, 3), 0);
	assert_int_equal(qset_add_build(buf, QSET_ADD_MSGLEN - 1, 1, "qt-0-2",
	    1, 2, 3), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(add_message),
		cmocka_unit_test(add_message_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
