/* parent_front: the front workers: starting each (its configuration, its
 * own copy of every listener), handing each its channel to the ruleset
 * process, handling their messages. Each worker is a child of its own: it
 * is respawned alone, and its death ends only its own sessions. */
#include "privsep/parent_front.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "privsep/parent.h"
#include "privsep/priv.h"

/* A new front<->ruleset channel for worker c: when it (re)starts, and for
 * every worker when the ruleset process does. */
void parent_front_link(struct child *c)
{
	struct msg_peer p = { .worker = (uint32_t)(c - parent.fronts) };
	int sv[2];
	bool over;

	if (!c->running || !c->ch.open || !parent.ruleset.running ||
	    !parent.ruleset.ch.open)
		return;
	/* a child that leaves its fds unread gets no more */
	over = proc_over_cap(c);
	if (proc_over_cap(&parent.ruleset) || over)
		return;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		LOG_RL(LOGL_ERROR, 10, "socketpair: %s", strerror(errno));
		return;
	}
	if (chanev_send(&c->ch, MSG_PEER_CHAN, 0, NULL, 0, sv[0]) < 0)
		LOG_RL(LOGL_ERROR, 10,
		       "cannot hand the peer channel to the %s: %s", c->name,
		       strerror(errno));
	if (chanev_send(&parent.ruleset.ch, MSG_R_PEER_CHAN, 0, &p, sizeof(p),
			sv[1]) < 0)
		LOG_RL(LOGL_ERROR, 10,
		       "cannot hand the peer channel to the ruleset "
		       "process: %s",
		       strerror(errno));
}

void parent_fronts_link(uint64_t which)
{
	for (int i = 0; i < parent.nfronts; i++)
		if (which & (UINT64_C(1) << i))
			parent_front_link(&parent.fronts[i]);
}

bool parent_fronts_ready(void)
{
	if (parent.nfronts == 0)
		return false;
	for (int i = 0; i < parent.nfronts; i++)
		if (!parent.fronts[i].ch.ready)
			return false;
	return true;
}

unsigned parent_fronts_restarts(void)
{
	unsigned n = 0;

	for (int i = 0; i < parent.nfronts; i++)
		n += parent.fronts[i].restarts;
	return n;
}

void parent_fronts_resolver(void)
{
	for (int i = 0; i < parent.nfronts; i++) {
		struct child *c = &parent.fronts[i];

		if (!c->running || !c->ch.open || !c->ch.ready)
			continue;
		chanev_send(&c->ch, MSG_RESOLVCONF, 0, parent.resolvconf.data,
			    parent.resolvconf.len, -1);
		chanev_send(&c->ch, MSG_HOSTS, 0, parent.hosts.data,
			    parent.hosts.len, -1);
	}
}

static void parent_front_spawned(struct child *c)
{
	struct chanev *ch = &c->ch;
	int w = (int)(c - parent.fronts);
	int bad = 0;

	bad |= chanev_send(ch, MSG_CONFIG, 0, &parent.conf, sizeof(parent.conf),
			   -1);
	bad |= chanev_send(ch, MSG_RESOLVCONF, 0, parent.resolvconf.data,
			   parent.resolvconf.len, -1);
	bad |= chanev_send(ch, MSG_HOSTS, 0, parent.hosts.data,
			   parent.hosts.len, -1);
	for (int i = 0; i < parent.nls; i++) {
		const struct plistener *l = &parent.ls[i];
		struct msg_listener ml = { .kind = (uint32_t)l->kind };
		int fd;

		if (l->kind == LISTENER_API)
			continue; /* the ruleset process serves the API */
		/* the worker's own socket of the group (one when alone) */
		fd = fcntl(l->fd[w < l->nfd ? w : 0], F_DUPFD_CLOEXEC, 0);
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
	parent_front_link(c);
}

static void parent_dispatch_front_drained(struct chanev *ce, struct msg *m,
					  void *arg)
{
	struct child *c = arg;

	(void)ce;
	(void)m;
	LOGD("%s drained", c->name);
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
	struct child *c = arg;
	char why[96];

	(void)ce;
	(void)m;
	/* the ruleset process is the less trusted one: replace it (which
	 * also gives every worker a new channel) */
	snprintf(why, sizeof(why),
		 "the %s reports a protocol violation on their channel",
		 c->name);
	if (parent.ruleset.running)
		proc_kill(&parent.ruleset, why);
}

/* What a front worker may send, and when (PONG and READY: chanev.c). */
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

int parent_fronts_start(void)
{
	int n = parent.conf.workers > 0 ? parent.conf.workers : 1;

	parent.fronts = calloc((size_t)n, sizeof(*parent.fronts));
	if (parent.fronts == NULL) {
		LOGF("out of memory");
		return -1;
	}
	parent.nfronts = n;
	for (int i = 0; i < n; i++) {
		struct child *c = &parent.fronts[i];

		*c = (struct child){
			.role = ROLE_FRONT,
			.kind = CHAN_PARENT_FRONT,
			.queued_fds_max = proc_fd_cap(ROLE_FRONT, (unsigned)n),
			.logfd = -1,
			.on_spawn = parent_front_spawned,
			.end = &parent_front_end,
			.on_ready = parent_child_ready,
			.on_exit = parent_front_exited,
		};
		/* --workers 1 is the daemon as it was: "front" */
		if (n == 1)
			snprintf(c->name, sizeof(c->name), "front");
		else
			snprintf(c->name, sizeof(c->name), "front %d", i + 1);
	}
	for (int i = 0; i < n; i++)
		if (proc_spawn(&parent.fronts[i]) < 0)
			return -1;
	return 0;
}
