/* parent_ruleset: starting the ruleset process, handing it the last good
 * ruleset, reloading on SIGHUP. */
#include "privsep/parent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "common/log.h"

static int parent_send_ruleset(const struct blob *src, uint32_t kind,
			       uint32_t seq)
{
	struct msg_ruleset_hdr h = { .kind = kind, .seq = seq };
	struct iovec iov[2] = {
		{ &h, sizeof(h) },
		{ src->data, src->len },
	};

	const char *base = strrchr(P.conf.ruleset, '/');

	/* errors read "ruleset.lua:12: ..." */
	base = base != NULL ? base + 1 : P.conf.ruleset;
	snprintf(h.chunkname, sizeof(h.chunkname), "@%.*s",
		 (int)sizeof(h.chunkname) - 2, base);
	return chanev_sendv(&P.ruleset.ch, MSG_R_RULESET, seq, iov, 2, -1);
}

static void parent_ruleset_spawned(struct child *c)
{
	struct chanev *ch = &c->ch;
	int bad = 0;

	bad |= chanev_send(ch, MSG_R_CONFIG, 0, &P.conf, sizeof(P.conf), -1);
	bad |= chanev_send(ch, MSG_R_START, 0, &P.ruleset_sb,
			   sizeof(P.ruleset_sb), -1);
	if (!bad && P.ruleset_good.data != NULL)
		bad |= parent_send_ruleset(&P.ruleset_good, RULESET_LOAD_START,
					   ++P.ruleset_seq);
	if (bad) {
		proc_kill(c, "cannot send the configuration");
		return;
	}
	parent_link_peers();
}

static void parent_ruleset_loaded(struct child *c, const struct msg *m)
{
	struct msg_loaded ld;
	const char *text = (const char *)m->data + sizeof(ld);
	int tlen = (int)(m->len - sizeof(ld));

	memcpy(&ld, m->data, sizeof(ld));
	if (ld.seq == P.ruleset_trial_seq && P.ruleset_trial.data != NULL) {
		if (ld.ok) {
			free(P.ruleset_good.data);
			P.ruleset_good = P.ruleset_trial;
			LOGN("reload: %s loaded", P.conf.ruleset);
		} else {
			free(P.ruleset_trial.data);
			LOGE("reload: %s failed, the previous ruleset stays: "
			     "%.*s",
			     P.conf.ruleset, tlen, text);
		}
		P.ruleset_trial = (struct blob){ 0 };
		notify_ready_after_reload();
		return;
	}
	if (ld.ok) {
		P.ruleset_loaded_once = true;
		return;
	}
	LOGE("ruleset: %.*s", tlen, text);
	if (!P.ruleset_loaded_once) {
		/* the ruleset given at start does not load: refuse to run */
		LOGF("cannot load %s", P.conf.ruleset);
		P.exit_code = 1;
		P.stopping = true;
		proc_kill(c, "ruleset failed to load");
		if (P.front.running)
			proc_kill(&P.front, "stopping");
		event_base_loopexit(P.base, NULL);
	}
}

static void parent_dispatch_ruleset(struct chanev *ce, struct msg *m,
				    void *arg)
{
	struct child *c = arg;

	(void)ce;
	switch (m->type) {
	case MSG_R_READY:
		if (c->ready) {
			proc_kill(c, "READY twice");
			return;
		}
		c->ready = true;
		c->last_pong_ms = proc_now_ms();
		LOGD("ruleset process ready (pid %d)", (int)c->pid);
		parent_child_ready(c);
		return;
	case MSG_R_PONG:
		c->last_pong_ms = proc_now_ms();
		return;
	case MSG_R_LOADED:
		parent_ruleset_loaded(c, m);
		return;
	case MSG_R_MODULE_REQ:
		if (modules_request(c, m) < 0)
			proc_kill(c, "bad module request");
		return;
	default:
		proc_kill(c, "message not handled");
	}
}

static void parent_ruleset_exited(struct child *c)
{
	if (P.stopping) {
		parent_check_exit();
		return;
	}
	if (P.ruleset_trial.data != NULL) {
		/* died while trying the new ruleset: keep the old one */
		LOGE("reload: the ruleset process died loading %s; the "
		     "previous ruleset stays",
		     P.conf.ruleset);
		free(P.ruleset_trial.data);
		P.ruleset_trial = (struct blob){ 0 };
	}
	if (!P.ready_sent && !c->ready) {
		LOGF("the ruleset process failed to start");
		P.exit_code = 1;
		event_base_loopexit(P.base, NULL);
		return;
	}
	proc_schedule_respawn(c);
}

void parent_ruleset_reload(void)
{
	struct blob src = { 0 };

	modules_clear(); /* modules are read again from their files */
	if (!P.conf.ruleset[0]) {
		LOGN("SIGHUP: no ruleset file to reload");
		notify_ready_after_reload();
		return;
	}
	if (parent_read_file(P.conf.ruleset, MSG_LUA_SRC_MAX, &src) < 0) {
		LOGE("reload: %s: %s; the previous ruleset stays",
		     P.conf.ruleset, strerror(errno));
		notify_ready_after_reload();
		return;
	}
	if (!P.ruleset.running || !P.ruleset.ch.open) {
		/* the respawned process will get it if it loads then */
		free(P.ruleset_good.data);
		P.ruleset_good = src;
		notify_ready_after_reload();
		return;
	}
	free(P.ruleset_trial.data);
	P.ruleset_trial = src;
	P.ruleset_trial_seq = ++P.ruleset_seq;
	if (parent_send_ruleset(&P.ruleset_trial, RULESET_LOAD_RELOAD,
				P.ruleset_trial_seq) < 0)
		LOGE("reload: cannot send the ruleset: %s", strerror(errno));
}

void parent_ruleset_init(void)
{
	P.ruleset = (struct child){
		.role = ROLE_RULESET,
		.kind = CHAN_PARENT_RULESET,
		.logfd = -1,
		.on_spawn = parent_ruleset_spawned,
		.on_msg = parent_dispatch_ruleset,
		.on_exit = parent_ruleset_exited,
	};
}
