#include "privsep/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/monotime.h"

static struct event_base *proc_base;
static int proc_exe_fd = -1;

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define STABLE_MS 10000 /* a child that lived this long restarts at once */
/* a child's log lines: 1,000 a second, in bursts of up to 10,000 */
#define PROC_LOG_RATE 1000
#define PROC_LOG_BURST 10000

/* What the parent queues for a child unasked, at most: its configuration,
 * listeners and peer channel (fds), a replay of the saved updates and
 * their status messages. */
#define PROC_UNASKED_FDS 16
#define PROC_UNASKED_MSGS 1024
/* Answers an honest child may leave unread: the front's brokered sockets
 * (it keeps at most MSG_PRIV_PENDING_MAX requests open); the ruleset
 * process waits for each module before it asks for the next. */
#define PROC_QUEUED_MSGS_MAX (MSG_PRIV_PENDING_MAX + PROC_UNASKED_MSGS)
static long proc_nofile = 1024;

void proc_setup(struct event_base *base, int exe_fd)
{
	struct rlimit rl;

	proc_base = base;
	proc_exe_fd = exe_fd;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		proc_nofile = rl.rlim_cur > INT_MAX ? INT_MAX
						    : (long)rl.rlim_cur;
}

/* A quarter of the descriptors at most for what the children leave
 * unread, shared by the front workers, so that they cannot take them
 * all from the parent; an honest front keeps its requests below its
 * share (front_priv.c uses msg_priv_pending_max() too). */
unsigned proc_fd_cap(enum role role, unsigned workers)
{
	return msg_priv_pending_max(proc_nofile,
				    role == ROLE_FRONT ? workers : 1) +
	       PROC_UNASKED_FDS;
}

bool proc_over_cap(struct child *c)
{
	const struct msgchan *ch = &c->ch.ch;
	char why[96];

	if (!c->ch.open)
		return false;
	if (msgchan_queued_msgs(ch) < PROC_QUEUED_MSGS_MAX &&
	    msgchan_queued_fds(ch) < c->queued_fds_max)
		return false;
	snprintf(why, sizeof(why),
		 "it does not read its channel (%u messages, %u fds queued)",
		 msgchan_queued_msgs(ch), msgchan_queued_fds(ch));
	proc_kill(c, why);
	return true;
}

void proc_log_report(struct child *c)
{
	if (c->log_dropped == 0)
		return;
	LOGW("%s (pid %d): %llu log lines dropped (more than %d a second)",
	     c->name, (int)c->pid,
	     (unsigned long long)c->log_dropped, PROC_LOG_RATE);
	c->log_dropped = 0;
}

/* One line from the child (without its '\n'): attributed, escaped, and
 * within the child's rate. */
static void proc_log_line(struct child *c, const char *line, size_t len)
{
	if (!log_bucket_take(&c->logbucket, PROC_LOG_RATE, PROC_LOG_BURST)) {
		c->log_dropped++;
		return;
	}
	proc_log_report(c);
	log_forward_child(role_name(c->role), (int)c->pid, line, len);
}

static void proc_flush_log(struct child *c)
{
	if (c->loglen == 0)
		return;
	proc_log_line(c, c->logbuf, c->loglen);
	c->loglen = 0;
}

static void proc_log_cb(evutil_socket_t fd, short what, void *arg)
{
	struct child *c = arg;
	ssize_t n;

	(void)what;
	for (;;) {
		char *nl;
		size_t off = 0;

		n = read(fd, c->logbuf + c->loglen,
			 sizeof(c->logbuf) - c->loglen);
		if (n <= 0)
			break;
		c->loglen += (size_t)n;
		while ((nl = memchr(c->logbuf + off, '\n', c->loglen - off)) !=
		       NULL) {
			proc_log_line(c, c->logbuf + off,
				      (size_t)(nl - (c->logbuf + off)));
			off = (size_t)(nl - c->logbuf) + 1;
		}
		memmove(c->logbuf, c->logbuf + off, c->loglen - off);
		c->loglen -= off;
		if (c->loglen == sizeof(c->logbuf))
			proc_flush_log(c); /* an overlong line, in pieces */
	}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		proc_flush_log(c);
		proc_log_report(c);
		event_free(c->logev);
		c->logev = NULL;
		close(c->logfd);
		c->logfd = -1;
	}
}

void proc_chan_err(struct chanev *ce, int err, const char *why, void *arg)
{
	struct child *c = arg;

	(void)ce;
	if (err == 0 && c->stopping) {
		LOGD("%s channel closed", c->name);
		chanev_close(&c->ch);
		return;
	}
	/* a child that closes its channel unasked is of no use and might
	 * not be exiting: make sure (it is respawned) */
	proc_kill(c, err == 0 ? "closed its channel" : why);
}

void proc_chan_ready(struct chanev *ce, void *arg)
{
	struct child *c = arg;

	chanev_set_state(ce, c->stopping ? PROC_STOPPING : PROC_READY);
	LOGD("%s ready (pid %d)", c->name, (int)c->pid);
	c->on_ready(c);
}

void proc_stopping(struct child *c)
{
	c->stopping = true;
	chanev_set_state(&c->ch, PROC_STOPPING);
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void proc_exec_child(const struct child *c, int chan, int logw,
			    pid_t parent)
{
	char title[48];
	char *argv[] = { title, NULL };
	sigset_t none;
	int devnull, exe;

	snprintf(title, sizeof(title), "neosocksd: %s", c->name);

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(127);
	/* move the sources above the targets first, so no dup2 below
	 * overwrites a descriptor it still needs */
	chan = fcntl(chan, F_DUPFD_CLOEXEC, 10);
	logw = fcntl(logw, F_DUPFD_CLOEXEC, 10);
	exe = fcntl(proc_exe_fd, F_DUPFD_CLOEXEC, 10);
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (chan < 0 || logw < 0 || exe < 0 || devnull < 0 ||
	    dup2(devnull, 0) < 0 || dup2(logw, 1) < 0 || dup2(logw, 2) < 0 ||
	    dup2(chan, PROC_CHAN_FD) < 0 ||
	    dup3(exe, PROC_CHAN_FD + 1, O_CLOEXEC) < 0)
		_exit(127);
	/* nothing else crosses exec: listeners travel by message */
	if (close_range(PROC_CHAN_FD + 2, ~0u, 0) < 0)
		_exit(127);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* the role marker survives wrappers (valgrind) that rewrite argv[0];
	 * the parent is single-threaded, so setenv after fork is safe */
	if (setenv("NEOSOCKSD_ROLE", role_name(c->role), 1) < 0)
		_exit(127);
	fexecve(PROC_CHAN_FD + 1, argv, environ);
	_exit(127);
}

int proc_spawn(struct child *c)
{
	int sv[2], lp[2];
	pid_t parent = getpid(), pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		LOG_RL(LOGL_ERROR, 10, "socketpair: %s", strerror(errno));
		return -1;
	}
	if (pipe2(lp, O_CLOEXEC) < 0) {
		LOG_RL(LOGL_ERROR, 10, "pipe2: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		LOG_RL(LOGL_ERROR, 10, "fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		close(lp[0]);
		close(lp[1]);
		return -1;
	}
	if (pid == 0)
		proc_exec_child(c, sv[1], lp[1], parent);
	close(sv[1]);
	close(lp[1]);
	c->pid = pid;
	c->running = true;
	c->stopping = false;
	c->started_ms = monotime_ms();
	c->logfd = lp[0];
	c->loglen = 0;
	c->logbucket = (struct log_bucket){ 0 };
	c->log_dropped = 0;
	fcntl(lp[0], F_SETFL, O_NONBLOCK);
	c->logev = event_new(proc_base, lp[0], EV_READ | EV_PERSIST,
			     proc_log_cb, c);
	if (c->logev == NULL) {
		close(c->logfd);
		c->logfd = -1;
	}
	if (c->logev == NULL || event_add(c->logev, NULL) < 0 ||
	    chanev_init(&c->ch, proc_base, sv[0], c->kind, c->role, c->end,
			PROC_STARTING, c) < 0) {
		/* it runs: reaped and respawned like any child that died */
		LOG_RL(LOGL_ERROR, 10, "cannot watch the %s process",
		       c->name);
		proc_kill(c, "setup failed");
		return 0;
	}
	LOGD("started %s, pid %d", c->name, (int)pid);
	c->on_spawn(c);
	return 0;
}

void proc_kill(struct child *c, const char *why)
{
	if (c->running) {
		if (why != NULL)
			LOGE("killing %s (pid %d): %s", c->name,
			     (int)c->pid, why);
		kill(c->pid, SIGKILL);
	}
	chanev_close(&c->ch);
}

void proc_forget(struct child *c)
{
	chanev_close(&c->ch);
	if (c->logev != NULL) {
		event_free(c->logev);
		c->logev = NULL;
	}
	if (c->logfd >= 0)
		close(c->logfd);
	c->logfd = -1;
	c->running = false;
	c->ch.ready = false;
	c->pid = 0;
}

/* 0, then BACKOFF_MIN_MS, doubling up to BACKOFF_MAX_MS. */
static void proc_backoff_grow(struct child *c)
{
	if (c->backoff_ms == 0)
		c->backoff_ms = BACKOFF_MIN_MS;
	else if (c->backoff_ms < BACKOFF_MAX_MS)
		c->backoff_ms *= 2;
	if (c->backoff_ms > BACKOFF_MAX_MS)
		c->backoff_ms = BACKOFF_MAX_MS;
}

static void proc_respawn_cb(evutil_socket_t fd, short what, void *arg);

static void proc_arm_respawn(struct child *c)
{
	struct timeval tv;

	c->restarts++;
	if (c->respawn_ev == NULL)
		c->respawn_ev = evtimer_new(proc_base, proc_respawn_cb, c);
	tv.tv_sec = c->backoff_ms / 1000;
	tv.tv_usec = (c->backoff_ms % 1000) * 1000;
	LOGN("respawning %s in %d ms (restart %u)", c->name, c->backoff_ms,
	     c->restarts);
	if (c->respawn_ev == NULL || evtimer_add(c->respawn_ev, &tv) < 0)
		LOG_RL(LOGL_ERROR, 10, "cannot arm the %s's respawn timer",
		       c->name);
}

static void proc_respawn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct child *c = arg;

	(void)fd;
	(void)what;
	if (proc_spawn(c) == 0)
		return;
	/* nothing started: how long the previous child lived says nothing
	 * about this; wait longer each time */
	proc_backoff_grow(c);
	proc_arm_respawn(c);
}

void proc_schedule_respawn(struct child *c)
{
	if (monotime_ms() - c->started_ms >= STABLE_MS)
		c->backoff_ms = 0;
	else
		proc_backoff_grow(c);
	proc_arm_respawn(c);
}

void proc_reap(struct child **children, int n,
	       bool (*other)(pid_t pid, int status))
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (other != NULL && other(pid, status))
			continue;
		for (int i = 0; i < n; i++) {
			struct child *c = children[i];

			if (!c->running || c->pid != pid)
				continue;
			c->running = false;
			if (c->logev != NULL)
				proc_log_cb(c->logfd, EV_READ, c);
			chanev_close(&c->ch);
			if (WIFSIGNALED(status))
				LOGW("%s (pid %d) killed by signal %d%s",
				     c->name, (int)pid,
				     WTERMSIG(status),
				     WTERMSIG(status) == SIGSYS
					     ? " (sandbox violation)"
					     : "");
			else
				LOGN("%s (pid %d) exited with status %d",
				     c->name, (int)pid,
				     WEXITSTATUS(status));
			c->on_exit(c);
		}
	}
}
