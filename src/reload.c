/*
 * Live reload (SIGHUP, qtctl reload): parse and check a fresh config, and
 * swap it in only if it is whole.  Nothing a live flow needs goes away: a
 * node removed from the config stays, retired, in our rules and sets
 * while flows still use it, and is dropped once the last of them ends.
 * What cannot change without a restart (this node's identity and address,
 * the band port, the control socket, the services already defined) is
 * refused with a clear message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qtd.h"

static int
node_index(const struct qt_config *cf, uint32_t id)
{
	return config_node_by_id(cf, id);
}

/* Points every flow's peer at the same node's index in nc. */
static void
flows_remap(const struct qt_config *oc, const struct qt_config *nc)
{
	struct flow *f;

	TAILQ_FOREACH(f, &qtd->flows, f_entry)
		if (f->f_peer >= 0)
			f->f_peer = node_index(nc, oc->c_nodes[f->f_peer].n_id);
}

static int
node_in_use(int idx)
{
	struct flow *f;

	TAILQ_FOREACH(f, &qtd->flows, f_entry)
		if (f->f_peer == idx)
			return 1;
	return 0;
}

static int
immutable_changed(const struct qt_config *oc, const struct qt_config *nc,
    char *err, size_t errlen)
{
	const struct qt_node *os = config_self(oc), *ns = config_self(nc);
	size_t s;

	if (strcmp(os->n_name, ns->n_name) || os->n_id != ns->n_id ||
	    os->n_addr != ns->n_addr)
		snprintf(err, errlen, "this node's name, id or address changed");
	else if (oc->c_band_port != nc->c_band_port)
		snprintf(err, errlen, "band-port changed");
	else if (oc->c_nflog_group != nc->c_nflog_group)
		snprintf(err, errlen, "nflog-group changed");
	else if (strcmp(oc->c_ctl_path, nc->c_ctl_path) ||
	    strcmp(oc->c_ctl_group, nc->c_ctl_group))
		snprintf(err, errlen, "control-socket or control-group changed");
	else if (strcmp(oc->c_iface, nc->c_iface))
		snprintf(err, errlen, "interface changed");
	else if (nc->c_nsvcs < oc->c_nsvcs)
		snprintf(err, errlen, "a service was removed");
	else {
		for (s = 0; s < oc->c_nsvcs; s++)
			if (strcmp(oc->c_svcs[s].s_name, nc->c_svcs[s].s_name) ||
			    oc->c_svcs[s].s_port != nc->c_svcs[s].s_port ||
			    oc->c_svcs[s].s_hobase != nc->c_svcs[s].s_hobase)
				break;
		if (s == oc->c_nsvcs)
			return 0;
		snprintf(err, errlen, "service %s changed (services may only "
		    "be added, at the end)", oc->c_svcs[s].s_name);
	}
	return 1;
}

/*
 * Installs nc in place of the running config: flows remapped, rules and
 * sets made to match, new listeners and captures started.  nc must hold
 * the retired nodes already.
 */
static int
swap_in(struct qt_config *nc, int reopen_captures)
{
	struct qt_config *oc = qtd->cf;
	size_t old_nsvcs = oc->c_nsvcs;

	flows_remap(oc, nc);
	qtd->cf = nc;
	if (steer_setup() == -1)
		log_err("reload: our rules could not be updated: the old ones "
		    "stay in force");
	if (reopen_captures) {
		back_capture_stop();
		front_watch_stop();
		if (back_capture_start() == -1 || front_watch_start() == -1)
			log_err("reload: captures could not be reopened");
	}
	front_listen_retune(old_nsvcs);
	if (front_listen(old_nsvcs) == -1)
		log_err("reload: a new service could not listen");
	health_start();
	free(oc);
	return 0;
}

static int	reload_do(char *, size_t);

/* systemd hears of the reload, whatever its outcome. */
int
reload(char *err, size_t errlen)
{
	int rc;

	sysd_notify("RELOADING=1");
	back_close_flush();	/* pending reports are by node index */
	rc = reload_do(err, errlen);
	sysd_notify("READY=1");
	return rc;
}

static int
reload_do(char *err, size_t errlen)
{
	struct qt_config *oc = qtd->cf, *nc;
	size_t i;
	int errors, j;

	if (!(nc = calloc(1, sizeof(*nc)))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	log_notice("reloading %s", oc->c_path);
	if ((errors = config_load_errors(oc->c_path, nc, err, errlen)) != 0) {
		log_err("reload: %d error%s in %s: keeping the running "
		    "configuration", errors, errors == 1 ? "" : "s",
		    oc->c_path);
		free(nc);
		return -1;
	}
	if (immutable_changed(oc, nc, err, errlen)) {
		log_err("reload: %s: restart the daemon for that; keeping the "
		    "running configuration", err);
		free(nc);
		return -1;
	}
	/* What this daemon learnt about each node survives the reload. */
	for (i = 0; i < nc->c_nnodes; i++) {
		struct qt_node *n = &nc->c_nodes[i];

		if ((j = node_index(oc, n->n_id)) < 0)
			continue;
		n->n_up = oc->c_nodes[j].n_up;
		n->n_heard = oc->c_nodes[j].n_heard;
		n->n_load = oc->c_nodes[j].n_load;
		n->n_peer_drain = oc->c_nodes[j].n_peer_drain;
		n->n_peer_confirms = oc->c_nodes[j].n_peer_confirms;
		n->n_drain_ctl = oc->c_nodes[j].n_drain_ctl;
	}
	/* A removed node that flows still use stays, retired. */
	for (i = 0; i < oc->c_nnodes; i++) {
		const struct qt_node *o = &oc->c_nodes[i];

		if (node_index(nc, o->n_id) >= 0 || !node_in_use((int)i))
			continue;
		if (nc->c_nnodes == QT_MAX_NODES - 1) {
			snprintf(err, errlen, "no room to keep removed node %s "
			    "while its flows last: retry when they have ended",
			    o->n_name);
			log_err("reload: %s", err);
			free(nc);
			return -1;
		}
		nc->c_nodes[nc->c_nnodes] = *o;
		nc->c_nodes[nc->c_nnodes].n_retired = 1;
		nc->c_nodes[nc->c_nnodes].n_weight = 0;
		nc->c_nnodes++;
		log_notice("node %s removed: kept, retired, while its flows "
		    "last", o->n_name);
	}
	swap_in(nc, nc->c_nsvcs != oc->c_nsvcs);
	log_notice("reloaded: %zu nodes, %zu services, %zu routes",
	    nc->c_nnodes, nc->c_nsvcs, nc->c_nroutes);
	err[0] = '\0';
	return 0;
}

/* Called every second: a retired node whose last flow has ended goes,
 * with its rules and set. */
void
reload_retire_check(void)
{
	struct qt_config *oc = qtd->cf, *nc;
	size_t i, k = 0;
	int drop = 0;

	for (i = 0; i < oc->c_nnodes; i++)
		if (oc->c_nodes[i].n_retired && !node_in_use((int)i))
			drop = 1;
	if (!drop || !(nc = malloc(sizeof(*nc))))
		return;
	memcpy(nc, oc, sizeof(*nc));
	for (i = 0; i < oc->c_nnodes; i++) {
		const struct qt_node *n = &oc->c_nodes[i];

		if (n->n_retired && !node_in_use((int)i)) {
			log_notice("retired node %s has no flows left: "
			    "removing its rules and set", n->n_name);
			continue;
		}
		nc->c_nodes[k++] = *n;
	}
	nc->c_nnodes = k;
	nc->c_self = node_index(nc, config_self(oc)->n_id);
	swap_in(nc, 0);
}
