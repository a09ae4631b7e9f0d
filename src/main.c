/*
 * quicktwitchd: the daemon's entry point.  Runs in the foreground (systemd
 * style); -n checks the configuration and exits.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qtd.h"


static void
usage(void)
{
	fprintf(stderr,
	    "usage: quicktwitchd [-n] [--cleanup] [-d] -c FILE\n"
	    "  -c FILE     configuration file (default /etc/qt.conf)\n"
	    "  -n          check the configuration and exit\n"
	    "  -d          log at debug level\n"
	    "  --cleanup   remove every rule and set this node owns, and exit\n");
	exit(2);
}

void
qtd_stop(int cleanup, const char *why)
{
	sysd_notify("STOPPING=1");
	log_notice("%s: stopping%s", why, cleanup ?
	    ", removing every rule and set of this node" : "");
	qtd->stop_cleanup = qtd->stop_cleanup || cleanup;
	ev_break(qtd->loop, EVBREAK_ALL);
}

static void
on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)revents;
	qtd_stop(qtd->cf->c_stop_cleanup, w->signum == SIGINT ? "SIGINT" :
	    "SIGTERM");
}

static void
on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
	char err[2048];

	(void)loop;
	(void)w;
	(void)revents;
	(void)reload(err, sizeof(err));	/* it logs every error itself */
}

/* From the event loop itself: a wedged loop stops the pings and systemd
 * restarts us. */
static void
on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	sysd_notify("WATCHDOG=1");
}

static void
on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	flow_reap();
}

/*
 * Each batch of callbacks the loop runs between two waits, timed: while
 * one runs, every flow's next event waits behind it, so the longest is
 * the latency the daemon adds at worst (qtctl stats: loop_busy).  Two
 * clock reads a batch, against a hand-off's hundreds of microseconds.
 */
static void
invoke_timed(struct ev_loop *loop)
{
	uint64_t t0 = tm_mono_ns();

	ev_invoke_pending(loop);
	tm_add(&qtd->tm_loop, tm_mono_ns() - t0);
}

static void
on_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	back_sweep();
	relay_sweep();
	reload_retire_check();
	log_flush_expired();	/* a window's "(repeated N times)" on time */
}

static int
open_kernel_handles(char *err, size_t errlen)
{
	if (!(qtd->set = qset_open())) {
		snprintf(err, errlen, "ipset session: %s", strerror(errno));
		return -1;
	}
	if (!(qtd->ct = qct_open())) {
		snprintf(err, errlen, "ctnetlink: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "cleanup", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct qtd d;
	struct qt_config *cf;
	const char *path = "/etc/qt.conf";
	int ch, check = 0, cleanup = 0, debug = 0, errors;
	char err[512];
	struct flow *f;

	while ((ch = getopt_long(argc, argv, "c:ndh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'n':
			check = 1;
			break;
		case 'd':
			debug = 1;
			break;
		case 'C':
			cleanup = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("quicktwitchd", LOG_L_INFO);
	if (auth_init() == -1) {
		log_err("libsodium cannot initialise");
		return 1;
	}
	log_set_plain(check);
	/* On the heap: a reload frees it when it swaps in the next one. */
	if (!(cf = calloc(1, sizeof(*cf)))) {
		log_err("out of memory");
		return 1;
	}
	if ((errors = config_load(path, cf)) != 0) {
		log_err("%s: %d error%s, not started", path, errors,
		    errors == 1 ? "" : "s");
		return 1;
	}
	if (check) {
		printf("configuration OK\n");
		return 0;
	}
	log_set_level(debug ? LOG_L_DEBUG : cf->c_log_level);
	signal(SIGPIPE, SIG_IGN);

	qtd = &d;
	d.cf = cf;
	d.band_fd = -1;
	TAILQ_INIT(&d.flows);
	TAILQ_INIT(&d.dead);
	TAILQ_INIT(&d.sweepq);
	TAILQ_INIT(&d.urgentq);
	TAILQ_INIT(&d.graceq);
	TAILQ_INIT(&d.unheardq);
	if (flow_init() == -1) {
		log_err("flow tables: %m");
		return 1;
	}
	if (!(d.loop = ev_default_loop(EVFLAG_AUTO))) {
		log_err("libev: cannot create the event loop");
		return 1;
	}
	ev_set_invoke_pending_cb(d.loop, invoke_timed);
	if (open_kernel_handles(err, sizeof(err)) == -1) {
		log_err("%s", err);
		return 1;
	}
	if (cleanup) {
		steer_teardown();
		log_notice("removed every rule and set of this node");
		return 0;
	}
	if (cf->c_iface[0])
		snprintf(d.iface, sizeof(d.iface), "%s", cf->c_iface);
	else if (iface_of_addr(config_self(cf)->n_addr, d.iface,
	    sizeof(d.iface)) == -1) {
		log_err("no interface holds this node's address %s: is "
		    "\"self\" right?", addr_str(config_self(cf)->n_addr));
		return 1;
	}
	if (sysctl_check(d.iface, cf->c_set_sysctls) != 0) {
		log_err("kernel settings are wrong, not started");
		return 1;
	}
	if (!(d.replay = replay_open(err, sizeof(err)))) {
		log_err("replay socket: %s", err);
		return 1;
	}
	repair_init();
	/* Each step logs its own failure, but the band socket's. */
	if (steer_setup() == -1)
		return 1;
	if (band_open() == -1) {
		log_err("band socket on %s:%u: %m",
		    addr_str(config_self(cf)->n_addr), cf->c_band_port);
		return 1;
	}
	if (back_capture_start() == -1 || front_watch_start() == -1 ||
	    front_listen(0) == -1)
		return 1;
	if (control_open() == -1)
		return 1;

	front_adopt();
	health_start();
	if (privs_drop() == -1) {
		log_err("cannot drop capabilities: %m");
		return 1;
	}
	ev_signal_init(&d.sig_int, on_signal, SIGINT);
	ev_signal_start(d.loop, &d.sig_int);
	ev_signal_init(&d.sig_term, on_signal, SIGTERM);
	ev_signal_start(d.loop, &d.sig_term);
	ev_signal_init(&d.sig_hup, on_hup, SIGHUP);
	ev_signal_start(d.loop, &d.sig_hup);
	ev_prepare_init(&d.reaper, on_prepare);
	ev_prepare_start(d.loop, &d.reaper);
	ev_timer_init(&d.sweep, on_sweep, 1.0, 1.0);
	ev_timer_start(d.loop, &d.sweep);

	log_notice("node %s (id %u, %s) ready: %zu nodes, %zu services",
	    config_self(cf)->n_name, config_self(cf)->n_id,
	    addr_str(config_self(cf)->n_addr), cf->c_nnodes, cf->c_nsvcs);
	if (sysd_watchdog() > 0) {
		ev_timer_init(&d.watchdog, on_watchdog, 0, sysd_watchdog());
		ev_timer_again(d.loop, &d.watchdog);
	}
	sysd_notify("READY=1");
	ev_run(d.loop, 0);
	/* A reply to "qtctl stop" went out when it was made: ctl_send()
	 * writes at once, and it is small. */
	d.stopping = !d.stop_cleanup;

	/* Steering lives in the kernel and stays: a restarted daemon must
	 * not cut the flows the backs are serving.  --cleanup removes it. */
	while ((f = TAILQ_FIRST(&d.flows)))
		flow_close(f, "daemon stopping");
	flow_reap();
	relay_spares_close();
	back_close_flush();
	if (d.stop_cleanup)
		steer_teardown();
	capture_close(d.cap);
	capture_close(d.fin_cap);
	replay_close(d.replay);
	qset_close(d.set);
	qct_close(d.ct);
	control_close();
	log_notice("stopped");
	return 0;
}
