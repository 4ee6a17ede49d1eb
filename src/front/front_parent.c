/* front_parent: the front's end of its channel to the parent. The parent
 * sends the configuration, the resolver files and the listeners, then
 * START; later a SIGHUP's resolver files, brokered sockets, new
 * front<->ruleset channels and SHUTDOWN. Anything out of place from the
 * parent ends the front (exit status 1). */
#include "front/front_parent.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/msg.h"
#include "front/front.h"
#include "front/front_priv.h"
#include "front/front_ruleset.h"
#include "front/listener.h"
#include "front/selfdial.h"

#define FRONT_CHAN_FD 3

static struct chanev parent_chan;

struct chanev *front_parent(void)
{
	return &parent_chan;
}

/* The front's states, as the parent sees them through what it sends. */
enum {
	FP_INIT = 1,       /* nothing yet: CONFIG comes first */
	FP_CONFIGURED = 2, /* resolver files and listeners, then START */
	FP_SERVING = 4,
	FP_DRAINING = 8,   /* after SHUTDOWN */
};

static void front_dispatch_parent_config(struct chanev *ce, struct msg *m,
					 void *arg)
{
	(void)arg;
	if (front_set_config(m->data, m->len) < 0) {
		chanev_reject(ce, m, "bad CONFIG");
		return;
	}
	chanev_set_state(ce, FP_CONFIGURED);
}

static void front_dispatch_parent_resolvconf(struct chanev *ce,
					     struct msg *m, void *arg)
{
	(void)arg;
	if (front_set_resolvconf(m->data, m->len) < 0)
		chanev_reject(ce, m, "out of memory");
}

static void front_dispatch_parent_hosts(struct chanev *ce, struct msg *m,
					void *arg)
{
	(void)arg;
	if (front_set_hosts(m->data, m->len) < 0)
		chanev_reject(ce, m, "out of memory");
}

static void front_dispatch_parent_listener(struct chanev *ce, struct msg *m,
					   void *arg)
{
	struct msg_listener ml;

	(void)arg;
	memcpy(&ml, m->data, sizeof(ml));
	if (m->fd < 0) {
		LOGE("listener fd lost in transit (fd limit?)");
		front_exit(1);
	}
	if (listener_add(m->fd, (int)ml.kind) < 0) {
		chanev_reject(ce, m, "too many listeners");
		return;
	}
	(void)selfdial_add_listener(m->fd);
}

static void front_dispatch_parent_start(struct chanev *ce, struct msg *m,
					void *arg)
{
	struct msg_sandbox sb;

	(void)arg;
	memcpy(&sb, m->data, sizeof(sb));
	if (front_start(&sb) < 0) {
		LOGE("cannot start serving");
		front_exit(1);
	}
	chanev_set_state(ce, FP_SERVING);
}

static void front_dispatch_parent_peer_chan(struct chanev *ce, struct msg *m,
					    void *arg)
{
	(void)ce;
	(void)arg;
	if (m->fd < 0) {
		LOGE("ruleset channel lost in transit");
		return;
	}
	front_ruleset_attach(m->fd);
}

static void front_dispatch_parent_priv_socket_reply(struct chanev *ce,
						    struct msg *m, void *arg)
{
	struct msg_priv_socket_reply rep;

	(void)ce;
	(void)arg;
	memcpy(&rep, m->data, sizeof(rep));
	front_priv_reply(m->id, m->fd, m->fd_lost, rep.err);
}

static void front_dispatch_parent_shutdown(struct chanev *ce, struct msg *m,
					   void *arg)
{
	struct msg_shutdown sd;

	(void)arg;
	memcpy(&sd, m->data, sizeof(sd));
	chanev_set_state(ce, FP_DRAINING);
	front_shutdown(&sd);
}

/* What the parent sends, and when (PING: chanev.c). */
static const struct chanev_row front_dispatch_parent[] = {
	{ MSG_CONFIG, FP_INIT, front_dispatch_parent_config },
	{ MSG_RESOLVCONF, FP_CONFIGURED | FP_SERVING, front_dispatch_parent_resolvconf },
	{ MSG_HOSTS, FP_CONFIGURED | FP_SERVING, front_dispatch_parent_hosts },
	{ MSG_LISTENER, FP_CONFIGURED, front_dispatch_parent_listener },
	{ MSG_START, FP_CONFIGURED, front_dispatch_parent_start },
	{ MSG_PEER_CHAN, FP_SERVING | FP_DRAINING, front_dispatch_parent_peer_chan },
	{ MSG_PRIV_SOCKET_REPLY, FP_SERVING | FP_DRAINING, front_dispatch_parent_priv_socket_reply },
	{ MSG_SHUTDOWN, FP_SERVING | FP_DRAINING, front_dispatch_parent_shutdown },
};

/* The parent is gone (EOF): so are we; anything else out of place from it
 * ends the front too. */
static void front_parent_on_err(struct chanev *ce, int err, const char *why,
				void *arg)
{
	(void)ce;
	(void)arg;
	if (err == 0)
		exit(0);
	LOGE("parent channel: %s", why);
	front_exit(1);
}

static const struct chanev_end front_parent_end = {
	CHANEV_ROWS(front_dispatch_parent), front_parent_on_err, NULL
};

int front_parent_init(struct event_base *base)
{
	return chanev_init(&parent_chan, base, FRONT_CHAN_FD,
			   CHAN_PARENT_FRONT, ROLE_PARENT, &front_parent_end,
			   FP_INIT, NULL);
}
