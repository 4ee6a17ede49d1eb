/* parent: the small privileged process. It parses the command line, reads
 * the files the children need, binds every listener, starts and
 * supervises the children, talks to systemd, and runs no protocol code. */
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

#include <event2/event.h>

#include "common/addr.h"
#include "common/chanev.h"
#include "common/config.h"
#include "common/log.h"
#include "common/msg.h"
#include "privsep/cli.h"
#include "privsep/notify.h"
#include "privsep/proc.h"

#define PARENT_MAX_LISTENERS 4
#define DRAIN_SECONDS 10.0
#define FILE_MAX_RESOLVCONF (64u << 10)
#define FILE_MAX_HOSTS (1u << 20)

struct plistener {
	int fd;
	int kind; /* enum listener_kind */
	char addr[CONF_ADDR_MAX];
};

static struct {
	struct config conf;
	struct cli cli;
	struct event_base *base;
	struct plistener ls[PARENT_MAX_LISTENERS];
	int nls;
	char *resolvconf, *hosts;
	size_t resolvconf_len, hosts_len;
	struct child front;
	bool stopping;
	int exit_code;
	struct event *stop_timer;
} P;

static struct child *parent_children[] = { &P.front };
#define NCHILDREN ((int)(sizeof(parent_children) / sizeof(parent_children[0])))

/* Read a whole file up to max bytes. A missing file is an empty one. */
static int parent_read_file(const char *path, size_t max, char **out,
			    size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	char *buf;
	size_t n = 0;

	*out = NULL;
	*len = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size > max) {
		close(fd);
		errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
		return -1;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return -1;
	}
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

static void parent_read_resolver_files(void)
{
	free(P.resolvconf);
	free(P.hosts);
	if (parent_read_file("/etc/resolv.conf", FILE_MAX_RESOLVCONF,
			     &P.resolvconf, &P.resolvconf_len) < 0)
		LOGW("/etc/resolv.conf: %s", strerror(errno));
	if (parent_read_file("/etc/hosts", FILE_MAX_HOSTS, &P.hosts,
			     &P.hosts_len) < 0)
		LOGW("/etc/hosts: %s", strerror(errno));
}

static int parent_bind(const char *addr, int kind)
{
	struct sockaddr_storage ss;
	int len = addr_parse_listen(addr, &ss);
	int fd, one = 1, zero = 0, qlen = SOMAXCONN;
	struct plistener *l;

	if (len < 0 || P.nls == PARENT_MAX_LISTENERS) {
		LOGF("invalid listen address '%s'", addr);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    IPPROTO_TCP);
	if (fd < 0) {
		LOGF("socket: %s", strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (P.conf.reuseport)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
				 sizeof(one));
	if (ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
				 sizeof(zero));
	/* inherited by every accepted socket (Linux): no per-connection
	 * setsockopt calls in the front */
	if (P.conf.tcp_nodelay)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (P.conf.tcp_keepalive)
		(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one,
				 sizeof(one));
	if (P.conf.tcp_sndbuf > 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &P.conf.tcp_sndbuf,
				 sizeof(int));
	if (P.conf.tcp_rcvbuf > 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &P.conf.tcp_rcvbuf,
				 sizeof(int));
	if (P.conf.tcp_fastopen && kind != LISTENER_API)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen,
				 sizeof(qlen));
	if (bind(fd, (struct sockaddr *)&ss, (socklen_t)len) < 0 ||
	    listen(fd, SOMAXCONN) < 0) {
		LOGF("listen on %s: %s", addr, strerror(errno));
		close(fd);
		return -1;
	}
	l = &P.ls[P.nls++];
	l->fd = fd;
	l->kind = kind;
	snprintf(l->addr, sizeof(l->addr), "%s", addr);
	LOGN("listen: %s (%s)", addr,
	     kind == LISTENER_HTTP      ? "http"
	     : kind == LISTENER_FORWARD ? "forward"
	     : kind == LISTENER_API     ? "api"
					: "socks");
	if (addr[0] == ':' || strncmp(addr, "0.0.0.0:", 8) == 0 ||
	    strncmp(addr, "[::]:", 5) == 0)
		LOGW("%s: binding to a wildcard address may be insecure", addr);
	return 0;
}

static int parent_bind_all(void)
{
	const struct config *c = &P.conf;

	if (c->listen[0]) {
		int kind = c->forward[0] ? LISTENER_FORWARD
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
	for (int i = 0; i < P.nls; i++)
		close(P.ls[i].fd);
	P.nls = 0;
}

/* ---- the front ---- */

static void front_spawned(struct child *c)
{
	struct chanev *ch = &c->ch;
	int bad = 0;

	bad |= chanev_send(ch, MSG_CONFIG, 0, &P.conf, sizeof(P.conf), -1);
	bad |= chanev_send(ch, MSG_RESOLVCONF, 0, P.resolvconf,
			   P.resolvconf_len, -1);
	bad |= chanev_send(ch, MSG_HOSTS, 0, P.hosts, P.hosts_len, -1);
	for (int i = 0; i < P.nls; i++) {
		struct msg_listener ml = { .kind = (uint32_t)P.ls[i].kind };
		int fd = fcntl(P.ls[i].fd, F_DUPFD_CLOEXEC, 0);

		if (fd < 0) {
			bad = -1;
			break;
		}
		bad |= chanev_send(ch, MSG_LISTENER, 0, &ml, sizeof(ml), fd);
	}
	bad |= chanev_send(ch, MSG_START, 0, NULL, 0, -1);
	if (bad)
		proc_kill(c, "cannot send the configuration");
}

static void parent_status(void)
{
	notify_send("STATUS=serving; front restarts %u", P.front.restarts);
}

static void front_msg(struct chanev *ce, struct msg *m, void *arg)
{
	struct child *c = arg;

	(void)ce;
	switch (m->type) {
	case MSG_READY:
		if (c->ready) {
			proc_kill(c, "READY twice");
			return;
		}
		c->ready = true;
		LOGD("front ready");
		if (c->restarts == 0)
			notify_send("READY=1\nSTATUS=serving");
		else
			parent_status();
		return;
	case MSG_PONG:
	case MSG_DRAINED:
		return;
	default:
		proc_kill(c, "message not handled");
	}
}

static void parent_check_exit(void)
{
	for (int i = 0; i < NCHILDREN; i++)
		if (parent_children[i]->running)
			return;
	LOGN("exiting");
	event_base_loopexit(P.base, NULL);
}

static void front_exited(struct child *c)
{
	if (P.stopping) {
		parent_check_exit();
		return;
	}
	proc_schedule_respawn(c);
}

/* ---- signals ---- */

static void parent_stop_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	LOGW("children did not stop in time; killing them");
	for (int i = 0; i < NCHILDREN; i++)
		if (parent_children[i]->running)
			kill(parent_children[i]->pid, SIGKILL);
}

static void parent_stop(int sig)
{
	struct msg_shutdown sd = { .drain_seconds = DRAIN_SECONDS };
	struct timeval tv = { (time_t)DRAIN_SECONDS + 5, 0 };

	if (P.stopping) {
		LOGN("signal %d again: stopping now", sig);
		parent_stop_timeout(-1, 0, NULL);
		return;
	}
	P.stopping = true;
	LOGN("signal %d: stopping", sig);
	notify_send("STOPPING=1");
	parent_close_listeners();
	for (int i = 0; i < NCHILDREN; i++) {
		struct child *c = parent_children[i];
		if (c->respawn_ev != NULL)
			evtimer_del(c->respawn_ev);
		if (c->running && c->ch.open)
			chanev_send(&c->ch, MSG_SHUTDOWN, 0, &sd, sizeof(sd), -1);
		else if (c->running)
			kill(c->pid, SIGKILL);
	}
	P.stop_timer = evtimer_new(P.base, parent_stop_timeout, NULL);
	evtimer_add(P.stop_timer, &tv);
	parent_check_exit();
}

static void parent_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	switch (sig) {
	case SIGCHLD:
		proc_reap(parent_children, NCHILDREN);
		break;
	case SIGTERM:
	case SIGINT:
		parent_stop((int)sig);
		break;
	case SIGHUP:
		LOGN("SIGHUP: re-reading resolver files");
		parent_read_resolver_files();
		break;
	default:
		break;
	}
}

static int parent_open_exe(void)
{
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		LOGF("cannot open /proc/self/exe (is /proc mounted?): %s",
		     strerror(errno));
	return fd;
}

static int parent_setup_log(void)
{
	switch (P.cli.log_sink) {
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
	log_level = P.conf.loglevel;
	return 0;
}

int parent_main(int argc, char **argv)
{
	static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP };
	char err[512];
	int exe_fd;

	config_defaults(&P.conf);
	if (cli_parse(argc, argv, &P.conf, &P.cli, err, sizeof(err)) < 0) {
		fprintf(stderr, "neosocksd: %s\ntry '%s --help'\n", err,
			argv[0]);
		return 2;
	}
	if (P.cli.help) {
		cli_usage(stdout, argv[0]);
		return 0;
	}
	if (P.cli.version) {
		printf("neosocksd %s\n", NEOSOCKSD_VERSION);
		return 0;
	}
	if (config_check(&P.conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "neosocksd: %s\ntry '%s --help'\n", err,
			argv[0]);
		return 2;
	}
	if (P.cli.dump_config) {
		config_dump(&P.conf, stdout);
		return 0;
	}
	parent_setup_log();
	chanev_log_setup();
	signal(SIGPIPE, SIG_IGN);
	LOGN("neosocksd %s starting", NEOSOCKSD_VERSION);
	notify_init();
	exe_fd = parent_open_exe();
	if (exe_fd < 0)
		return 1;
	parent_read_resolver_files();
	if (parent_bind_all() < 0)
		return 1;
	P.base = event_base_new();
	if (P.base == NULL) {
		LOGF("event_base_new failed");
		return 1;
	}
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct event *ev = evsignal_new(P.base, sigs[i],
						parent_signal_cb, NULL);
		if (ev == NULL || evsignal_add(ev, NULL) < 0) {
			LOGF("cannot handle signal %d", sigs[i]);
			return 1;
		}
	}
	proc_setup(P.base, exe_fd);
	P.front = (struct child){
		.role = ROLE_FRONT,
		.kind = CHAN_PARENT_FRONT,
		.logfd = -1,
		.on_spawn = front_spawned,
		.on_msg = front_msg,
		.on_exit = front_exited,
	};
	if (proc_spawn(&P.front) < 0)
		return 1;
	event_base_dispatch(P.base);
	return P.exit_code;
}
