/* parent: the small privileged process. It parses the command line, reads
 * the files the children need, binds every listener, starts and supervises
 * the front and the ruleset process, talks to systemd, and runs no protocol
 * code and no Lua. */
#include "privsep/parent.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/chanev.h"
#include "common/log.h"
#include "common/monotime.h"
#include "privsep/daemon.h"
#include "privsep/execute.h"
#include "privsep/identity.h"
#include "privsep/limits.h"
#include "privsep/notify.h"
#include "privsep/parent_api.h"
#include "privsep/parent_front.h"
#include "privsep/parent_ruleset.h"
#include "privsep/parent_tls.h"
#include "privsep/priv.h"
#include "privsep/sandbox.h"
#include "privsep/state.h"

#define FILE_MAX_RESOLVCONF (64u << 10)
#define FILE_MAX_HOSTS (1u << 20)
#define HEARTBEAT_INTERVAL_MS 2000
#define HEARTBEAT_TIMEOUT_MS 6000
#define PARENT_DEFER_ACCEPT_S 1 /* TCP_DEFER_ACCEPT: a silent client waits */

struct parent parent;

int parent_children(struct child ***out)
{
	static struct child *kids[1 + CONF_WORKERS_MAX];
	int n = 0;

	kids[n++] = &parent.ruleset;
	for (int i = 0; i < parent.nfronts; i++)
		kids[n++] = &parent.fronts[i];
	*out = kids;
	return n;
}

static void parent_read_resolver_files(void)
{
	if (readfile_at(AT_FDCWD, "/etc/resolv.conf", FILE_MAX_RESOLVCONF,
			&parent.resolvconf, NULL) < 0)
		LOGW("/etc/resolv.conf: %s", readfile_strerror(errno));
	if (readfile_at(AT_FDCWD, "/etc/hosts", FILE_MAX_HOSTS, &parent.hosts,
			NULL) < 0)
		LOGW("/etc/hosts: %s", readfile_strerror(errno));
}

static const char *listener_kind_name(int kind)
{
	switch (kind) {
	case LISTENER_HTTP:
		return "http";
	case LISTENER_FORWARD:
		return "forward";
	case LISTENER_API:
		return "api";
	case LISTENER_TPROXY:
		return "tproxy";
	default:
		return "socks";
	}
}

static void parent_listen_opts(int fd, int family, int kind)
{
	int one = 1, zero = 0, qlen = SOMAXCONN;

	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (parent.conf.reuseport)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
				 sizeof(one));
	if (family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
				 sizeof(zero));
	/* inherited by every accepted socket (Linux): no per-connection
	 * setsockopt calls in the children */
	if (parent.conf.tcp_nodelay)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (parent.conf.tcp_keepalive)
		(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one,
				 sizeof(one));
	if (parent.conf.tcp_sndbuf > 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF,
				 &parent.conf.tcp_sndbuf, sizeof(int));
	if (parent.conf.tcp_rcvbuf > 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF,
				 &parent.conf.tcp_rcvbuf, sizeof(int));
	if (parent.conf.tcp_fastopen && kind != LISTENER_API)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen,
				 sizeof(qlen));
	/* SOCKS and HTTP clients speak first: the kernel hands over a
	 * connection once its first bytes are in (or after a second without
	 * any), so accepting it and reading the request take one wakeup.
	 * Not for -f, whose clients may wait for the server to speak. */
	if (kind == LISTENER_SOCKS || kind == LISTENER_HTTP)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT,
				 &(int){ PARENT_DEFER_ACCEPT_S }, sizeof(int));
}

/* One listening socket on ss (its port filled in once the first of a
 * group is bound on port 0). reuse: one of several for the workers. */
static int parent_listen_one(struct sockaddr_storage *ss, socklen_t len,
			     int kind, bool reuse, const char *addr)
{
	int fd = socket(ss->ss_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);

	if (fd < 0) {
		LOGF("socket: %s", strerror(errno));
		return -1;
	}
	parent_listen_opts(fd, ss->ss_family, kind);
	if (reuse)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &(int){ 1 },
				 sizeof(int));
	/* --tproxy: accept connections to any address that policy routing
	 * delivers here (needs CAP_NET_ADMIN, now only: not kept) */
	if (kind == LISTENER_TPROXY &&
	    setsockopt(fd, ss->ss_family == AF_INET6 ? SOL_IPV6 : SOL_IP,
		       ss->ss_family == AF_INET6 ? IPV6_TRANSPARENT
						 : IP_TRANSPARENT,
		       &(int){ 1 }, sizeof(int)) < 0) {
		LOGF("--tproxy: IP_TRANSPARENT on %s: %s (needs "
		     "CAP_NET_ADMIN)",
		     addr, strerror(errno));
		close(fd);
		return -1;
	}
	if (bind(fd, (struct sockaddr *)ss, len) < 0 ||
	    listen(fd, SOMAXCONN) < 0 ||
	    getsockname(fd, (struct sockaddr *)ss, &len) < 0) {
		if (errno == EADDRINUSE)
			LOGF("listen on %s (%s): %s (another program has "
			     "this port: choose another)",
			     addr, listener_kind_name(kind), strerror(errno));
		else
			LOGF("listen on %s (%s): %s", addr,
			     listener_kind_name(kind), strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int parent_bind(const char *addr, int kind)
{
	struct sockaddr_storage ss;
	int len = addr_parse_listen(addr, &ss);
	/* the workers' copies: one socket each, the kernel spreads new
	 * connections over them (the API has one process) */
	int n = kind == LISTENER_API ? 1 : parent.conf.workers;
	struct plistener *l;

	if (len < 0 || parent.nls == PARENT_MAX_LISTENERS) {
		LOGF("invalid listen address '%s'", addr);
		return -1;
	}
	if (n < 1)
		n = 1;
	l = &parent.ls[parent.nls];
	for (l->nfd = 0; l->nfd < n; l->nfd++) {
		int fd = parent_listen_one(&ss, (socklen_t)len, kind, n > 1,
					   addr);

		if (fd < 0) {
			while (l->nfd > 0)
				close(l->fd[--l->nfd]);
			return -1;
		}
		l->fd[l->nfd] = fd;
	}
	parent.nls++;
	l->kind = kind;
	snprintf(l->addr, sizeof(l->addr), "%s", addr);
	LOGN("listen: %s (%s)", addr, listener_kind_name(kind));
	if (addr[0] == ':' || strncmp(addr, "0.0.0.0:", 8) == 0 ||
	    strncmp(addr, "[::]:", 5) == 0)
		LOGW("%s: binding to a wildcard address may be insecure", addr);
	return 0;
}

static int parent_bind_all(void)
{
	const struct config *c = &parent.conf;

	if (c->listen[0]) {
		int kind = c->transparent  ? LISTENER_TPROXY
			   : c->forward[0] ? LISTENER_FORWARD
			   : c->http_only ? LISTENER_HTTP
					  : LISTENER_SOCKS;
		if (parent_bind(c->listen, kind) < 0)
			return -1;
	}
	if (c->http_listen[0] && parent_bind(c->http_listen, LISTENER_HTTP) < 0)
		return -1;
	return 0;
}

static void parent_close_listeners(void)
{
	for (int i = 0; i < parent.nls; i++)
		for (int k = 0; k < parent.ls[i].nfd; k++)
			close(parent.ls[i].fd[k]);
	parent.nls = 0;
	parent_api_close();
}

static void parent_status(void)
{
	notify_send("STATUS=serving; restarts: front %u, ruleset %u",
		    parent_fronts_restarts(), parent.ruleset.restarts);
}

static void parent_sandbox_self(void)
{
	struct sandbox_conf sc = {
		.role = ROLE_PARENT,
		.debug = parent.front_sb.debug != 0,
		.parent_keep_eff = priv_caps_needed(&parent.conf),
		.parent_state_dirfd = state_dfd(),
		.parent_pidfile_dirfd = daemon_pidfile_dirfd(),
		.parent_bind_listen = parent.conf.socks5_bind,
		/* commands would inherit the parent's filter and die on the
		 * first call it does not allow */
		.parent_no_filter = parent.conf.enable_execute,
		.parent_keep_prm = priv_caps_needed(&parent.conf) |
				   identity_respawn_caps(&parent.front_sb,
							 &parent.ruleset_sb),
	};
	char skipped[256] = "", err[256] = "";

	if (sandbox_apply(&sc, skipped, sizeof(skipped), err, sizeof(err)) <
	    0) {
		LOGF("parent sandbox: %s", err);
		exit(1);
	}
	if (skipped[0])
		LOGN("parent sandbox: not applied: %s", skipped);
	parent.sandboxed = true;
}

/* READY=1 once the listeners are bound and both children serve. */
void parent_child_ready(struct child *c)
{
	(void)c;
	parent_api_status();
	if (!parent_fronts_ready() || !parent.ruleset.ch.ready)
		return;
	if (!parent.ready_sent) {
		parent.ready_sent = true;
		daemon_pidfile_write();
		parent_sandbox_self();
		parent_api_status(); /* with the parent's sandbox now */
		notify_send("READY=1\nSTATUS=serving");
		LOGN("serving");
		daemon_ready(); /* -d: the process that was started exits 0 */
	} else {
		parent_status();
	}
}

void parent_reload_done(void)
{
	notify_send("READY=1\nSTATUS=serving; restarts: front %u, ruleset %u",
		    parent_fronts_restarts(), parent.ruleset.restarts);
}

bool parent_start_given_up(struct child *c)
{
	if (parent.ready_sent || c->ch.ready ||
	    c->restarts < PROC_START_ATTEMPTS)
		return false;
	LOGF("the %s%s failed to start %u times", c->name,
	     c->role == ROLE_FRONT ? "" : " process", c->restarts + 1);
	parent_finish(1);
	return true;
}

void parent_check_exit(void)
{
	struct child **children;
	int n = parent_children(&children);

	for (int i = 0; i < n; i++)
		if (children[i]->running)
			return;
	LOGN("exiting");
	event_base_loopexit(parent.base, NULL);
}

static void parent_heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
	int64_t now = monotime_ms();
	bool stalled = now - parent.last_beat_ms > HEARTBEAT_TIMEOUT_MS / 2;
	struct child **children;
	int n = parent_children(&children);

	(void)fd;
	(void)what;
	(void)arg;
	if (stalled)
		LOGN("the parent was held up for %lld ms; heartbeat deadlines "
		     "restart now",
		     (long long)(now - parent.last_beat_ms));
	parent.last_beat_ms = now;
	for (int i = 0; i < n; i++) {
		struct child *c = children[i];
		if (c->running)
			proc_log_report(c);
		if (!c->running || !c->ch.ready || !c->ch.open)
			continue;
		/* the parent itself was stopped or starved: the children's
		 * answers may be waiting unread; give them a new chance */
		if (stalled)
			c->ch.last_pong_ms = now;
		if (now - c->ch.last_pong_ms > HEARTBEAT_TIMEOUT_MS) {
			proc_kill(c, "stopped answering the heartbeat");
			continue;
		}
		chanev_ping(&c->ch, ++parent.ping_seq);
	}
}

/* ---- stopping ---- */

static void parent_stop_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct child **children;
	int n = parent_children(&children);

	(void)fd;
	(void)what;
	(void)arg;
	LOGW("children did not stop in time; killing them");
	for (int i = 0; i < n; i++)
		if (children[i]->running)
			kill(children[i]->pid, SIGKILL);
}

static void parent_stop(int sig)
{
	struct msg_shutdown sd = { .drain_seconds = parent.drain_seconds };
	struct timeval tv = { (time_t)parent.drain_seconds + 5, 0 };
	struct child **children;
	int n = parent_children(&children);

	if (parent.stopping && sig == 0)
		return; /* os.exit() while stopping: already on the way */
	if (parent.stopping) {
		LOGN("signal %d again: stopping now", sig);
		parent_stop_timeout(-1, 0, NULL);
		return;
	}
	parent.stopping = true;
	if (sig != 0)
		LOGN("signal %d: stopping (draining for up to %.0fs)", sig,
		     parent.drain_seconds);
	else
		LOGN("os.exit(%d) from the ruleset: stopping (draining for "
		     "up to %.0fs)",
		     parent.exit_code, parent.drain_seconds);
	state_flush();
	execute_kill_all(0);
	notify_send("STOPPING=1");
	parent_close_listeners();
	event_del(parent.heartbeat);
	for (int i = 0; i < n; i++) {
		struct child *c = children[i];

		if (c->respawn_ev != NULL)
			evtimer_del(c->respawn_ev);
		if (!c->running)
			continue;
		proc_stopping(c);
		if (c->ch.open)
			chanev_send(&c->ch,
				    c->role == ROLE_FRONT ? MSG_SHUTDOWN
							  : MSG_R_SHUTDOWN,
				    0, &sd, sizeof(sd), -1);
		else
			kill(c->pid, SIGKILL);
	}
	parent.stop_timer = evtimer_new(parent.base, parent_stop_timeout, NULL);
	evtimer_add(parent.stop_timer, &tv);
	parent_check_exit();
}

static void parent_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct child **children;
	int n = parent_children(&children);

	(void)what;
	(void)arg;
	switch (sig) {
	case SIGCHLD:
		proc_reap(children, n, execute_reaped);
		break;
	case SIGTERM:
	case SIGINT:
		parent_stop((int)sig);
		break;
	case SIGHUP:
		if (parent.stopping)
			break;
		notify_reloading();
		parent_read_resolver_files();
		parent_fronts_resolver();
		parent_api_reload();
		parent_tls_reload();
		parent_ruleset_reload();
		break;
	default:
		break;
	}
}

static int parent_open_exe(void)
{
	int fd = open("/proc/self/exe", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		LOGF("cannot open /proc/self/exe (is /proc mounted?): %s",
		     strerror(errno));
	return fd;
}

static void parent_setup_log(void)
{
	switch (parent.cli.log_sink) {
	case CLI_LOG_STDOUT:
		log_init("main", 1, false);
		break;
	case CLI_LOG_DISCARD:
		log_init("main", -1, false);
		break;
	case CLI_LOG_SYSLOG:
		log_init("main", 2, false);
		log_use_syslog();
		break;
	default:
		log_init("main", 2, false);
	}
	log_level = parent.conf.loglevel;
	/* -C and --dump-config print their verdict (or table) only */
	log_set_verdict(parent.cli.check || parent.cli.dump_config);
}

static int parent_parse(int argc, char **argv, int *exit_code)
{
	char err[512] = "";

	config_defaults(&parent.conf);
	/* with -c the command line may be incomplete: the merged settings
	 * are checked once the file was evaluated (it starts from these
	 * defaults, the derived ones included) */
	if (cli_parse(argc, argv, &parent.conf, &parent.cli, err,
		      sizeof(err)) == 0) {
		limits_derive(&parent.conf, parent.nofile,
			      parent.cli.max_sessions_given,
			      parent.cli.startups_given);
		limits_workers(&parent.conf);
	} else {
		parent.cli.help = parent.cli.version = false;
	}
	if (err[0] != '\0' ||
	    (!parent.cli.help && !parent.cli.version &&
	     !parent.conf.config_file[0] &&
	     config_check(&parent.conf, err, sizeof(err)) < 0)) {
		fprintf(stderr, "neosocksd: %s\ntry '%s --help'\n", err,
			argv[0]);
		*exit_code = 2;
		return -1;
	}
	*exit_code = 0;
	parent.drain_seconds = parent.conf.drain_timeout;
	if (parent.cli.help) {
		cli_usage(stdout, argv[0]);
		return -1;
	}
	if (parent.cli.version) {
		printf("neosocksd %s\n", NEOSOCKSD_VERSION);
		return -1;
	}
	if (parent.cli.dump_config && !parent.conf.config_file[0]) {
		config_dump(&parent.conf, stdout);
		return -1;
	}
	if (parent.conf.ruleset[0] && parent.conf.config_file[0]) {
		fprintf(stderr, "neosocksd: -r and -c are mutually exclusive "
				"(set 'ruleset' in the config file)\n");
		*exit_code = 2;
		return -1;
	}
	return 0;
}

void parent_exit_request(int code)
{
	if (parent.stopping)
		return;
	parent.exit_code = code;
	parent.exit_requested = true;
	parent_stop(0);
}

void parent_finish(int code)
{
	struct child **children;
	int n = parent_children(&children);

	/* after os.exit(), its status stands (a load it interrupted may
	 * report a failure on the way down) */
	if (!parent.exit_requested)
		parent.exit_code = code;
	parent.stopping = true;
	/* quietly: the line that said why the daemon stops was written */
	for (int i = 0; i < n; i++)
		if (children[i]->running)
			proc_kill(children[i], NULL);
	event_base_loopexit(parent.base, NULL);
}

int parent_daemonize(void)
{
	char err[512];
	bool late = parent.ruleset.running;

	if (daemon_abs_paths(&parent.conf, err, sizeof(err)) < 0) {
		LOGF("%s", err);
		return -1;
	}
	if (daemon_start(!parent.cli.log_given,
			 late ? parent.ruleset.pid : 0) < 0)
		return -1;
	parent.daemonized = true;
	if (!late)
		return 0;
	if (event_reinit(parent.base) < 0) {
		LOGF("-d: event_reinit failed");
		return -1;
	}
	proc_forget(&parent.ruleset);
	return proc_spawn(&parent.ruleset);
}

void parent_serve(void)
{
	if (daemon_pidfile_open(parent.conf.pidfile) < 0) {
		parent_finish(1);
		return;
	}
	if (parent_bind_all() < 0 || parent_api_bind() < 0 ||
	    parent_fronts_start() < 0) {
		parent_finish(1);
		return;
	}
}

static int parent_setup_events(void)
{
	static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP };
	static const struct timeval hb = { HEARTBEAT_INTERVAL_MS / 1000,
					   (HEARTBEAT_INTERVAL_MS % 1000) *
						   1000 };

	parent.base = event_base_new();
	if (parent.base == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct event *ev = evsignal_new(parent.base, sigs[i],
						parent_signal_cb, NULL);
		if (ev == NULL || evsignal_add(ev, NULL) < 0)
			return -1;
	}
	parent.heartbeat = event_new(parent.base, -1, EV_PERSIST,
				     parent_heartbeat_cb, NULL);
	if (parent.heartbeat == NULL || event_add(parent.heartbeat, &hb) < 0)
		return -1;
	parent.last_beat_ms = monotime_ms();
	return 0;
}

int parent_main(int argc, char **argv)
{
	char err[512], warn[512];
	const char *src;
	long nofile_was;
	int exe_fd, code;

	parent.nofile = limits_raise_nofile(&nofile_was);
	if (parent_parse(argc, argv, &code) < 0)
		return code;
	parent_setup_log();
	chanev_log_setup();
	signal(SIGPIPE, SIG_IGN);
	LOGN("neosocksd %s starting", NEOSOCKSD_VERSION);
	LOGN("descriptors: %ld%s; at most %d sessions (-m), %d:%d:%d "
	     "half-open (--max-startups)",
	     parent.nofile,
	     parent.nofile > nofile_was ? " (raised to the hard limit)" : "",
	     parent.conf.max_sessions, parent.conf.startup_limit_start,
	     parent.conf.startup_limit_rate, parent.conf.startup_limit_full);
	notify_init();
	if (identity_resolve(&parent.conf, &parent.front_sb, &parent.ruleset_sb,
			     err, sizeof(err), warn, sizeof(warn)) < 0) {
		/* -u, --ruleset-user, --jail: the command line's, so a usage
		 * error, whatever the reason (docs/usage.md) */
		LOGF("%s", err);
		return 2;
	}
	if (warn[0])
		LOGW("%s", warn);
	/* with -c, once the file has given the settings */
	if (!parent.conf.config_file[0] && parent_tls_load() < 0)
		return 1;
	if (parent.cli.check && !parent.conf.config_file[0] &&
	    !parent.conf.ruleset[0]) {
		/* flags and users checked; nothing to load */
		printf("neosocksd: configuration OK\n");
		return 0;
	}
	if (parent.conf.daemonize && !parent.cli.check &&
	    !parent.cli.dump_config && parent_daemonize() < 0)
		return 1;
	exe_fd = parent_open_exe();
	if (exe_fd < 0)
		return 1;
	parent_read_resolver_files();
	src = parent.conf.config_file[0] ? parent.conf.config_file
					 : parent.conf.ruleset;
	if (strcmp(src, "-") == 0) {
		/* standard input, once: a SIGHUP loads the same text again */
		if (readfile_stream(STDIN_FILENO, MSG_LUA_SRC_MAX,
				    &parent.stdin_src) < 0) {
			LOGF("standard input: %s", readfile_strerror(errno));
			return 1;
		}
		parent.ruleset_good.data = malloc(parent.stdin_src.len + 1);
		if (parent.ruleset_good.data == NULL)
			return 1;
		memcpy(parent.ruleset_good.data, parent.stdin_src.data,
		       parent.stdin_src.len + 1);
		parent.ruleset_good.len = parent.stdin_src.len;
	} else if (src[0] && (readfile_at(AT_FDCWD, src, MSG_LUA_SRC_MAX,
					  &parent.ruleset_good, NULL) < 0 ||
			      parent.ruleset_good.data == NULL)) {
		/* absent: readfile_at() left ENOENT in errno */
		LOGF("%s: %s", src, readfile_strerror(errno));
		return 1;
	}
	parent_api_init();
	if (state_load() < 0)
		return 1;
	if (parent_setup_events() < 0) {
		LOGF("cannot set up the event loop");
		return 1;
	}
	proc_setup(parent.base, exe_fd);
	parent_ruleset_init();
	/* the ruleset process first: with -c it decides the settings, and
	 * nothing is bound before they were checked. Each spawn hands out a
	 * fresh front<->ruleset channel once both exist. */
	if (proc_spawn(&parent.ruleset) < 0)
		return 1;
	if (!parent.conf.config_file[0] && !parent.cli.check)
		parent_serve();
	event_base_dispatch(parent.base);
	if (parent.daemonize_pending) {
		parent.daemonize_pending = false;
		if (parent_daemonize() < 0)
			return 1;
		parent_serve();
		event_base_dispatch(parent.base);
	}
	state_flush();
	daemon_pidfile_remove();
	return parent.exit_code;
}
