/* parent: the privileged supervisor process. Internal interface shared by
 * parent.c (start-up, signals, readiness, heartbeat), parent_front.c and
 * parent_ruleset.c (one child each) and priv.c (privileged requests). */
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

struct plistener {
	int fd;
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
	struct child front, ruleset;
	struct msg_sandbox front_sb, ruleset_sb;
	/* the ruleset (-r) or config (-c) source: the last one that loaded,
	 * and one on trial */
	struct blob ruleset_good, ruleset_trial;
	bool configured; /* -c evaluated and the settings accepted */
	uint32_t ruleset_seq, ruleset_trial_seq;
	bool ruleset_loaded_once;
	bool ready_sent, sandboxed, stopping;
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
/* Bind the listeners and start the front (after -c was evaluated). */
void parent_serve(void);
/* --check / --dump-config with -c / a failed start: exit now. */
void parent_finish(int code);
/* os.exit(code) from the ruleset: stop as SIGTERM does (draining), then
 * exit with code. */
void parent_exit_request(int code);
void parent_link_peers(void);
/* After SIGHUP's RELOADING=1: tell systemd the reload is over. */
void notify_ready_after_reload(void);

/* Bind addr for a listener of this kind into parent.ls. 0 or -1 (logged). */
int parent_bind(const char *addr, int kind);

/* parent_api.c */
int parent_api_read_tokens(void);
int parent_api_bind(void);
void parent_api_send_listener(void);
void parent_api_close(void);
void parent_api_status(void);
void parent_api_reload(void);
void parent_api_init(void);
void parent_api_ruleset_spawned(void);

/* parent_front.c, parent_ruleset.c */
void parent_front_init(void);
void parent_ruleset_init(void);
void parent_ruleset_reload(void);

/* modules.c: require() for the ruleset process; -1 refuses (kill). */
int modules_request(struct child *c, const struct msg *m);
void modules_clear(void);

/* execute.c: await.execute (with --enable-execute). */
int execute_request(struct child *c, const struct msg *m);
/* The routine waiting for command id is gone: kill the command. */
void execute_cancel(uint32_t id, pid_t ruleset);
/* Kill the commands of that ruleset process (0: every command). */
void execute_kill_all(pid_t ruleset);
/* A child that is not the front or the ruleset was reaped: a command? */
bool execute_reaped(pid_t pid, int status);

/* priv.c: a privileged request from a child; 0 handled, -1 refused (the
 * caller kills the child). */
int priv_socket(struct child *c, const struct msg *m);
/* Capabilities the parent keeps effective for the configured features. */
uint64_t priv_caps_needed(const struct config *c);

#endif
