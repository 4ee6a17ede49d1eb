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

static void front_on_msg(struct chanev *ce, struct msg *m, void *arg)
{
	(void)ce;
	(void)arg;
	switch (m->type) {
	case MSG_CONFIG:
		if (front_set_config(m->data, m->len) < 0)
			goto bad;
		return;
	case MSG_RESOLVCONF:
		if (front_set_resolvconf(m->data, m->len) < 0)
			goto bad;
		return;
	case MSG_HOSTS:
		if (front_set_hosts(m->data, m->len) < 0)
			goto bad;
		return;
	case MSG_LISTENER: {
		struct msg_listener ml;

		memcpy(&ml, m->data, sizeof(ml));
		if (m->fd < 0) {
			LOGE("listener fd lost in transit (fd limit?)");
			front_exit(1);
		}
		if (front_started() || listener_add(m->fd, (int)ml.kind) < 0) {
			close(m->fd);
			goto bad;
		}
		(void)selfdial_add_listener(m->fd);
		return;
	}
	case MSG_START: {
		struct msg_sandbox sb;

		memcpy(&sb, m->data, sizeof(sb));
		if (front_started() || front_start(&sb) < 0) {
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
		front_ruleset_attach(m->fd);
		return;
	case MSG_PRIV_SOCKET_REPLY: {
		struct msg_priv_socket_reply rep;

		memcpy(&rep, m->data, sizeof(rep));
		front_priv_reply(m->id, m->fd, m->fd_lost, rep.err);
		return;
	}
	case MSG_SHUTDOWN: {
		struct msg_shutdown sd;

		memcpy(&sd, m->data, sizeof(sd));
		front_shutdown(&sd);
		return;
	}
	case MSG_PING:
		chanev_send(&parent_chan, MSG_PONG, m->id, m->data, m->len,
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

int front_parent_init(struct event_base *base)
{
	return chanev_init(&parent_chan, base, FRONT_CHAN_FD,
			   CHAN_PARENT_FRONT, ROLE_PARENT, front_on_msg,
			   front_on_err, NULL);
}
