/* front: the data-plane process. It receives its configuration and its
 * listening sockets from the parent over the channel on fd 3, then serves
 * until the parent tells it to stop or goes away. It never binds or
 * listens itself. */
#include "front/front.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>

#include "common/chanev.h"
#include "common/log.h"
#include "common/msg.h"
#include "front/dial.h"
#include "front/front_parent.h"
#include "front/front_priv.h"
#include "front/front_ruleset.h"
#include "front/httpproxy.h"
#include "front/listener.h"
#include "front/relay.h"
#include "front/resolver.h"
#include "front/route.h"
#include "front/rpcdial.h"
#include "front/selfdial.h"
#include "front/session.h"
#include "front/socks.h"
#include "front/udp_assoc.h"
#include "privsep/sandbox.h"

static struct {
	struct event_base *base;
	struct front_conf fc;
	bool started, draining;
	char *resolvconf, *hosts;
	size_t resolvconf_len, hosts_len;
	struct event *drain_timer, *drain_check;
} front;

void front_exit(int code)
{
	chanev_drain(front_parent(), 1000);
	exit(code);
}

static int front_compile(struct front_conf *fc)
{
	const struct config *c = &fc->c;
	const char *why = "";

	fc->timeout.tv_sec = (time_t)c->timeout;
	fc->timeout.tv_usec =
		(suseconds_t)((c->timeout - (double)fc->timeout.tv_sec) * 1e6);
	if (c->proxy[0] &&
	    proxyuri_parse_chain(fc->hops, PROXYCHAIN_MAX, &fc->nhops,
				 c->proxy, strlen(c->proxy), &why) < 0) {
		LOGE("-x: %s", why);
		return -1;
	}
	/* for logs: what does not fit is left out */
	(void)proxyuri_format_chain(fc->hops, fc->nhops, "->", fc->chain_text,
				    sizeof(fc->chain_text));
	fc->use_ruleset = c->ruleset[0] != '\0' || c->config_file[0] != '\0';
	if (strcmp(c->forward, ":") == 0 && fc->use_ruleset) {
		/* -f ":": the ruleset names the target of every connection
		 * (its resolve callback is asked with ":") */
		memset(&fc->forward, 0, sizeof(fc->forward));
		fc->forward.type = ADDR_DOMAIN;
		fc->has_forward = true;
	} else if (c->forward[0]) {
		if (addr_parse(&fc->forward, c->forward, strlen(c->forward),
			       -1) < 0) {
			LOGE("-f: bad address");
			return -1;
		}
		(void)addr_unmap(&fc->forward); /* as a client's target */
		fc->has_forward = true;
	}
	return 0;
}

/* The soft descriptor limit raised to the hard one (as the parent did),
 * returned. */
static long front_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1024;
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit want = { rl.rlim_max, rl.rlim_max };

		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			rl.rlim_cur = rl.rlim_max;
	}
	return rl.rlim_cur > INT_MAX ? INT_MAX : (long)rl.rlim_cur;
}

static int front_sandbox(const struct msg_sandbox *sb)
{
	struct sandbox_conf sc = {
		.role = ROLE_FRONT,
		.drop_user = sb->drop_user != 0,
		.uid = sb->uid,
		.gid = sb->gid,
		.debug = sb->debug != 0,
	};
	char skipped[256] = "", err[256] = "";

	if (sandbox_apply(&sc, skipped, sizeof(skipped), err, sizeof(err)) <
	    0) {
		LOGE("sandbox: %s", err);
		return -1;
	}
	if (skipped[0])
		LOGN("sandbox: not applied: %s", skipped);
	return 0;
}

int front_start(const struct msg_sandbox *sb)
{
	const struct config *c = &front.fc.c;
	struct dial_policy pol = {
		.block_loopback = c->block_loopback,
		.block_multicast = c->block_multicast,
		.block_local = c->block_local,
		.block_global = c->block_global,
		.tcp_nodelay = c->tcp_nodelay,
		.tcp_keepalive = c->tcp_keepalive,
		.fastopen_connect = c->tcp_fastopen_connect,
		.sndbuf = c->tcp_sndbuf,
		.rcvbuf = c->tcp_rcvbuf,
	};
	static const struct dial_broker broker = { front_priv_request,
						   front_priv_cancel };

	if (front_compile(&front.fc) < 0)
		return -1;
	if (c->netdev[0] != '\0' || c->mark > 0)
		pol.broker = &broker; /* outbound sockets from the parent */
	front_priv_setup(front_raise_nofile(), (unsigned)c->workers);
	evutil_secure_rng_init();
	if (resolver_init(front.base, c->resolve_pf,
			  front.resolvconf ? front.resolvconf : "",
			  front.resolvconf_len, front.hosts ? front.hosts : "",
			  front.hosts_len, c->nameserver) < 0) {
		LOGE("resolver setup failed");
		return -1;
	}
	free(front.resolvconf);
	free(front.hosts);
	front.resolvconf = front.hosts = NULL;
	selfdial_setup(c);
	dial_setup(front.base, &pol);
	relay_setup(c->pipe);
	session_setup(front.base, &front.fc);
	front_ruleset_setup(front.base);
	rpcdial_setup(front.base, &front.fc);
	socks_set_auth_required(c->auth_required);
	socks_set_commands(c->socks5_bind, c->socks5_udp);
	udp_assoc_setup(front.base, &front.fc);
	httpproxy_set_auth_required(c->auth_required);
	httpproxy_setup(front.base, &front.fc);
	if (listener_start(front.base, &front.fc) < 0) {
		LOGE("cannot watch listeners: %s", strerror(errno));
		return -1;
	}
	/* everything that touches files or needs rights is done: jail */
	if (front_sandbox(sb) < 0)
		return -1;
	front.started = true;
	return chanev_send(front_parent(), MSG_READY, 0, NULL, 0, -1);
}

static void front_drained(void)
{
	LOGD("drained");
	chanev_send(front_parent(), MSG_DRAINED, 0, NULL, 0, -1);
	front_exit(0);
}

static void front_drain_check_cb(evutil_socket_t fd, short what, void *arg)
{
	static const struct timeval tick = { 0, 100000 };

	(void)fd;
	(void)what;
	(void)arg;
	if (session_count() == 0)
		front_drained();
	else
		evtimer_add(front.drain_check, &tick);
}

static void front_drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	LOGN("drain deadline: closing %u sessions", session_count());
	session_close_all("shutdown");
	front_drained();
}

void front_shutdown(const struct msg_shutdown *m)
{
	struct timeval tv;

	if (front.draining)
		return;
	front.draining = true;
	listener_stop();
	session_drain(); /* idle keep-alive connections close now */
	LOGN("stopped accepting; draining %u sessions for up to %.1fs",
	     session_count(), m->drain_seconds);
	tv.tv_sec = (time_t)m->drain_seconds;
	tv.tv_usec = (suseconds_t)((m->drain_seconds - (double)tv.tv_sec) * 1e6);
	front.drain_timer =
		evtimer_new(front.base, front_drain_timeout_cb, NULL);
	front.drain_check = evtimer_new(front.base, front_drain_check_cb, NULL);
	evtimer_add(front.drain_timer, &tv);
	front_drain_check_cb(-1, 0, NULL);
}

static int front_copy_blob(char **dst, size_t *dlen, const void *data,
			   size_t len)
{
	free(*dst);
	*dst = malloc(len + 1);
	if (*dst == NULL)
		return -1;
	memcpy(*dst, data, len);
	(*dst)[len] = '\0';
	*dlen = len;
	return 0;
}

int front_set_config(const void *data, size_t len)
{
	if (config_validate_wire(data, len) < 0)
		return -1;
	memcpy(&front.fc.c, data, sizeof(front.fc.c));
	log_level = front.fc.c.loglevel;
	return 0;
}

int front_set_resolvconf(const void *data, size_t len)
{
	return front_copy_blob(&front.resolvconf, &front.resolvconf_len, data,
			       len);
}

int front_set_hosts(const void *data, size_t len)
{
	if (front_copy_blob(&front.hosts, &front.hosts_len, data, len) < 0)
		return -1;
	/* after RESOLVCONF; once serving, it is a SIGHUP's reload */
	if (front.started &&
	    resolver_reload(front.resolvconf ? front.resolvconf : "",
			    front.resolvconf_len,
			    front.hosts ? front.hosts : "",
			    front.hosts_len) < 0)
		LOGE("resolver: cannot reload");
	return 0;
}

int front_main(void)
{
	log_init("front", 2, true);
	chanev_log_setup();
	prctl(PR_SET_NAME, "neosocksd-front");
	signal(SIGPIPE, SIG_IGN);
	/* the parent coordinates stopping; a terminal's ^C reaches us too */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	front.base = event_base_new();
	if (front.base == NULL || front_parent_init(front.base) < 0) {
		LOGE("cannot set up the parent channel");
		return 1;
	}
	event_base_dispatch(front.base);
	return 0;
}
