/* front: the data-plane process. It receives its configuration and its
 * listening sockets from the parent over the channel on fd 3, then serves
 * until the parent tells it to stop or goes away. It never binds or
 * listens itself. */
#include "front/front.h"

#include <errno.h>
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
#include "front/httpproxy.h"
#include "front/listener.h"
#include "front/relay.h"
#include "front/resolver.h"
#include "front/route.h"
#include "front/rpcdial.h"
#include "front/selfdial.h"
#include "front/session.h"
#include "front/socks.h"
#include "privsep/sandbox.h"

#define FRONT_CHAN_FD 3

#define PRIV_PENDING_MAX MSG_PRIV_PENDING_MAX /* the parent's cap too */

struct priv_pending {
	uint32_t id;
	struct dialer *d;
};

static struct {
	struct event_base *base;
	struct chanev parent;
	struct priv_pending priv[PRIV_PENDING_MAX];
	unsigned npriv;
	uint32_t priv_next;
	struct front_conf fc;
	bool have_conf, started, draining;
	char *resolvconf, *hosts;
	size_t resolvconf_len, hosts_len;
	struct event *drain_timer, *drain_check;
} front;

/* ---- privileged sockets, brokered by the parent ---- */

uint32_t front_priv_request(int family, struct dialer *d)
{
	struct msg_priv_socket req = { .family = (uint32_t)family };
	uint32_t id;

	if (front.npriv == PRIV_PENDING_MAX)
		return 0;
	id = ++front.priv_next;
	if (id == 0)
		id = ++front.priv_next;
	if (chanev_send(&front.parent, MSG_PRIV_SOCKET, id, &req, sizeof(req),
			-1) < 0)
		return 0;
	front.priv[front.npriv++] = (struct priv_pending){ id, d };
	return id;
}

static struct dialer *front_priv_take(uint32_t id)
{
	for (unsigned i = 0; i < front.npriv; i++) {
		if (front.priv[i].id != id)
			continue;
		struct dialer *d = front.priv[i].d;
		front.priv[i] = front.priv[--front.npriv];
		return d;
	}
	return NULL;
}

void front_priv_cancel(uint32_t id)
{
	(void)front_priv_take(id); /* a late answer's fd is then closed */
}

static void front_priv_reply(const struct msg *m)
{
	struct msg_priv_socket_reply rep;
	struct dialer *d = front_priv_take(m->id);

	memcpy(&rep, m->data, sizeof(rep));
	if (d == NULL) {
		if (m->fd >= 0)
			close(m->fd);
		return;
	}
	if (m->fd < 0 && rep.err == 0)
		rep.err = m->fd_lost ? EMFILE : EPROTO;
	dial_priv_socket(d, m->fd, rep.err);
}

/* The ruleset process broke the protocol: the parent replaces it. */
static void front_peer_fault(void)
{
	chanev_send(&front.parent, MSG_PEER_FAULT, 0, NULL, 0, -1);
}

static void front_exit(int code)
{
	chanev_drain(&front.parent, 1000);
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
	fc->chain_text[0] = '\0';
	for (size_t i = 0, off = 0; i < fc->nhops; i++) {
		int n;

		if (i > 0 && off + 2 < sizeof(fc->chain_text)) {
			memcpy(fc->chain_text + off, "->", 3);
			off += 2;
		}
		n = proxyuri_format(&fc->hops[i], fc->chain_text + off,
				    sizeof(fc->chain_text) - off);
		if (n < 0)
			break;
		off += (size_t)n;
	}
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

static void front_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
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

static int front_start(const struct msg_sandbox *sb)
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
		.privileged_socket = c->netdev[0] != '\0' || c->mark > 0,
	};

	if (!front.have_conf || front_compile(&front.fc) < 0)
		return -1;
	front_raise_nofile();
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
	route_setup(front.base);
	route_set_fault_cb(front_peer_fault);
	rpcdial_setup(front.base, &front.fc);
	socks_set_auth_required(c->auth_required);
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
	return chanev_send(&front.parent, MSG_READY, 0, NULL, 0, -1);
}

static void front_drained(void)
{
	LOGD("drained");
	chanev_send(&front.parent, MSG_DRAINED, 0, NULL, 0, -1);
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

static void front_shutdown(const struct msg_shutdown *m)
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

static int front_copy_blob(char **dst, size_t *dlen, const struct msg *m)
{
	free(*dst);
	*dst = malloc(m->len + 1);
	if (*dst == NULL)
		return -1;
	memcpy(*dst, m->data, m->len);
	(*dst)[m->len] = '\0';
	*dlen = m->len;
	return 0;
}

static void front_on_msg(struct chanev *ce, struct msg *m, void *arg)
{
	(void)ce;
	(void)arg;
	switch (m->type) {
	case MSG_CONFIG:
		if (front.started ||
		    config_validate_wire((const void *)m->data, m->len) < 0)
			goto bad;
		memcpy(&front.fc.c, m->data, sizeof(front.fc.c));
		log_level = front.fc.c.loglevel;
		front.have_conf = true;
		return;
	case MSG_RESOLVCONF:
		if (front_copy_blob(&front.resolvconf, &front.resolvconf_len,
				    m) < 0)
			goto bad;
		return;
	case MSG_HOSTS:
		/* after RESOLVCONF; once serving, it is a SIGHUP's reload */
		if (front_copy_blob(&front.hosts, &front.hosts_len, m) < 0)
			goto bad;
		if (front.started &&
		    resolver_reload(front.resolvconf ? front.resolvconf : "",
				    front.resolvconf_len,
				    front.hosts ? front.hosts : "",
				    front.hosts_len) < 0)
			LOGE("resolver: cannot reload");
		return;
	case MSG_LISTENER: {
		struct msg_listener ml;

		memcpy(&ml, m->data, sizeof(ml));
		if (m->fd < 0) {
			LOGE("listener fd lost in transit (fd limit?)");
			front_exit(1);
		}
		if (front.started || listener_add(m->fd, (int)ml.kind) < 0) {
			close(m->fd);
			goto bad;
		}
		(void)selfdial_add_listener(m->fd);
		return;
	}
	case MSG_START: {
		struct msg_sandbox sb;

		memcpy(&sb, m->data, sizeof(sb));
		if (front.started || front_start(&sb) < 0) {
			LOGE("cannot start serving");
			front_exit(1);
		}
		return;
	}
	case MSG_PEER_CHAN:
		if (m->fd < 0) {
			LOGE("ruleset channel lost in transit");
			return;
		}
		route_attach(m->fd);
		return;
	case MSG_PRIV_SOCKET_REPLY:
		front_priv_reply(m);
		return;
	case MSG_SHUTDOWN: {
		struct msg_shutdown sd;

		memcpy(&sd, m->data, sizeof(sd));
		front_shutdown(&sd);
		return;
	}
	case MSG_PING:
		chanev_send(&front.parent, MSG_PONG, m->id, m->data, m->len,
			    -1);
		return;
	default:
		break;
	}
bad:
	LOGE("unexpected %s from the parent", msg_name(m->type));
	front_exit(1);
}

static void front_on_err(struct chanev *ce, int err, const char *why,
			 void *arg)
{
	(void)ce;
	(void)arg;
	if (err == 0) {
		/* the parent is gone: so are we */
		exit(0);
	}
	LOGE("parent channel: %s", why);
	exit(1);
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
	if (front.base == NULL ||
	    chanev_init(&front.parent, front.base, FRONT_CHAN_FD,
			CHAN_PARENT_FRONT, ROLE_PARENT, front_on_msg,
			front_on_err, NULL) < 0) {
		LOGE("cannot set up the parent channel");
		return 1;
	}
	event_base_dispatch(front.base);
	return 0;
}
