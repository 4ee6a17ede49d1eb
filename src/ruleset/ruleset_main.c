/* ruleset_main: the jailed process that hosts the Lua VM (and, later, the
 * REST API). It opens no files and has no network of its own: everything
 * arrives over its channels, the parent's on fd 3 and the front's (handed
 * over by the parent, replaced whenever the front restarts). */

#include "ruleset/ruleset_main.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>
#include <poll.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/chanev.h"
#include "common/config.h"
#include "common/log.h"
#include "common/msg.h"
#include "privsep/sandbox.h"
#include "ruleset/api.h"
#include "ruleset/api_conn.h"
#include "ruleset/api_routes.h"
#include "ruleset/confload.h"
#include "ruleset/hostapi.h"
#include "ruleset/lib_await.h"
#include "ruleset/lib_os.h"
#include "ruleset/loader.h"
#include "ruleset/request.h"
#include "ruleset/rpcall_client.h"
#include "ruleset/stats.h"
#include "ruleset/updates.h"
#include "ruleset/vm.h"

#define RULESET_CHAN_FD 3
#define MODULE_WAIT_MS 10000

struct deferred {
	struct deferred *next;
	bool front; /* from the front (else the parent); type 0: a fault */
	uint16_t type;
	uint32_t id, len;
	int fd;
	uint8_t data[];
};

static struct {
	struct event_base *base;
	struct chanev parent, front;
	struct config conf;
	bool have_conf, started, ready;
	uint32_t module_seq;
	struct deferred *deferred, **deferred_tail;
	struct event *deferred_ev;
} ruleset;

static void ruleset_parent_msg(struct chanev *ce, struct msg *m, void *arg);
static void ruleset_front_msg(struct chanev *ce, struct msg *m, void *arg);
static void ruleset_front_fault(const char *why);

struct event_base *ruleset_base(void)
{
	return ruleset.base;
}

struct chanev *ruleset_front(void)
{
	return ruleset.front.open ? &ruleset.front : NULL;
}

struct chanev *ruleset_parent(void)
{
	return &ruleset.parent;
}

const struct config *ruleset_conf(void)
{
	return &ruleset.conf;
}

void ruleset_persist(int kind, const char *module, const char *chunkname,
		     const char *src, size_t len)
{
	struct msg_update u = { .kind = (uint32_t)kind };
	struct iovec iov[2] = { { &u, sizeof(u) },
				{ (void *)(uintptr_t)src, len } };

	/* always: the parent replays them to a respawned process, and saves
	 * them with --state-dir */
	snprintf(u.name, sizeof(u.name), "%s", module);
	snprintf(u.chunkname, sizeof(u.chunkname), "%s", chunkname);
	if (chanev_sendv(&ruleset.parent, MSG_R_PERSIST, 0, iov, 2, -1) < 0)
		LOGE("cannot save the update: %s", strerror(errno));
}

/* --state-dir: an update saved earlier, replayed after a (re)start */
static void ruleset_replay(const struct msg *m)
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

static void ruleset_exit(int code)
{
	chanev_drain(&ruleset.parent, 1000);
	exit(code);
}

static void ruleset_send_loaded(uint32_t seq, bool ok, const char *err)
{
	struct msg_loaded ld = { .seq = seq, .ok = ok ? 1 : 0 };
	size_t elen = ok ? 0 : strnlen(err, MSG_ERRTEXT_MAX);
	struct iovec iov[2] = { { &ld, sizeof(ld) },
				{ (void *)(uintptr_t)err, elen } };

	chanev_sendv(&ruleset.parent, MSG_R_LOADED, seq, iov, elen > 0 ? 2 : 1,
		     -1);
}

static void ruleset_ready(void)
{
	if (ruleset.ready)
		return;
	ruleset.ready = true;
	chanev_send(&ruleset.parent, MSG_R_READY, 0, NULL, 0, -1);
}

static void ruleset_send_configured(uint32_t seq, const char *err)
{
	struct msg_loaded ld = { .seq = seq, .ok = err == NULL };
	struct iovec iov[2] = { { &ld, sizeof(ld) }, { NULL, 0 } };

	if (err == NULL)
		iov[1] = (struct iovec){ &ruleset.conf, sizeof(ruleset.conf) };
	else
		iov[1] = (struct iovec){ (void *)(uintptr_t)err,
					 strnlen(err, MSG_ERRTEXT_MAX) };
	chanev_sendv(&ruleset.parent, MSG_R_CONFIGURED, seq, iov, 2, -1);
}

/* -c: evaluate the config file; report the merged settings. */
static void ruleset_configfile(const struct msg *m)
{
	struct msg_ruleset_hdr h;
	char err[MSG_ERRTEXT_MAX];
	char chunk[sizeof(h.chunkname) + 1];
	struct config merged = ruleset.conf;
	int rc;

	memcpy(&h, m->data, sizeof(h));
	memcpy(chunk, h.chunkname, sizeof(h.chunkname));
	chunk[sizeof(h.chunkname)] = '\0';
	if (h.kind == RULESET_LOAD_RELOAD)
		vm_modules_stash(); /* modules are read again from the files */
	rc = confload_eval((const char *)m->data + sizeof(h),
			   m->len - sizeof(h), chunk, &merged, err,
			   sizeof(err));
	if (h.kind == RULESET_LOAD_RELOAD)
		vm_modules_unstash(rc < 0);
	if (rc < 0) {
		LOGW("%s", err);
		if (h.kind == RULESET_LOAD_START && !vm_has_ruleset()) {
			LOGE("the configuration did not load: requests fail "
			     "until a ruleset does");
			request_set_fail_closed(true);
		}
		ruleset_send_configured(h.seq, err);
	} else if (h.kind == RULESET_LOAD_CONFIGURE) {
		struct vm_conf vc = {
			.memlimit = (size_t)merged.memlimit << 20,
			.traceback = merged.traceback,
		};

		ruleset.conf = merged;
		log_level = ruleset.conf.loglevel;
		vm_reconf(&vc);
		LOGI("config loaded (%s)", chunk);
		ruleset_send_configured(h.seq, NULL);
	} else {
		/* a respawn or a SIGHUP: the settings in force stay (they
		 * were checked once, by the parent, at start); only the
		 * ruleset the file sets is taken */
		LOGI("config loaded (%s); settings unchanged", chunk);
		ruleset_send_configured(h.seq, NULL);
	}
	ruleset_ready();
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
	if (h.kind == RULESET_LOAD_RELOAD)
		vm_modules_stash(); /* modules are read again from the files */
	r = vm_load_ruleset((const char *)m->data + sizeof(h),
			    m->len - sizeof(h), chunk, err, sizeof(err));
	if (h.kind == RULESET_LOAD_RELOAD)
		vm_modules_unstash(r != 0);
	if (r == 0)
		LOGI("ruleset loaded (%s)", chunk);
	else
		LOGW("ruleset: %s", err);
	if (r != 0 && h.kind == RULESET_LOAD_START && !vm_has_ruleset()) {
		LOGE("the configured ruleset did not load: requests fail "
		     "until one does");
		request_set_fail_closed(true);
	}
	ruleset_send_loaded(h.seq, r == 0, err);
	ruleset_ready();
}

/* What package.path shows: the directories the parent searches, in its
 * order (privsep/modules.c), as Lua templates. */
static const char *ruleset_package_path(char *out, size_t cap)
{
	const char *files[2] = { ruleset.conf.ruleset,
				 ruleset.conf.config_file };
	char buf[CONF_PATH_MAX];
	size_t off = 0;

	out[0] = '\0';
	for (int i = 0; i < 3; i++) {
		char *save = NULL, *d;

		if (i < 2 && files[i][0] == '\0')
			continue;
		snprintf(buf, sizeof(buf), "%s",
			 i < 2 ? files[i] : ruleset.conf.lua_path);
		d = i < 2 ? dirname(buf) : strtok_r(buf, ":", &save);
		for (; d != NULL; d = i < 2 ? NULL : strtok_r(NULL, ":", &save)) {
			int n = snprintf(out + off, cap - off,
					 "%s%s/?.lua;%s/?/init.lua",
					 off > 0 ? ";" : "", d, d);

			if (n < 0 || (size_t)n >= cap - off) {
				out[off] = '\0';
				return out;
			}
			off += (size_t)n;
		}
	}
	return out;
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
	char path[2 * CONF_PATH_MAX + 64];
	struct vm_conf vc = {
		.memlimit = (size_t)ruleset.conf.memlimit << 20,
		.budget_ms = 0,
		.traceback = ruleset.conf.traceback,
		.package_path = ruleset_package_path(path, sizeof(path)),
	};

	if (vm_init(&vc) < 0) {
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
	ruleset.started = true;
	if (!ruleset.conf.ruleset[0] && !ruleset.conf.config_file[0])
		ruleset_ready(); /* nothing to load: serve "no ruleset" */
}

static void ruleset_front_msg(struct chanev *ce, struct msg *m, void *arg)
{
	(void)ce;
	(void)arg;
	switch (m->type) {
	case MSG_ROUTE_REQ:
		request_on_route(m);
		return;
	case MSG_ROUTE_CANCEL:
		request_on_cancel(m);
		return;
	case MSG_FORWARD_RES:
		request_on_forward_result(m);
		return;
	case MSG_RESOLVE_RES:
		await_on_resolve_result(m);
		return;
	case MSG_STATS:
		api_routes_on_stats(m);
		return;
	case MSG_DIAL_RES:
		rpcall_client_on_dial(m);
		return;
	default:
		break;
	}
	if (m->fd >= 0)
		close(m->fd);
	LOGE("unexpected %s from the front", msg_name(m->type));
	ruleset_front_fault(NULL);
}

/* The front broke the protocol: drop its channel; the parent relinks. */
static void ruleset_front_fault(const char *why)
{
	if (why != NULL)
		LOGE("front channel: %s", why);
	chanev_close(&ruleset.front);
	request_drop_all();
	api_routes_front_gone();
	rpcall_client_front_gone();
	chanev_send(&ruleset.parent, MSG_R_PEER_FAULT, 0, NULL, 0, -1);
}

static void ruleset_front_err(struct chanev *ce, int err, const char *why,
			      void *arg)
{
	(void)arg;
	if (err != 0) {
		LOGE("front channel: %s", why);
		chanev_send(&ruleset.parent, MSG_R_PEER_FAULT, 0, NULL, 0, -1);
	}
	chanev_close(ce); /* a new one comes when the front restarts */
	request_drop_all();
	api_routes_front_gone();
	rpcall_client_front_gone();
}

static void ruleset_take_front(int fd);

/* Messages that arrived while require() waited, for after it, in order
 * (and every later one behind them). Takes m->fd. */
static void ruleset_defer_from(const struct msg *m, bool front)
{
	struct deferred *d = malloc(sizeof(*d) + m->len);

	if (d == NULL) {
		LOGE("out of memory deferring %s", msg_name(m->type));
		ruleset_exit(1);
	}
	d->next = NULL;
	d->front = front;
	d->type = m->type;
	d->id = m->id;
	d->len = m->len;
	d->fd = m->fd;
	memcpy(d->data, m->data, m->len);
	*ruleset.deferred_tail = d;
	ruleset.deferred_tail = &d->next;
	event_active(ruleset.deferred_ev, EV_TIMEOUT, 1);
}

static void ruleset_defer(const struct msg *m)
{
	ruleset_defer_from(m, false);
}

static void ruleset_deferred_cb(evutil_socket_t fd, short what, void *arg)
{
	struct deferred *d;

	(void)fd;
	(void)what;
	(void)arg;
	while ((d = ruleset.deferred) != NULL) {
		struct msg m = { .type = d->type, .id = d->id, .len = d->len,
				 .data = d->data, .fd = d->fd };

		ruleset.deferred = d->next;
		if (ruleset.deferred == NULL)
			ruleset.deferred_tail = &ruleset.deferred;
		if (!d->front)
			ruleset_parent_msg(&ruleset.parent, &m, NULL);
		else if (d->type == MSG_INVALID)
			ruleset_front_fault((const char *)d->data);
		else if (ruleset.front.open)
			ruleset_front_msg(&ruleset.front, &m, NULL);
		else if (d->fd >= 0)
			close(d->fd);
		free(d);
	}
}

/* Whole messages already read but not taken: no read event will come for
 * them, so they join the deferred queue. */
static void ruleset_defer_buffered(struct msgchan *ch)
{
	struct msg m;
	int r;

	while ((r = msgchan_get(ch, &m)) == 1) {
		const char *why;

		if (msg_check(CHAN_PARENT_RULESET, ROLE_PARENT, &m, &why) < 0) {
			LOGE("parent channel: %s", why);
			ruleset_exit(1);
		}
		ruleset_defer(&m);
	}
	if (r < 0) {
		LOGE("parent channel: malformed frame");
		ruleset_exit(1);
	}
}

/* The front channel's handler: behind anything deferred, in order. */
static void ruleset_front_chan_msg(struct chanev *ce, struct msg *m,
				   void *arg)
{
	if (ruleset.deferred != NULL) {
		ruleset_defer_from(m, true);
		return;
	}
	ruleset_front_msg(ce, m, arg);
}

/* The parent channel's handler: behind anything deferred, in order. */
static void ruleset_parent_chan_msg(struct chanev *ce, struct msg *m,
				    void *arg)
{
	if (ruleset.deferred != NULL) {
		ruleset_defer(m);
		return;
	}
	ruleset_parent_msg(ce, m, arg);
}

/* require(), loadfile(), dofile(): ask the parent for a module or a file
 * and wait for the answer (the parent answers from memory or a few file
 * reads; meanwhile this process serves nothing). See loader.h. */
static int ruleset_fetch(bool module, const char *name, char **data,
			 size_t *len)
{
	struct msgchan *ch = &ruleset.parent.ch;
	uint32_t id = ++ruleset.module_seq;
	struct msg m;
	ssize_t n;

	*data = NULL;
	*len = 0;
	if (chanev_send(&ruleset.parent,
			module ? MSG_R_MODULE_REQ : MSG_R_FILE_REQ, id, name,
			strlen(name), -1) < 0)
		return -1;
	chanev_drain(&ruleset.parent, MODULE_WAIT_MS);
	for (;;) {
		struct pollfd pfd = { ch->fd, POLLIN, 0 };
		int r;

		while ((r = msgchan_get(ch, &m)) == 1) {
			const char *why;

			if (msg_check(CHAN_PARENT_RULESET, ROLE_PARENT, &m,
				      &why) < 0) {
				LOGE("parent channel: %s", why);
				ruleset_exit(1);
			}
			if (m.type == MSG_R_MODULE && m.id == id) {
				struct msg_module mm;
				int found;

				memcpy(&mm, m.data, sizeof(mm));
				found = mm.found >= MODULE_ERROR &&
						mm.found <= MODULE_REFUSED
					? mm.found
					: MODULE_ERROR;
				*len = m.len - sizeof(mm);
				if (found != MODULE_ABSENT &&
				    (*data = malloc(*len + 1)) != NULL) {
					memcpy(*data, m.data + sizeof(mm),
					       *len);
					(*data)[*len] = '\0';
				} else if (found != MODULE_ABSENT) {
					found = -1;
				}
				ruleset_defer_buffered(ch);
				return found;
			}
			if (m.type == MSG_R_PING) {
				ruleset_parent_msg(&ruleset.parent, &m, NULL);
			} else if (m.type == MSG_R_MODULE) {
				continue; /* an answer to a require that gave up */
			} else {
				/* after the chunk that is loading, in the order
				 * they came: a saved update must land on the
				 * ruleset it was made for */
				ruleset_defer(&m);
			}
		}
		if (r < 0) {
			LOGE("parent channel: malformed frame");
			ruleset_exit(1);
		}
		if (poll(&pfd, 1, MODULE_WAIT_MS) <= 0) {
			LOGE("no answer for '%s'", name);
			return -1;
		}
		n = msgchan_read(ch);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			ruleset_exit(0); /* the parent is gone */
	}
}

static int64_t ruleset_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A front message that is not the answer: for after, in order. */
static void ruleset_front_keep(const struct msg *m)
{
	ruleset_defer_from(m, true);
}

/* A front message that breaks the catalogue (or a malformed frame): a
 * deferred fault, handled in order. Takes m's fd, if any. */
static void ruleset_front_keep_fault(const struct msg *m, const char *why)
{
	struct msg f = { .type = MSG_INVALID, .len = strlen(why) + 1,
			 .data = (const uint8_t *)why, .fd = -1 };

	if (m != NULL && m->fd >= 0)
		close(m->fd);
	ruleset_defer_from(&f, true);
}

int ruleset_front_call(uint16_t type, uint32_t id, const void *data,
		       size_t len, uint16_t reply, int timeout_ms, void *out,
		       size_t cap, size_t *outlen)
{
	struct msgchan *ch = &ruleset.front.ch;
	int64_t deadline = ruleset_now_ms() + timeout_ms;
	struct msg m;

	if (!ruleset.front.open ||
	    chanev_send(&ruleset.front, type, id, data, len, -1) < 0)
		return 0;
	chanev_drain(&ruleset.front, timeout_ms);
	for (;;) {
		struct pollfd pfd = { ch->fd, POLLIN, 0 };
		int64_t left;
		ssize_t n;
		int r;

		while ((r = msgchan_get(ch, &m)) == 1) {
			const char *why;

			if (msg_check(CHAN_FRONT_RULESET, ROLE_FRONT, &m,
				      &why) < 0) {
				ruleset_front_keep_fault(&m, why);
				return 0;
			}
			if (m.type == reply &&
			    (reply == MSG_STATS || m.id == id)) {
				*outlen = m.len < cap ? m.len : cap;
				memcpy(out, m.data, *outlen);
				/* STATS also answers the API's waiters */
				if (reply == MSG_STATS)
					ruleset_front_keep(&m);
				while ((r = msgchan_get(ch, &m)) == 1)
					ruleset_front_keep(&m);
				if (r < 0)
					ruleset_front_keep_fault(
						NULL, "malformed frame");
				return 1;
			}
			ruleset_front_keep(&m);
		}
		if (r < 0) {
			ruleset_front_keep_fault(NULL, "malformed frame");
			return 0;
		}
		left = deadline - ruleset_now_ms();
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return 0;
		n = msgchan_read(ch);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return 0; /* the event loop sees the end too */
	}
}

static void ruleset_send_exit(int code)
{
	struct msg_exit ex = { .code = code };

	if (chanev_send(&ruleset.parent, MSG_R_EXIT, 0, &ex, sizeof(ex),
			-1) < 0)
		LOGE("os.exit: cannot reach the parent: %s", strerror(errno));
	chanev_drain(&ruleset.parent, 1000);
}

/* Deferred messages of a front that is gone. */
static void ruleset_drop_deferred_front(void)
{
	struct deferred **pp = &ruleset.deferred, *d;

	ruleset.deferred_tail = &ruleset.deferred;
	while ((d = *pp) != NULL) {
		if (d->front) {
			*pp = d->next;
			if (d->fd >= 0)
				close(d->fd);
			free(d);
			continue;
		}
		ruleset.deferred_tail = &d->next;
		pp = &d->next;
	}
}

static void ruleset_take_front(int fd)
{
	if (ruleset.front.open) {
		chanev_close(&ruleset.front);
		request_drop_all(); /* the old front's requests are gone */
	}
	ruleset_drop_deferred_front();
	if (chanev_init(&ruleset.front, ruleset.base, fd, CHAN_FRONT_RULESET,
			ROLE_FRONT, ruleset_front_chan_msg, ruleset_front_err,
			NULL) < 0) {
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
		if (ruleset.have_conf ||
		    config_validate_wire((const void *)m->data, m->len) < 0)
			goto bad;
		memcpy(&ruleset.conf, m->data, sizeof(ruleset.conf));
		log_level = ruleset.conf.loglevel;
		ruleset.have_conf = true;
		return;
	case MSG_R_START:
		if (!ruleset.have_conf || ruleset.started)
			goto bad;
		ruleset_start(m);
		return;
	case MSG_R_RULESET:
		if (!ruleset.started)
			goto bad;
		ruleset_load(m);
		return;
	case MSG_R_CONFIGFILE:
		if (!ruleset.started)
			goto bad;
		ruleset_configfile(m);
		return;
	case MSG_R_PEER_CHAN:
		if (m->fd < 0) {
			LOGE("front channel lost in transit");
			return;
		}
		ruleset_take_front(m->fd);
		return;
	case MSG_R_PING:
		chanev_send(&ruleset.parent, MSG_R_PONG, m->id, m->data, m->len,
			    -1);
		return;
	case MSG_R_SHUTDOWN:
		ruleset_exit(0);
		return;
	case MSG_R_MODULE:
		return; /* a late answer to a require that gave up */
	case MSG_R_EXECUTED:
		await_on_executed(m);
		return;
	case MSG_R_LISTENER:
		if (m->fd < 0 || !ruleset.started) {
			LOGE("API listener lost in transit");
			if (m->fd >= 0)
				close(m->fd);
			return;
		}
		if (api_start(m->fd, &ruleset.conf) < 0) {
			LOGE("cannot serve the API");
			ruleset_exit(1);
		}
		return;
	case MSG_R_TOKENS: {
		struct msg_tokens t;

		memcpy(&t, m->data, sizeof(t));
		t.admin[MSG_TOKEN_MAX] = t.readonly[MSG_TOKEN_MAX] = '\0';
		api_set_tokens(t.admin, t.readonly);
		explicit_bzero(&t, sizeof(t));
		return;
	}
	case MSG_R_STATUS: {
		struct msg_status st;

		memcpy(&st, m->data, sizeof(st));
		api_routes_set_status(&st);
		stats_set_status(&st);
		return;
	}
	case MSG_R_UPDATE:
		if (!ruleset.started)
			goto bad;
		ruleset_replay(m);
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
	lib_os_snapshot_env(); /* before anything reads the environment */
	log_init("ruleset", 2, true);
	chanev_log_setup();
	prctl(PR_SET_NAME, "neosocksd-rules");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	ruleset.base = event_base_new();
	ruleset.deferred_tail = &ruleset.deferred;
	if (ruleset.base != NULL)
		ruleset.deferred_ev = event_new(ruleset.base, -1, 0,
						ruleset_deferred_cb, NULL);
	loader_set_fetch(ruleset_fetch);
	lib_os_set_exit(ruleset_send_exit);
	if (ruleset.base == NULL || ruleset.deferred_ev == NULL ||
	    chanev_init(&ruleset.parent, ruleset.base, RULESET_CHAN_FD,
			CHAN_PARENT_RULESET, ROLE_PARENT,
			ruleset_parent_chan_msg, ruleset_parent_err,
			NULL) < 0) {
		LOGE("cannot set up the parent channel");
		return 1;
	}
	event_base_dispatch(ruleset.base);
	return 0;
}
