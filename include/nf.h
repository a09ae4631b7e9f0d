/*
 * Narrow wrappers around the kernel's netfilter interfaces.  Each library
 * lives in exactly one source file; nothing else includes its headers.
 *
 *   nf_ipt.c   libiptc (legacy xtables): our own chains and static rules
 *   nf_set.c   libipset: per-flow steering sets (hash:ip,port,ip)
 *   nf_ct.c    libnetfilter_conntrack: exact-tuple conntrack operations
 *
 * Addresses are IPv4 in network byte order; ports in host byte order.
 * Functions return 0 on success, -1 with errno set otherwise, and never log:
 * the caller decides what an error means.
 */
#ifndef QT_NF_H
#define QT_NF_H

#include <stddef.h>
#include <stdint.h>

/* nf_ipt.c */

/*
 * Where a rule goes.  Each value is one chain of ours, hooked by a jump
 * rule at the head of the named built-in chain of the named table.
 */
enum ipt_hook {
	IPT_RAW_PRE,	/* raw PREROUTING    -> QT-RAW-PRE */
	IPT_RAW_OUT,	/* raw OUTPUT        -> QT-RAW-OUT */
	IPT_NAT_PRE,	/* nat PREROUTING    -> QT-NAT-PRE */
	IPT_NAT_POST,	/* nat POSTROUTING   -> QT-NAT-POST */
	IPT_FILTER_IN,	/* filter INPUT      -> QT-IN */
	IPT_NHOOKS
};

enum ipt_verdict {
	IPT_V_ACCEPT,
	IPT_V_DROP,
	IPT_V_NOTRACK,	/* CT --notrack (raw table only) */
	IPT_V_DNAT,	/* nat PREROUTING: --to-destination nat_addr:nat_port */
	IPT_V_SNAT,	/* nat POSTROUTING: --to-source nat_addr:nat_port */
	IPT_V_RETURN,	/* leave our chain: its later rules are skipped */
	IPT_V_NFLOG,	/* NFLOG --nflog-group G --nflog-threshold T
			 * --nflog-size L; the packet goes on to the next
			 * rule */
};

/* One rule; every rule is "-p tcp".  Zero fields match anything. */
struct ipt_rule {
	enum ipt_hook		 ir_hook;
	uint32_t		 ir_src;	/* -s ADDR/32 */
	uint32_t		 ir_dst;	/* -d ADDR/32 */
	uint16_t		 ir_sport_lo, ir_sport_hi;	/* --sport LO:HI */
	uint16_t		 ir_dport_lo, ir_dport_hi;	/* --dport LO:HI */
	uint8_t			 ir_tcp_option;	/* --tcp-option N */
	uint8_t			 ir_tcp_flg_mask;	/* --tcp-flags MASK CMP */
	uint8_t			 ir_tcp_flg_cmp;
	int			 ir_socket;	/* 1: -m socket, 2: -m socket
						 * --nowildcard */
	const char		*ir_set;	/* -m set --match-set S src,src,dst */
	enum ipt_verdict	 ir_verdict;
	uint32_t		 ir_nat_addr;
	uint16_t		 ir_nat_port;
	uint16_t		 ir_nflog_group;
	uint16_t		 ir_nflog_threshold;	/* packets the kernel
							 * queues before it
							 * sends them */
	uint16_t		 ir_nflog_size;	/* bytes copied of each */
};

/*
 * Makes our chains hold exactly these rules, in this order: creates missing
 * chains and jump rules, flushes and refills ours, one commit per table so
 * no packet sees a half-filled chain.  Built-in chains are touched only to
 * keep exactly one jump to each of our chains, at position 1: added if
 * missing, a duplicate or one pushed down by someone's insert deleted.
 */
int	ipt_apply(const struct ipt_rule *rules, size_t nrules);
/* Removes our jump rules and our chains from every table; absent is fine. */
int	ipt_remove(void);
/* What the last failing ipt_apply()/ipt_remove() call ran into, for logs. */
const char	*ipt_strerror(void);

/* nf_set.c */

struct qset;	/* a long-lived libipset session */

struct qset	*qset_open(void);
void		 qset_close(struct qset *);
/* libipset's message for the last failing call on this session, for logs. */
const char	*qset_strerror(struct qset *);
/* hash:ip,port,ip; an existing set of that name and type is kept. */
int	qset_create(struct qset *, const char *name, uint32_t maxelem);
int	qset_destroy(struct qset *, const char *name);	/* absent is fine */
int	qset_flush(struct qset *, const char *name);
/* Entry (cip, tcp:cport, dip); adding an existing one / deleting an absent
 * one succeeds. */
int	qset_add(struct qset *, const char *name, uint32_t cip, uint16_t cport,
	    uint32_t dip);
int	qset_del(struct qset *, const char *name, uint32_t cip, uint16_t cport,
	    uint32_t dip);
/*
 * The add of qset_add() as a netlink message (NLM_F_ACK, sequence number
 * seq) in buf, for one datagram with other nfnetlink requests: its
 * length, 0 if the name is invalid or room is under QSET_ADD_MSGLEN.
 * qset_add_prepare() first (set known, queued deletes sent); an error
 * ack goes through qset_add_failed(), which returns the errno.
 */
#define QSET_ADD_MSGLEN	160
int	qset_add_prepare(struct qset *, const char *name);
size_t	qset_add_build(char *buf, size_t room, uint32_t seq, const char *name,
	    uint32_t cip, uint16_t cport, uint32_t dip);
int	qset_add_failed(struct qset *, const char *name, int error);
/* A delete queued, and the queue sent in one message (nf_set.c). */
int	qset_del_queue(struct qset *, const char *name, uint32_t cip,
	    uint16_t cport, uint32_t dip);
int	qset_commit(struct qset *, uint32_t *failed);
/* 1 if present, 0 if not, -1 on error. */
int	qset_test(struct qset *, const char *name, uint32_t cip,
	    uint16_t cport, uint32_t dip);
typedef void (*qset_entry_cb)(uint32_t cip, uint16_t cport, uint32_t dip,
	    void *arg);
int	qset_list(struct qset *, const char *name, qset_entry_cb, void *arg);
typedef void (*qset_name_cb)(const char *name, void *arg);
/* Every set in this network namespace whose name starts with prefix. */
int	qset_names(struct qset *, const char *prefix, qset_name_cb, void *arg);

/* nf_ct.c */

struct qct;	/* a long-lived ctnetlink socket */

struct qct	*qct_open(void);
void		 qct_close(struct qct *);
/* Deletes the TCP entry whose original tuple is exactly src:sport ->
 * dst:dport.  No such entry is success. */
int	qct_delete(struct qct *, uint32_t src, uint16_t sport, uint32_t dst,
	    uint16_t dport);
/* One exact TCP tuple, addresses network order, ports host order. */
struct qct_tuple {
	uint32_t	t_src, t_dst;
	uint16_t	t_sport, t_dport;
};
/*
 * Deletes the entries of n tuples with one send: the messages go in one
 * datagram and the acks are read back at once.  Entries already gone are
 * no error.  0, or -1 with the errno of the first other failure (the rest
 * are still tried).
 */
int	qct_delete_many(struct qct *, const struct qct_tuple *, size_t n);
/*
 * Creates the TCP entry csrc:csport -> fdst:fdport, ESTABLISHED, DNATed to
 * bdst:bdport: the entry conntrack would make by picking the flow up from
 * the client's next packet and running it through a DNAT rule, made before
 * that packet comes, so a FIN or RST first is DNATed too.  timeout_s (> 0)
 * holds until that packet; conntrack's TCP timeouts apply after it.  Steered
 * flows must still be exempt from NOTRACK (set entry), or it is never used.
 * Errors worth acting on:
 *   ENOMEM  table full (this namespace's count at nf_conntrack_max; also
 *           when unassured entries could be evicted): do not steer, serve
 *           the flow ourselves.
 *   EEXIST  an entry with this original tuple (or one holding the NATed
 *           reply tuple) exists; a binding cannot be changed in place, so
 *           qct_delete() the tuple and call again once; EEXIST again means
 *           another flow holds the reply tuple: do not steer.
 */
int	qct_create_dnat(struct qct *, uint32_t csrc, uint16_t csport,
	    uint32_t fdst, uint16_t fdport, uint32_t bdst, uint16_t bdport,
	    uint32_t timeout_s);
/*
 * qct_create_dnat() and, in the same datagram, the nfnetlink request
 * build writes (at most room bytes, acked, with sequence number seq; its
 * length, 0 if it cannot): one system call each way for both.  The
 * create's result as qct_create_dnat()'s; *err2 the other's ack (0, or
 * the error, positive; -1 if none was read).  The kernel takes the second
 * even if the create fails.
 */
typedef size_t (*qct_build_cb)(char *buf, size_t room, uint32_t seq,
	    void *arg);
int	qct_create_dnat_and(struct qct *, uint32_t csrc, uint16_t csport,
	    uint32_t fdst, uint16_t fdport, uint32_t bdst, uint16_t bdport,
	    uint32_t timeout_s, qct_build_cb build, void *arg, int *err2);
/* Calls cb for each TCP entry whose original destination is dst:dport. */
typedef void (*qct_entry_cb)(uint32_t src, uint16_t sport, uint32_t dst,
	    uint16_t dport, uint32_t reply_src, uint16_t reply_sport,
	    void *arg);
int	qct_list(struct qct *, uint32_t dst, uint16_t dport, qct_entry_cb,
	    void *arg);

#endif
