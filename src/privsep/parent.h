/* parent: the privileged supervisor process: its state, shared by the
 * parent's files (parent_front.c and parent_ruleset.c: one child each;
 * parent_api.c, state.c, modules.c, execute.c, priv.c), and parent.c's
 * start-up, signals, readiness and heartbeat. */
#ifndef NEOSOCKSD_PARENT_H
#define NEOSOCKSD_PARENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "common/config.h"
#include "common/msg.h"
#include "privsep/cli.h"
#include "privsep/proc.h"
#include "privsep/readfile.h"

#define PARENT_MAX_LISTENERS 4

/* A listening address: one socket per front worker (all bound with
 * SO_REUSEPORT to the same address, the kernel spreading connections over
 * them) when there are several, else one. */
struct plistener {
	int fd[CONF_WORKERS_MAX];
	int nfd;
	int kind; /* enum listener_kind */
	char addr[CONF_ADDR_MAX];
};

struct parent {
	struct config conf;
	struct cli cli;
	struct event_base *base;
	struct plistener ls[PARENT_MAX_LISTENERS];
	int nls;
	struct blob resolvconf, hosts;
	struct child *fronts; /* the front workers, parent.conf.workers */
	int nfronts;
	struct child ruleset;
	struct msg_sandbox front_sb, ruleset_sb;
	/* the ruleset (-r) or config (-c) source: the last one that loaded,
	 * and one on trial */
	struct blob ruleset_good, ruleset_trial;
	bool configured; /* -c evaluated and the settings accepted */
	uint32_t ruleset_seq, ruleset_trial_seq;
	bool ruleset_loaded_once;
	bool ready_sent, sandboxed, stopping;
	bool daemonized; /* -d: running in the background */
	bool daemonize_pending; /* a -c file said daemonize: fork outside
				 * the event loop, then serve */
	bool exit_requested; /* os.exit(): exit_code stands */
	struct blob stdin_src; /* -r - or -c -: read once, at start */
	int exit_code;
	double drain_seconds;
	struct event *heartbeat, *stop_timer;
	uint64_t ping_seq;
	int64_t last_beat_ms; /* when the heartbeat last ran */
	long nofile; /* RLIMIT_NOFILE in force (raised to the hard limit) */
};

extern struct parent parent;

int parent_main(int argc, char **argv);

/* parent.c */
void parent_child_ready(struct child *c);
void parent_check_exit(void);
/* c died without READY before the daemon was first ready: after
 * PROC_START_ATTEMPTS respawns, stop (true) instead of respawning. */
bool parent_start_given_up(struct child *c);
/* -d: into the background (at start, or once a -c file said so, when
 * the ruleset process that read it is replaced by the daemon's own). 0,
 * or -1 (logged). */
int parent_daemonize(void);
/* Bind the listeners and start the front (after -c was evaluated). */
void parent_serve(void);
/* --check / --dump-config with -c / a failed start: exit now. */
void parent_finish(int code);
/* os.exit(code) from the ruleset: stop as SIGTERM does (draining), then
 * exit with code. */
void parent_exit_request(int code);
/* After SIGHUP's RELOADING=1: tell systemd the reload is over. */
void parent_reload_done(void);

/* Bind addr for a listener of this kind into parent.ls: one socket per
 * worker for the front's kinds, one for the API. 0 or -1 (logged). */
int parent_bind(const char *addr, int kind);
/* Every child: the ruleset process and the front workers. */
int parent_children(struct child ***out);

#endif
