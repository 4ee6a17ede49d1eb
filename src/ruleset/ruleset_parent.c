/* ruleset_parent: the ruleset process's end of its channel to the parent
 * (fd 3). The parent sends the configuration, R_START, the source to load
 * (at start, or on trial after SIGHUP), saved updates, the API's listener,
 * tokens and TLS files, modules and files for require() and loadfile(), command
 * statuses, and new channels to the front. Messages are handled in order: while require() waits for
 * the parent, everything else that arrives waits behind it. Anything out
 * of place from the parent ends the process (exit status 1). */
#include "ruleset/ruleset_parent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "common/msg.h"
#include "ruleset/api_access.h"
#include "ruleset/api_conn.h"
#include "ruleset/api_tls.h"
#include "ruleset/confload.h"
#include "ruleset/lib_await.h"
#include "ruleset/lib_os.h"
#include "ruleset/codeinfo.h"
#include "ruleset/loader.h"
#include "ruleset/request.h"
#include "ruleset/ruleset_front.h"
#include "ruleset/ruleset_main.h"
#include "ruleset/stats.h"
#include "ruleset/updates.h"
#include "ruleset/vm.h"

#define RULESET_CHAN_FD 3
#define MODULE_WAIT_MS 10000

static struct {
	struct chanev ch;
	uint32_t module_seq; /* require()'s requests */
} parent_link;

struct chanev *ruleset_parent(void)
{
	return &parent_link.ch;
}

void ruleset_parent_persist(int kind, const char *module,
			    const char *chunkname, const char *src, size_t len)
{
	struct msg_update u = { .kind = (uint32_t)kind };
	struct iovec iov[2] = { { &u, sizeof(u) },
				{ (void *)(uintptr_t)src, len } };

	/* always: the parent replays them to a respawned process, and saves
	 * them with --state-dir */
	snprintf(u.name, sizeof(u.name), "%s", module);
	snprintf(u.chunkname, sizeof(u.chunkname), "%s", chunkname);
	if (chanev_sendv(&parent_link.ch, MSG_R_PERSIST, 0, iov, 2, -1) < 0)
		LOGE("cannot save the update: %s", strerror(errno));
}

/* --state-dir: an update saved earlier, replayed after a (re)start */
static void ruleset_parent_replay(const struct msg *m)
{
	struct msg_update u;
	char err[MSG_ERRTEXT_MAX];

	memcpy(&u, m->data, sizeof(u));
	u.name[sizeof(u.name) - 1] = '\0';
	u.chunkname[sizeof(u.chunkname) - 1] = '\0';
	if (updates_apply((int)u.kind, u.name, u.chunkname,
			  (const char *)m->data + sizeof(u), m->len - sizeof(u),
			  err, sizeof(err)) < 0)
		LOGE("replaying a saved update (%s): %s", u.chunkname, err);
	else
		LOGI("replayed a saved update (%s)", u.chunkname);
}

static void ruleset_parent_send_loaded(uint32_t seq, bool ok, const char *err)
{
	struct msg_loaded ld = { .seq = seq, .ok = ok ? 1 : 0 };
	size_t elen = ok ? 0 : strnlen(err, MSG_ERRTEXT_MAX);
	struct iovec iov[2] = { { &ld, sizeof(ld) },
				{ (void *)(uintptr_t)err, elen } };

	chanev_sendv(&parent_link.ch, MSG_R_LOADED, seq, iov, elen > 0 ? 2 : 1,
		     -1);
}

static void ruleset_parent_send_configured(uint32_t seq, const char *err)
{
	struct msg_loaded ld = { .seq = seq, .ok = err == NULL };
	struct iovec iov[2] = { { &ld, sizeof(ld) }, { NULL, 0 } };

	if (err == NULL)
		iov[1] = (struct iovec){ (void *)(uintptr_t)ruleset_conf(),
					 sizeof(struct config) };
	else
		iov[1] = (struct iovec){ (void *)(uintptr_t)err,
					 strnlen(err, MSG_ERRTEXT_MAX) };
	chanev_sendv(&parent_link.ch, MSG_R_CONFIGURED, seq, iov, 2, -1);
}

/* -c: evaluate the config file; report the merged settings. */
static void ruleset_parent_configfile(const struct msg *m)
{
	struct msg_ruleset_hdr h;
	char err[MSG_ERRTEXT_MAX];
	char chunk[sizeof(h.chunkname) + 1];
	struct config merged = *ruleset_conf();
	int rc;

	memcpy(&h, m->data, sizeof(h));
	memcpy(chunk, h.chunkname, sizeof(h.chunkname));
	chunk[sizeof(h.chunkname)] = '\0';
	if (h.kind == RULESET_LOAD_RELOAD) {
		vm_modules_stash(); /* modules are read again from the files */
		codeinfo_stash();
	}
	rc = confload_eval((const char *)m->data + sizeof(h),
			   m->len - sizeof(h), chunk, &merged, err,
			   sizeof(err));
	if (h.kind == RULESET_LOAD_RELOAD) {
		vm_modules_unstash(rc < 0);
		codeinfo_unstash(rc < 0);
	}
	if (rc == 0)
		codeinfo_note(NULL, (const char *)m->data + sizeof(h),
			      m->len - sizeof(h));
	if (rc < 0) {
		/* the parent logs it once (it knows whether the daemon
		 * goes on) */
		LOGD("%s", err);
		if (h.kind == RULESET_LOAD_START && !vm_has_ruleset())
			request_set_fail_closed(true);
		ruleset_parent_send_configured(h.seq, err);
	} else if (h.kind == RULESET_LOAD_CONFIGURE) {
		ruleset_apply_config(&merged);
		LOGI("config loaded (%s)", chunk);
		ruleset_parent_send_configured(h.seq, NULL);
	} else {
		/* a respawn or a SIGHUP: the settings in force stay (they
		 * were checked once, by the parent, at start); only the
		 * ruleset the file sets is taken */
		LOGI("config loaded (%s); settings unchanged", chunk);
		ruleset_parent_send_configured(h.seq, NULL);
	}
	ruleset_ready();
}

static void ruleset_parent_load(const struct msg *m)
{
	struct msg_ruleset_hdr h;
	char err[MSG_ERRTEXT_MAX];
	char chunk[sizeof(h.chunkname) + 1];
	int r;

	memcpy(&h, m->data, sizeof(h));
	memcpy(chunk, h.chunkname, sizeof(h.chunkname));
	chunk[sizeof(h.chunkname)] = '\0';
	if (h.kind == RULESET_LOAD_RELOAD) {
		vm_modules_stash(); /* modules are read again from the files */
		codeinfo_stash();
	}
	r = vm_load_ruleset((const char *)m->data + sizeof(h),
			    m->len - sizeof(h), chunk, err, sizeof(err));
	if (h.kind == RULESET_LOAD_RELOAD) {
		vm_modules_unstash(r != 0);
		codeinfo_unstash(r != 0);
	}
	if (r == 0)
		codeinfo_note(NULL, (const char *)m->data + sizeof(h),
			      m->len - sizeof(h));
	/* the parent logs a failure, once (it knows whether the daemon
	 * goes on) */
	if (r == 0)
		LOGI("ruleset loaded (%s)", chunk);
	else
		LOGD("ruleset: %s", err);
	if (r != 0 && h.kind == RULESET_LOAD_START && !vm_has_ruleset())
		request_set_fail_closed(true);
	ruleset_parent_send_loaded(h.seq, r == 0, err);
	ruleset_ready();
}

/* require(), loadfile(), dofile(): ask the parent for a module or a file
 * and wait for the answer (the only blocking wait on this channel; the
 * parent answers from memory or a few file reads). What else arrives
 * meanwhile (a saved update, a reload) is handled after the chunk that is
 * loading, in the order it came: an update must land on the ruleset it was
 * made for. See loader.h for what is returned. */
static int ruleset_parent_fetch(bool module, const char *name, char **data,
				size_t *len)
{
	uint32_t id = ++parent_link.module_seq;
	struct msg_module mm;
	struct msg m;
	int r, found;

	*data = NULL;
	*len = 0;
	if (chanev_send(&parent_link.ch,
			module ? MSG_R_MODULE_REQ : MSG_R_FILE_REQ, id, name,
			strlen(name), -1) < 0)
		return -1;
	r = chanev_await(&parent_link.ch, MSG_R_MODULE, id, MODULE_WAIT_MS,
			 &m);
	if (r == 0)
		LOGE("no answer for '%s'", name);
	if (r <= 0)
		return -1;
	memcpy(&mm, m.data, sizeof(mm));
	found = mm.found >= MODULE_ERROR && mm.found <= MODULE_REFUSED
			? mm.found
			: MODULE_ERROR;
	if (found == MODULE_ABSENT)
		return found;
	*len = m.len - sizeof(mm);
	*data = malloc(*len + 1);
	if (*data == NULL) {
		*len = 0;
		return -1;
	}
	memcpy(*data, m.data + sizeof(mm), *len);
	(*data)[*len] = '\0';
	return found;
}

/* os.exit(code): the parent stops the daemon (draining) and exits. */
static void ruleset_parent_send_exit(int code)
{
	struct msg_exit ex = { .code = code };

	if (chanev_send(&parent_link.ch, MSG_R_EXIT, 0, &ex, sizeof(ex),
			-1) < 0)
		LOGE("os.exit: cannot reach the parent: %s", strerror(errno));
	chanev_drain(&parent_link.ch, 1000);
}

/* The process's states, as the parent sees them through what it sends. */
enum {
	RP_INIT = 1,       /* R_CONFIG comes first */
	RP_CONFIGURED = 2, /* then R_START */
	RP_STARTED = 4,    /* sandboxed, with a Lua state */
};
#define RP_ANY (RP_INIT | RP_CONFIGURED | RP_STARTED)

static void ruleset_dispatch_parent_config(struct chanev *ce, struct msg *m,
					   void *arg)
{
	(void)arg;
	if (ruleset_set_config(m->data, m->len) < 0) {
		chanev_reject(ce, m, "bad R_CONFIG");
		return;
	}
	chanev_set_state(ce, RP_CONFIGURED);
}

static void ruleset_dispatch_parent_start(struct chanev *ce, struct msg *m,
					  void *arg)
{
	struct msg_sandbox sb;

	(void)arg;
	memcpy(&sb, m->data, sizeof(sb));
	chanev_set_state(ce, RP_STARTED);
	ruleset_start(&sb);
}

static void ruleset_dispatch_parent_ruleset(struct chanev *ce, struct msg *m,
					    void *arg)
{
	(void)ce;
	(void)arg;
	ruleset_parent_load(m);
}

static void ruleset_dispatch_parent_configfile(struct chanev *ce,
					       struct msg *m, void *arg)
{
	(void)ce;
	(void)arg;
	ruleset_parent_configfile(m);
}

static void ruleset_dispatch_parent_update(struct chanev *ce, struct msg *m,
					   void *arg)
{
	(void)ce;
	(void)arg;
	ruleset_parent_replay(m);
}

static void ruleset_dispatch_parent_peer_chan(struct chanev *ce,
					      struct msg *m, void *arg)
{
	struct msg_peer p;

	(void)arg;
	memcpy(&p, m->data, sizeof(p));
	if (p.worker >= CONF_WORKERS_MAX) {
		chanev_reject(ce, m, "R_PEER_CHAN for no such worker");
		return;
	}
	if (m->fd < 0) {
		LOGE("front channel (worker %u) lost in transit",
		     p.worker + 1);
		return;
	}
	(void)ruleset_front_attach(p.worker, m->fd);
}

static void ruleset_dispatch_parent_shutdown(struct chanev *ce,
					     struct msg *m, void *arg)
{
	(void)ce;
	(void)m;
	(void)arg;
	ruleset_exit(0);
}

static void ruleset_dispatch_parent_module(struct chanev *ce, struct msg *m,
					   void *arg)
{
	(void)ce;
	(void)m;
	(void)arg;
	/* a late answer to a require that gave up */
}

static void ruleset_dispatch_parent_executed(struct chanev *ce,
					     struct msg *m, void *arg)
{
	(void)ce;
	(void)arg;
	await_on_executed(m);
}

static void ruleset_dispatch_parent_listener(struct chanev *ce,
					     struct msg *m, void *arg)
{
	(void)ce;
	(void)arg;
	if (m->fd < 0) {
		LOGE("API listener lost in transit");
		return;
	}
	if (api_start(m->fd, ruleset_conf()) < 0) {
		LOGE("cannot serve the API");
		ruleset_exit(1);
	}
}

static void ruleset_dispatch_parent_tokens(struct chanev *ce, struct msg *m,
					   void *arg)
{
	struct msg_tokens t;

	(void)ce;
	(void)arg;
	memcpy(&t, m->data, sizeof(t));
	t.admin[MSG_TOKEN_MAX] = t.readonly[MSG_TOKEN_MAX] = '\0';
	api_access_set_tokens(t.admin, t.readonly);
	explicit_bzero(&t, sizeof(t));
}

static void ruleset_dispatch_parent_tls(struct chanev *ce, struct msg *m,
					void *arg)
{
	(void)arg;
	if (api_tls_receive(m) < 0)
		chanev_reject(ce, m, "bad R_TLS");
}

static void ruleset_dispatch_parent_status(struct chanev *ce, struct msg *m,
					   void *arg)
{
	struct msg_status st;

	(void)ce;
	(void)arg;
	memcpy(&st, m->data, sizeof(st));
	stats_set_status(&st);
}

/* What the parent sends, and when (R_PING: chanev.c). */
static const struct chanev_row ruleset_dispatch_parent[] = {
	{ MSG_R_CONFIG, RP_INIT, ruleset_dispatch_parent_config },
	{ MSG_R_START, RP_CONFIGURED, ruleset_dispatch_parent_start },
	{ MSG_R_RULESET, RP_STARTED, ruleset_dispatch_parent_ruleset },
	{ MSG_R_CONFIGFILE, RP_STARTED, ruleset_dispatch_parent_configfile },
	{ MSG_R_UPDATE, RP_STARTED, ruleset_dispatch_parent_update },
	{ MSG_R_PEER_CHAN, RP_STARTED, ruleset_dispatch_parent_peer_chan },
	{ MSG_R_SHUTDOWN, RP_ANY, ruleset_dispatch_parent_shutdown },
	{ MSG_R_MODULE, RP_ANY, ruleset_dispatch_parent_module },
	{ MSG_R_EXECUTED, RP_STARTED, ruleset_dispatch_parent_executed },
	{ MSG_R_LISTENER, RP_STARTED, ruleset_dispatch_parent_listener },
	{ MSG_R_TOKENS, RP_STARTED, ruleset_dispatch_parent_tokens },
	{ MSG_R_TLS, RP_STARTED, ruleset_dispatch_parent_tls },
	{ MSG_R_STATUS, RP_STARTED, ruleset_dispatch_parent_status },
};

/* The parent is gone (EOF): so are we; anything else out of place from it
 * ends the process too. */
static void ruleset_parent_err(struct chanev *ce, int err, const char *why,
			       void *arg)
{
	(void)ce;
	(void)arg;
	if (err == 0)
		exit(0);
	LOGE("parent channel: %s", why);
	ruleset_exit(1);
}

static const struct chanev_end ruleset_parent_end = {
	CHANEV_ROWS(ruleset_dispatch_parent), ruleset_parent_err, NULL
};

int ruleset_parent_init(struct event_base *base)
{
	loader_set_fetch(ruleset_parent_fetch);
	lib_os_set_exit(ruleset_parent_send_exit);
	return chanev_init(&parent_link.ch, base, RULESET_CHAN_FD,
			   CHAN_PARENT_RULESET, ROLE_PARENT,
			   &ruleset_parent_end, RP_INIT, NULL);
}
