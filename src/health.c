/*
 * Membership: every daemon tells every peer, each heartbeat-interval,
 * that it lives, how many connections it serves and whether it drains.
 * A peer not heard for dead-after gets no new hand-offs until it is heard
 * again.  Each change is logged once.
 */
#include <stdio.h>
#include <string.h>

#include "qtd.h"

static void
health_set_up(int node, int up)
{
	struct qt_node *n = &qtd->cf->c_nodes[node];

	if (n->n_up == up)
		return;
	n->n_up = up;
	if (up)
		log_notice("node %s (%s) is up", n->n_name,
		    addr_str(n->n_addr));
	else
		log_warn("node %s (%s) is down: no heartbeat for %u ms",
		    n->n_name, addr_str(n->n_addr), qtd->cf->c_dead_after);
}

static void
health_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	const struct qt_config *cf = qtd->cf;
	struct band_msg bm = { .bm_type = BAND_HEARTBEAT };
	uint64_t now = now_ms();
	size_t i;

	(void)loop;
	(void)w;
	(void)revents;
	bm.bm_a = qtd->nserving;
	bm.bm_status = (config_self(cf)->n_drain ||
	    config_self(cf)->n_drain_ctl ? HB_DRAINING : 0) | HB_CONFIRMS;
	for (i = 0; i < cf->c_nnodes; i++) {
		struct qt_node *n = &qtd->cf->c_nodes[i];

		/* A plain HTTP node runs no daemon: nothing to tell or hear. */
		if ((int)i == cf->c_self || n->n_retired || n->n_mode == NM_PROXY)
			continue;
		(void)band_send((int)i, &bm);
		if (n->n_up && now - n->n_heard > cf->c_dead_after)
			health_set_up((int)i, 0);
	}
}

void
health_band(int node, const struct band_msg *bm)
{
	struct qt_node *n = &qtd->cf->c_nodes[node];
	int drain = (bm->bm_status & HB_DRAINING) != 0;

	n->n_heard = now_ms();
	n->n_load = bm->bm_a;
	/* A daemon of an older version does not say so, and gets one
	 * CONFIRM a hand-off: a rolling upgrade never loses one. */
	n->n_peer_confirms = (bm->bm_status & HB_CONFIRMS) != 0;
	if (n->n_peer_drain != drain) {
		n->n_peer_drain = drain;
		log_notice("node %s %s", n->n_name, drain ?
		    "drains: no new hand-offs to it" : "no longer drains");
	}
	health_set_up(node, 1);
}

/* (Re)starts the heartbeat; every configured peer starts believed up,
 * with a whole dead-after to be heard. */
void
health_start(void)
{
	const struct qt_config *cf = qtd->cf;
	uint64_t now = now_ms();
	size_t i;

	for (i = 0; i < cf->c_nnodes; i++)
		if (!qtd->cf->c_nodes[i].n_heard) {
			qtd->cf->c_nodes[i].n_heard = now;
			qtd->cf->c_nodes[i].n_up = 1;
		}
	ev_timer_stop(qtd->loop, &qtd->hb_timer);
	ev_timer_init(&qtd->hb_timer, health_tick, 0,
	    cf->c_hb_interval / 1000.0);
	ev_timer_again(qtd->loop, &qtd->hb_timer);
}

/* Whether a node may be given new connections, in this daemon's view. */
int
health_usable(int node)
{
	const struct qt_node *n = &qtd->cf->c_nodes[node];

	if (n->n_retired || n->n_drain || n->n_drain_ctl || n->n_weight == 0)
		return 0;
	/* A plain HTTP node has no daemon to hear from; a hand-off-then-
	 * proxy node whose daemon is silent is proxied to. */
	if (node == qtd->cf->c_self || n->n_mode != NM_HANDOFF)
		return 1;
	return n->n_up && !n->n_peer_drain;
}
