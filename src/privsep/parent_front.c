/* parent_front: starting the front and handling its messages. */
#include "privsep/parent_front.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "privsep/parent.h"
#include "privsep/priv.h"

static void parent_front_spawned(struct child *c)
{
	struct chanev *ch = &c->ch;
	int bad = 0;

	bad |= chanev_send(ch, MSG_CONFIG, 0, &parent.conf, sizeof(parent.conf),
			   -1);
	bad |= chanev_send(ch, MSG_RESOLVCONF, 0, parent.resolvconf.data,
			   parent.resolvconf.len, -1);
	bad |= chanev_send(ch, MSG_HOSTS, 0, parent.hosts.data,
			   parent.hosts.len, -1);
	for (int i = 0; i < parent.nls; i++) {
		struct msg_listener ml = {
			.kind = (uint32_t)parent.ls[i].kind
		};
		int fd;

		if (parent.ls[i].kind == LISTENER_API)
			continue; /* the ruleset process serves the API */
		fd = fcntl(parent.ls[i].fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			bad = -1;
			break;
		}
		bad |= chanev_send(ch, MSG_LISTENER, 0, &ml, sizeof(ml), fd);
	}
	bad |= chanev_send(ch, MSG_START, 0, &parent.front_sb,
			   sizeof(parent.front_sb), -1);
	if (bad) {
		proc_kill(c, "cannot send the configuration");
		return;
	}
	parent_link_peers();
}

static void parent_dispatch_front_drained(struct chanev *ce, struct msg *m,
					  void *arg)
{
	(void)ce;
	(void)m;
	(void)arg;
	LOGD("front drained");
}

/* PRIV_SOCKET, PRIV_UDP, PRIV_BIND: priv.c's table decides */
static void parent_dispatch_front_priv(struct chanev *ce, struct msg *m,
				       void *arg)
{
	if (proc_over_cap(arg))
		return;
	if (priv_request(arg, m) < 0)
		chanev_reject(ce, m, "privileged request refused");
}

static void parent_dispatch_front_peer_fault(struct chanev *ce,
					     struct msg *m, void *arg)
{
	(void)ce;
	(void)m;
	(void)arg;
	/* the ruleset process is the less trusted one: replace it (which
	 * also gives both a new channel) */
	if (parent.ruleset.running)
		proc_kill(&parent.ruleset, "the front reports a protocol "
					   "violation on their channel");
}

/* What the front may send, and when (PONG and READY: chanev.c). */
static const struct chanev_row parent_dispatch_front[] = {
	{ MSG_DRAINED, PROC_STOPPING, parent_dispatch_front_drained },
	{ MSG_PRIV_SOCKET, PROC_READY | PROC_STOPPING, parent_dispatch_front_priv },
	{ MSG_PRIV_UDP, PROC_READY | PROC_STOPPING, parent_dispatch_front_priv },
	{ MSG_PRIV_BIND, PROC_READY | PROC_STOPPING, parent_dispatch_front_priv },
	{ MSG_PEER_FAULT, PROC_READY | PROC_STOPPING, parent_dispatch_front_peer_fault },
};

static const struct chanev_end parent_front_end = {
	CHANEV_ROWS(parent_dispatch_front), proc_chan_err, proc_chan_ready
};

static void parent_front_exited(struct child *c)
{
	if (parent.stopping) {
		parent_check_exit();
		return;
	}
	if (!parent_start_given_up(c))
		proc_schedule_respawn(c);
}

void parent_front_init(void)
{
	parent.front = (struct child){
		.role = ROLE_FRONT,
		.kind = CHAN_PARENT_FRONT,
		.logfd = -1,
		.on_spawn = parent_front_spawned,
		.end = &parent_front_end,
		.on_ready = parent_child_ready,
		.on_exit = parent_front_exited,
	};
}
