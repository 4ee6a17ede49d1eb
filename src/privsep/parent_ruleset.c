/* parent_ruleset: starting the ruleset process, handing it the last good
 * ruleset, reloading on SIGHUP. */
#include "privsep/parent_ruleset.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "common/log.h"
#include "common/monotime.h"
#include "privsep/execute.h"
#include "privsep/limits.h"
#include "privsep/modules.h"
#include "privsep/parent.h"
#include "privsep/parent_api.h"
#include "privsep/parent_tls.h"
#include "privsep/parent_front.h"
#include "privsep/state.h"

#define PEER_RELINK_MS 1000 /* new channels after R_PEER_FAULT, at most */

static struct event *relink_ev;
static int64_t relink_last_ms;
static uint64_t relink_which; /* the workers reported since the last */

static const char *parent_source_path(void)
{
	return parent.conf.config_file[0] ? parent.conf.config_file
					  : parent.conf.ruleset;
}

/* The -r ruleset or the -c config file, whichever this daemon uses. */
static int parent_send_ruleset(const struct blob *src, uint32_t kind,
			       uint32_t seq)
{
	struct msg_ruleset_hdr h = { .kind = kind, .seq = seq };
	struct iovec iov[2] = {
		{ &h, sizeof(h) },
		{ src->data, src->len },
	};
	const char *path = parent_source_path();
	const char *base = strrchr(path, '/');

	/* errors read "ruleset.lua:12: ..." ("stdin:12: ..." for -) */
	base = base != NULL ? base + 1 : path;
	if (strcmp(path, "-") == 0)
		snprintf(h.chunkname, sizeof(h.chunkname), "=stdin");
	else
		snprintf(h.chunkname, sizeof(h.chunkname), "@%.*s",
			 (int)sizeof(h.chunkname) - 2, base);
	return chanev_sendv(&parent.ruleset.ch,
			    parent.conf.config_file[0] ? MSG_R_CONFIGFILE
						       : MSG_R_RULESET,
			    seq, iov, 2, -1);
}

static void parent_ruleset_spawned(struct child *c)
{
	struct chanev *ch = &c->ch;
	int bad = 0;

	bad |= chanev_send(ch, MSG_R_CONFIG, 0, &parent.conf,
			   sizeof(parent.conf), -1);
	bad |= chanev_send(ch, MSG_R_START, 0, &parent.ruleset_sb,
			   sizeof(parent.ruleset_sb), -1);
	if (!bad && parent.ruleset_good.data != NULL)
		bad |= parent_send_ruleset(&parent.ruleset_good,
					   parent.conf.config_file[0] &&
							   !parent.configured
						   ? RULESET_LOAD_CONFIGURE
						   : RULESET_LOAD_START,
					   ++parent.ruleset_seq);
	if (bad) {
		proc_kill(c, "cannot send the configuration");
		return;
	}
	parent_api_ruleset_spawned(); /* the API updates, in order */
	if (parent.ruleset_trial.data != NULL) {
		/* a SIGHUP came while no ruleset process was up: try it now,
		 * on top of the last good state */
		parent.ruleset_trial_seq = ++parent.ruleset_seq;
		if (parent_send_ruleset(&parent.ruleset_trial,
					RULESET_LOAD_RELOAD,
					parent.ruleset_trial_seq) < 0) {
			proc_kill(c, "cannot send the configuration");
			return;
		}
	}
	parent_fronts_link(PARENT_FRONTS_ALL);
}

static void parent_ruleset_loaded(struct child *c, const struct msg *m)
{
	struct msg_loaded ld;
	const char *text = (const char *)m->data + sizeof(ld);
	int tlen = (int)(m->len - sizeof(ld));

	memcpy(&ld, m->data, sizeof(ld));
	if (ld.seq == parent.ruleset_trial_seq &&
	    parent.ruleset_trial.data != NULL) {
		if (ld.ok) {
			free(parent.ruleset_good.data);
			parent.ruleset_good = parent.ruleset_trial;
			LOGN("reload: %s loaded", parent_source_path());
			state_clear();
		} else {
			free(parent.ruleset_trial.data);
			LOGE("reload: %s failed, the previous ruleset stays: "
			     "%.*s",
			     parent_source_path(), tlen, text);
		}
		parent.ruleset_trial = (struct blob){ 0 };
		parent_reload_done();
		return;
	}
	if (ld.ok) {
		if (!parent.ruleset_loaded_once && parent.cli.check) {
			printf("neosocksd: configuration OK\n");
			parent_finish(0);
		}
		parent.ruleset_loaded_once = true;
		return;
	}
	(void)c;
	if (!parent.ruleset_loaded_once) {
		/* the ruleset given at start does not load: refuse to run,
		 * in one line ("ruleset.lua:12: ..." names the place) */
		LOGF("cannot load %s: %.*s", parent_source_path(), tlen, text);
		parent_finish(1);
		return;
	}
	LOGE("ruleset: %.*s (requests fail until a ruleset loads)", tlen,
	     text);
}

/* -c evaluated: the merged settings, or why not. */
static void parent_ruleset_configured(struct child *c, const struct msg *m)
{
	struct msg_loaded ld;
	struct config merged;
	char err[512];
	const char *text = (const char *)m->data + sizeof(ld);
	int tlen = (int)(m->len - sizeof(ld));

	memcpy(&ld, m->data, sizeof(ld));
	if (ld.ok && (m->len != sizeof(ld) + sizeof(merged) ||
		      config_validate_wire((const void *)text, sizeof(merged)) <
			      0)) {
		proc_kill(c, "malformed settings");
		return;
	}
	if (parent.configured || ld.seq == parent.ruleset_trial_seq) {
		/* a reload or a respawn: only the ruleset it sets changes */
		parent_ruleset_loaded(c, m);
		return;
	}
	if (!ld.ok) {
		const char *base = strrchr(parent.conf.config_file, '/');

		base = base != NULL ? base + 1 : parent.conf.config_file;
		/* "file:line: ..." already names the place; else name the file */
		if ((size_t)tlen >= strlen(base) &&
		    memcmp(text, base, strlen(base)) == 0)
			LOGF("%.*s", tlen, text);
		else
			LOGF("%s: %.*s", parent.conf.config_file, tlen, text);
		parent_finish(1);
		return;
	}
	memcpy(&merged, text, sizeof(merged));
	/* what a config file cannot change (CONF_CLI in settings.def): how
	 * the process that evaluated it was started, the files, --lua-path */
	config_keep_cli(&merged, &parent.conf);
	if (config_check(&merged, err, sizeof(err)) < 0) {
		LOGF("%s: %s", parent.conf.config_file, err);
		parent_finish(1);
		return;
	}
	parent.conf = merged;
	limits_workers(&parent.conf); /* "workers = 0": the CPUs */
	parent.drain_seconds = parent.conf.drain_timeout;
	log_level = parent.conf.loglevel;
	parent.configured = true;
	parent.ruleset_loaded_once = true;
	if (parent.cli.dump_config) {
		config_dump(&parent.conf, stdout);
		parent_finish(0);
		return;
	}
	if (parent_tls_load() < 0) {
		parent_finish(1);
		return;
	}
	parent_tls_send();
	if (parent.cli.check) {
		printf("neosocksd: configuration OK\n");
		parent_finish(0);
	} else if (parent.conf.daemonize && !parent.daemonized) {
		/* fork outside the loop (and this channel's callback) */
		parent.daemonize_pending = true;
		event_base_loopbreak(parent.base);
	} else {
		parent_serve();
	}
}

static void parent_ruleset_relink_cb(evutil_socket_t fd, short what,
				     void *arg)
{
	uint64_t which = relink_which;

	(void)fd;
	(void)what;
	(void)arg;
	relink_last_ms = monotime_ms();
	relink_which = 0;
	parent_fronts_link(which);
}

/* The ruleset process says a front worker broke the protocol on their
 * channel. It is not trusted enough to get the worker killed (which would
 * cut its tunnels): both get a fresh channel instead, at most once a
 * second; the reports in between are merged into the next one. */
static void parent_ruleset_peer_fault(uint32_t worker)
{
	int64_t wait = relink_last_ms + PEER_RELINK_MS - monotime_ms();
	struct timeval tv;

	relink_which |= UINT64_C(1) << worker;
	LOG_RL(LOGL_ERROR, 10, "the ruleset process reports a protocol "
			       "violation by the front; new channel");
	if (relink_ev == NULL)
		relink_ev = evtimer_new(parent.base, parent_ruleset_relink_cb,
					NULL);
	if (relink_ev == NULL || evtimer_pending(relink_ev, NULL))
		return;
	if (wait <= 0 || relink_last_ms == 0) {
		parent_ruleset_relink_cb(-1, 0, NULL);
		return;
	}
	tv.tv_sec = (time_t)(wait / 1000);
	tv.tv_usec = (suseconds_t)(wait % 1000) * 1000;
	evtimer_add(relink_ev, &tv);
}

/* R_LOADED answers a -r source; a daemon with -c gets R_CONFIGURED. */
static void parent_dispatch_ruleset_loaded(struct chanev *ce, struct msg *m,
					   void *arg)
{
	if (parent.conf.config_file[0]) {
		chanev_reject(ce, m, "unexpected LOADED");
		return;
	}
	parent_ruleset_loaded(arg, m);
}

static void parent_dispatch_ruleset_configured(struct chanev *ce,
					       struct msg *m, void *arg)
{
	if (!parent.conf.config_file[0]) {
		chanev_reject(ce, m, "unexpected CONFIGURED");
		return;
	}
	parent_ruleset_configured(arg, m);
}

static void parent_dispatch_ruleset_execute(struct chanev *ce, struct msg *m,
					    void *arg)
{
	if (proc_over_cap(arg))
		return;
	if (execute_request(arg, m) < 0)
		chanev_reject(ce, m, "execute refused");
}

static void parent_dispatch_ruleset_execute_cancel(struct chanev *ce,
						   struct msg *m, void *arg)
{
	struct child *c = arg;

	(void)ce;
	execute_cancel(m->id, c->pid);
}

static void parent_dispatch_ruleset_peer_fault(struct chanev *ce,
					       struct msg *m, void *arg)
{
	struct msg_peer p;

	(void)arg;
	memcpy(&p, m->data, sizeof(p));
	if (p.worker >= (uint32_t)parent.nfronts) {
		chanev_reject(ce, m, "R_PEER_FAULT for no such worker");
		return;
	}
	parent_ruleset_peer_fault(p.worker);
}

static void parent_dispatch_ruleset_persist(struct chanev *ce, struct msg *m,
					    void *arg)
{
	(void)arg;
	if (state_persist(m) < 0)
		chanev_reject(ce, m, "bad update to save");
}

/* R_MODULE_REQ (require) and R_FILE_REQ (loadfile, dofile) */
static void parent_dispatch_ruleset_module_req(struct chanev *ce,
					       struct msg *m, void *arg)
{
	if (proc_over_cap(arg))
		return;
	if (modules_request(arg, m) < 0)
		chanev_reject(ce, m, "bad module request");
}

/* os.exit(code): the daemon stops as on SIGTERM, then exits with code. */
static void parent_dispatch_ruleset_exit(struct chanev *ce, struct msg *m,
					 void *arg)
{
	struct msg_exit ex;

	(void)arg;
	memcpy(&ex, m->data, sizeof(ex));
	if (ex.code < 0 || ex.code > 255) {
		chanev_reject(ce, m, "bad exit status");
		return;
	}
	parent_exit_request(ex.code);
}

/* What the ruleset process may send, and when (R_PONG and R_READY:
 * chanev.c). It loads its first source, and may run commands, ask for
 * modules and files, and exit while doing so, before it is READY; it has
 * the front channel and the API only after. */
static const struct chanev_row parent_dispatch_ruleset[] = {
	{ MSG_R_LOADED, PROC_ANY, parent_dispatch_ruleset_loaded },
	{ MSG_R_CONFIGURED, PROC_ANY, parent_dispatch_ruleset_configured },
	{ MSG_R_EXECUTE, PROC_ANY, parent_dispatch_ruleset_execute },
	{ MSG_R_EXECUTE_CANCEL, PROC_ANY, parent_dispatch_ruleset_execute_cancel },
	{ MSG_R_MODULE_REQ, PROC_ANY, parent_dispatch_ruleset_module_req },
	{ MSG_R_FILE_REQ, PROC_ANY, parent_dispatch_ruleset_module_req },
	{ MSG_R_EXIT, PROC_ANY, parent_dispatch_ruleset_exit },
	{ MSG_R_PEER_FAULT, PROC_READY | PROC_STOPPING, parent_dispatch_ruleset_peer_fault },
	{ MSG_R_PERSIST, PROC_READY | PROC_STOPPING, parent_dispatch_ruleset_persist },
};

static const struct chanev_end parent_ruleset_end = {
	CHANEV_ROWS(parent_dispatch_ruleset), proc_chan_err, proc_chan_ready
};

static void parent_ruleset_exited(struct child *c)
{
	/* the routines waiting for its commands are gone with it */
	execute_kill_all(c->pid);
	if (parent.stopping) {
		parent_check_exit();
		return;
	}
	if (parent.ruleset_trial.data != NULL &&
	    parent.ruleset_trial_seq != 0) {
		/* died while trying the new ruleset: keep the old one */
		LOGE("reload: the ruleset process died loading %s; the "
		     "previous ruleset stays",
		     parent_source_path());
		free(parent.ruleset_trial.data);
		parent.ruleset_trial = (struct blob){ 0 };
		parent.ruleset_trial_seq = 0;
		parent_reload_done();
	}
	/* a ruleset that fails to load says so and stops us earlier; this is
	 * a process that keeps dying before it is up */
	if (!parent_start_given_up(c))
		proc_schedule_respawn(c);
}

void parent_ruleset_reload(void)
{
	struct blob src = { 0 };

	modules_clear(); /* modules are read again from their files */
	if (!parent_source_path()[0]) {
		LOGN("SIGHUP: no ruleset or config file to reload");
		parent_reload_done();
		return;
	}
	if (strcmp(parent_source_path(), "-") == 0) {
		/* standard input was read at start: the same text again
		 * (its modules are read again from their files) */
		src.data = malloc(parent.stdin_src.len + 1);
		if (src.data == NULL) {
			LOGE("reload: out of memory");
			parent_reload_done();
			return;
		}
		memcpy(src.data, parent.stdin_src.data,
		       parent.stdin_src.len + 1);
		src.len = parent.stdin_src.len;
	} else if (readfile_at(AT_FDCWD, parent_source_path(),
			       MSG_LUA_SRC_MAX, &src, NULL) < 0 ||
		   src.data == NULL) {
		/* absent: readfile_at() left ENOENT in errno */
		LOGE("reload: %s: %s; the previous ruleset stays",
		     parent_source_path(), readfile_strerror(errno));
		parent_reload_done();
		return;
	}
	if (!parent.ruleset.running || !parent.ruleset.ch.open) {
		/* tried on the respawned process, after the last good one:
		 * it becomes the good one only if it loads there */
		free(parent.ruleset_trial.data);
		parent.ruleset_trial = src;
		parent.ruleset_trial_seq = 0;
		LOGN("reload: the ruleset process is restarting; %s will be "
		     "tried when it is back",
		     parent_source_path());
		parent_reload_done();
		return;
	}
	free(parent.ruleset_trial.data);
	parent.ruleset_trial = src;
	parent.ruleset_trial_seq = ++parent.ruleset_seq;
	if (parent_send_ruleset(&parent.ruleset_trial, RULESET_LOAD_RELOAD,
				parent.ruleset_trial_seq) < 0)
		LOGE("reload: cannot send the ruleset: %s", strerror(errno));
}

void parent_ruleset_init(void)
{
	parent.ruleset = (struct child){
		.role = ROLE_RULESET,
		.kind = CHAN_PARENT_RULESET,
		.name = "ruleset",
		.queued_fds_max = proc_fd_cap(ROLE_RULESET, 1),
		.logfd = -1,
		.on_spawn = parent_ruleset_spawned,
		.end = &parent_ruleset_end,
		.on_ready = parent_child_ready,
		.on_exit = parent_ruleset_exited,
	};
}
