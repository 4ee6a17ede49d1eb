/* ruleset_main: the jailed process that hosts the Lua VM (and, later, the
 * REST API). It opens no files and has no network of its own: everything
 * arrives over its channels, the parent's on fd 3 and the front's (handed
 * over by the parent, replaced whenever the front restarts). */
#include "ruleset/ruleset.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/chanev.h"
#include "common/config.h"
#include "common/log.h"
#include "common/msg.h"
#include "privsep/sandbox.h"
#include "ruleset/vm.h"

#define RULESET_CHAN_FD 3

static struct {
	struct event_base *base;
	struct chanev parent, front;
	struct config conf;
	bool have_conf, started, ready;
} R;

static void ruleset_exit(int code)
{
	chanev_drain(&R.parent, 1000);
	exit(code);
}

static void ruleset_send_loaded(uint32_t seq, bool ok, const char *err)
{
	struct msg_loaded ld = { .seq = seq, .ok = ok ? 1 : 0 };
	size_t elen = ok ? 0 : strnlen(err, MSG_ERRTEXT_MAX);
	struct iovec iov[2] = { { &ld, sizeof(ld) },
				{ (void *)(uintptr_t)err, elen } };

	chanev_sendv(&R.parent, MSG_R_LOADED, seq, iov, elen > 0 ? 2 : 1, -1);
}

static void ruleset_ready(void)
{
	if (R.ready)
		return;
	R.ready = true;
	chanev_send(&R.parent, MSG_R_READY, 0, NULL, 0, -1);
}

static void ruleset_load(const struct msg *m)
{
	struct msg_ruleset_hdr h;
	char err[MSG_ERRTEXT_MAX];
	char chunk[sizeof(h.chunkname) + 1];
	int r;

	memcpy(&h, m->data, sizeof(h));
	memcpy(chunk, h.chunkname, sizeof(h.chunkname));
	chunk[sizeof(h.chunkname)] = '\0';
	r = vm_load_ruleset((const char *)m->data + sizeof(h),
			    m->len - sizeof(h), chunk, err, sizeof(err));
	if (r == 0)
		LOGI("ruleset loaded (%s)", chunk);
	else
		LOGW("ruleset: %s", err);
	ruleset_send_loaded(h.seq, r == 0, err);
	ruleset_ready();
}

/* Jail ourselves before any input is looked at. */
static void ruleset_start(const struct msg *m)
{
	struct msg_sandbox sb;
	struct sandbox_conf sc = { .role = ROLE_RULESET };
	char skipped[256] = "", err[256] = "";

	memcpy(&sb, m->data, sizeof(sb));
	sb.jail[sizeof(sb.jail) - 1] = '\0';
	sc.drop_user = sb.drop_user != 0;
	sc.uid = sb.uid;
	sc.gid = sb.gid;
	sc.jail = sb.jail[0] ? sb.jail : NULL;
	sc.netns = sb.netns != 0;
	sc.debug = sb.debug != 0;
	if (vm_init((size_t)R.conf.memlimit << 20) < 0) {
		LOGE("cannot create the Lua state");
		ruleset_exit(1);
	}
	if (sandbox_apply(&sc, skipped, sizeof(skipped), err, sizeof(err)) <
	    0) {
		LOGE("sandbox: %s", err);
		ruleset_exit(1);
	}
	if (skipped[0])
		LOGN("sandbox: not applied: %s", skipped);
	R.started = true;
	if (!R.conf.ruleset[0])
		ruleset_ready(); /* nothing to load: serve "no ruleset" */
}

static void ruleset_front_msg(struct chanev *ce, struct msg *m, void *arg)
{
	(void)ce;
	(void)arg;
	/* the routing protocol arrives with the ruleset engine */
	if (m->fd >= 0)
		close(m->fd);
	LOGE("unexpected %s from the front", msg_name(m->type));
	chanev_close(&R.front);
}

static void ruleset_front_err(struct chanev *ce, int err, const char *why,
			      void *arg)
{
	(void)arg;
	if (err != 0)
		LOGE("front channel: %s", why);
	chanev_close(ce); /* a new one comes when the front restarts */
}

static void ruleset_take_front(int fd)
{
	if (R.front.open)
		chanev_close(&R.front);
	if (chanev_init(&R.front, R.base, fd, CHAN_FRONT_RULESET, ROLE_FRONT,
			ruleset_front_msg, ruleset_front_err, NULL) < 0) {
		LOGE("cannot watch the front channel");
		close(fd);
	}
}

static void ruleset_parent_msg(struct chanev *ce, struct msg *m, void *arg)
{
	(void)ce;
	(void)arg;
	switch (m->type) {
	case MSG_R_CONFIG:
		if (R.have_conf || config_validate_wire((const void *)m->data,
							m->len) < 0)
			goto bad;
		memcpy(&R.conf, m->data, sizeof(R.conf));
		log_level = R.conf.loglevel;
		R.have_conf = true;
		return;
	case MSG_R_START:
		if (!R.have_conf || R.started)
			goto bad;
		ruleset_start(m);
		return;
	case MSG_R_RULESET:
		if (!R.started)
			goto bad;
		ruleset_load(m);
		return;
	case MSG_R_PEER_CHAN:
		if (m->fd < 0) {
			LOGE("front channel lost in transit");
			return;
		}
		ruleset_take_front(m->fd);
		return;
	case MSG_R_PING:
		chanev_send(&R.parent, MSG_R_PONG, m->id, m->data, m->len, -1);
		return;
	case MSG_R_SHUTDOWN:
		ruleset_exit(0);
		return;
	default:
		break;
	}
bad:
	if (m->fd >= 0)
		close(m->fd);
	LOGE("unexpected %s from the parent", msg_name(m->type));
	ruleset_exit(1);
}

static void ruleset_parent_err(struct chanev *ce, int err, const char *why,
			       void *arg)
{
	(void)ce;
	(void)arg;
	if (err == 0)
		exit(0); /* the parent is gone */
	LOGE("parent channel: %s", why);
	exit(1);
}

int ruleset_main(void)
{
	log_init("ruleset", 2, true);
	chanev_log_setup();
	prctl(PR_SET_NAME, "neosocksd-rules");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	R.base = event_base_new();
	if (R.base == NULL ||
	    chanev_init(&R.parent, R.base, RULESET_CHAN_FD,
			CHAN_PARENT_RULESET, ROLE_PARENT, ruleset_parent_msg,
			ruleset_parent_err, NULL) < 0) {
		LOGE("cannot set up the parent channel");
		return 1;
	}
	event_base_dispatch(R.base);
	return 0;
}
