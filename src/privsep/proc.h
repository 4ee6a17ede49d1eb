/* proc: the parent's children. Each is started by fork and re-exec of the
 * daemon's own binary (opened once at start, so a replaced file on disk
 * does not change what runs); the role is given by NEOSOCKSD_ROLE in the
 * environment, and argv[0] "neosocksd: <role>" is the process title. The
 * channel is fd 3; stdout
 * and stderr go into a non-blocking pipe that the parent reads and logs. */
#ifndef NEOSOCKSD_PROC_H
#define NEOSOCKSD_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/event.h>

#include "common/chanev.h"
#include "common/log.h"
#include "common/msg.h"

#define PROC_CHAN_FD 3
#define PROC_LOGBUF LOG_FORWARD_MAX

/* The states of the parent's end of a child's channel (the masks of its
 * dispatch rows). */
enum proc_state {
	PROC_STARTING = 1, /* spawned, READY not yet seen */
	PROC_READY = 2,    /* serving */
	PROC_STOPPING = 4, /* told to shut down */
};
#define PROC_ANY (PROC_STARTING | PROC_READY | PROC_STOPPING)

/* Before the daemon is first ready, a child that dies without having sent
 * READY is respawned this many times; its next death stops the daemon. */
#define PROC_START_ATTEMPTS 5

struct child;
typedef void (*child_cb)(struct child *c);

struct child {
	enum role role;
	enum chan_kind kind; /* of the parent channel */
	/* "ruleset", "front", or "front 1".."front N" with several workers:
	 * in the parent's log lines and the process title */
	char name[24];
	unsigned queued_fds_max; /* proc_over_cap()'s fd cap for it */
	pid_t pid;
	bool running; /* forked and not yet reaped */
	bool stopping; /* told to shut down: its channel may close */
	/* the channel; ch.ready: the child said READY, ch.last_pong_ms: when
	 * it last answered the heartbeat (both kept after it closes) */
	struct chanev ch;
	int logfd;
	struct event *logev;
	size_t loglen;
	char logbuf[PROC_LOGBUF];
	struct log_bucket logbucket; /* its lines' rate limit */
	uint64_t log_dropped;        /* lines over it, not yet reported */
	unsigned restarts;
	int64_t started_ms;
	int backoff_ms;
	struct event *respawn_ev;
	/* hooks */
	child_cb on_spawn;     /* channel is up: send the configuration */
	/* the parent's end of its channel: its dispatch table, with
	 * proc_chan_err and proc_chan_ready */
	const struct chanev_end *end;
	child_cb on_ready;     /* it said READY */
	child_cb on_exit;      /* reaped */
};

void proc_setup(struct event_base *base, int exe_fd);
/* The fds an honest child of this kind may leave unread: the ruleset
 * process, or one of `workers` front workers (proc_over_cap()). */
unsigned proc_fd_cap(enum role role, unsigned workers);
/* Fork and exec. 0: started (a child that could not be watched is killed
 * at once and respawned when reaped, like any child that died); -1: nothing
 * started (logged, rate-limited). */
int proc_spawn(struct child *c);
/* The end's on_err: a violation, or a channel closed unasked, kills the
 * child (it is respawned). */
void proc_chan_err(struct chanev *ce, int err, const char *why, void *arg);
/* The end's on_ready: the child serves. */
void proc_chan_ready(struct chanev *ce, void *arg);
/* The child was told to shut down: its channel may close now. */
void proc_stopping(struct child *c);
/* Kill (SIGKILL) and stop listening to it; it is reaped later. why: logged
 * as an error; NULL for an expected end (the daemon is finishing). */
void proc_kill(struct child *c, const char *why);
/* A child of the process this one was forked from (-d): close what is
 * left of it here, without a signal (it is not ours to reap). */
void proc_forget(struct child *c);
/* Log how many of the child's lines its rate limit dropped, if any (at
 * its next line that passes, at its exit, and from the heartbeat). */
void proc_log_report(struct child *c);
/* Call before answering a child's request: a child whose channel holds
 * more queued messages or fds than an honest one ever leaves unread is
 * killed (true); it is respawned like any child that died. */
bool proc_over_cap(struct child *c);
/* Reap exited children; call on SIGCHLD. Pids that are none of these go
 * to other (commands run for await.execute). */
void proc_reap(struct child **children, int n,
	       bool (*other)(pid_t pid, int status));
/* A child died: respawn it at once if it had lived STABLE_MS, else after
 * a back-off that doubles from BACKOFF_MIN_MS to BACKOFF_MAX_MS. A respawn
 * that starts nothing (out of descriptors, say) doubles the back-off too,
 * whatever the dead child's lifetime. */
void proc_schedule_respawn(struct child *c);

#endif
