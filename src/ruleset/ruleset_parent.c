/* ruleset_parent: the ruleset process's end of its channel to the parent
 * (fd 3). The parent sends the configuration, R_START, the source to load
 * (at start, or on trial after SIGHUP), saved updates, the API's listener
 * and tokens, modules and files for require()/loadfile(), command
 * statuses, and new channels to the front. Messages are handled in order:
 * while require() waits for the parent, everything else that arrives
 * waits behind it (the front's messages too). Anything out of place from
 * the parent ends the process (exit status 1). */
#include "ruleset/ruleset_parent.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "common/msg.h"
#include "ruleset/api_conn.h"
#include "ruleset/api_routes.h"
#include "ruleset/confload.h"
#include "ruleset/lib_await.h"
#include "ruleset/lib_os.h"
#include "ruleset/loader.h"
#include "ruleset/request.h"
#include "ruleset/ruleset_front.h"
#include "ruleset/ruleset_main.h"
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
	struct chanev ch;
	uint32_t module_seq;
	struct deferred *deferred, **deferred_tail;
	struct event *deferred_ev;
} parent_link;

static void ruleset_parent_msg(struct chanev *ce, struct msg *m, void *arg);

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
	ruleset_parent_send_loaded(h.seq, r == 0, err);
	ruleset_ready();
}

/* Messages that arrived while require() waited, for after it, in order
 * (and every later one behind them). Takes m->fd. */
void ruleset_parent_defer_from(const struct msg *m, bool front)
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
	*parent_link.deferred_tail = d;
	parent_link.deferred_tail = &d->next;
	event_active(parent_link.deferred_ev, EV_TIMEOUT, 1);
}

static void ruleset_parent_defer(const struct msg *m)
{
	ruleset_parent_defer_from(m, false);
}

static void ruleset_parent_deferred_cb(evutil_socket_t fd, short what,
				       void *arg)
{
	struct deferred *d;

	(void)fd;
	(void)what;
	(void)arg;
	while ((d = parent_link.deferred) != NULL) {
		struct msg m = { .type = d->type, .id = d->id, .len = d->len,
				 .data = d->data, .fd = d->fd };

		parent_link.deferred = d->next;
		if (parent_link.deferred == NULL)
			parent_link.deferred_tail = &parent_link.deferred;
		if (!d->front)
			ruleset_parent_msg(&parent_link.ch, &m, NULL);
		else if (d->type == MSG_INVALID)
			ruleset_front_fault((const char *)d->data);
		else if (ruleset_front() != NULL)
			ruleset_front_dispatch(ruleset_front(), &m, NULL);
		else if (d->fd >= 0)
			close(d->fd);
		free(d);
	}
}

/* Whole messages already read but not taken: no read event will come for
 * them, so they join the deferred queue. */
static void ruleset_parent_defer_buffered(struct msgchan *ch)
{
	struct msg m;
	int r;

	while ((r = msgchan_get(ch, &m)) == 1) {
		const char *why;

		if (msg_check(CHAN_PARENT_RULESET, ROLE_PARENT, &m, &why) < 0) {
			LOGE("parent channel: %s", why);
			ruleset_exit(1);
		}
		ruleset_parent_defer(&m);
	}
	if (r < 0) {
		LOGE("parent channel: malformed frame");
		ruleset_exit(1);
	}
}

/* The parent channel's handler: behind anything deferred, in order. */
static void ruleset_parent_chan_msg(struct chanev *ce, struct msg *m,
				    void *arg)
{
	if (parent_link.deferred != NULL) {
		ruleset_parent_defer(m);
		return;
	}
	ruleset_parent_msg(ce, m, arg);
}

/* require(), loadfile(), dofile(): ask the parent for a module or a file
 * and wait for the answer (the parent answers from memory or a few file
 * reads; meanwhile this process serves nothing). See loader.h. */
static int ruleset_parent_fetch(bool module, const char *name, char **data,
			 size_t *len)
{
	struct msgchan *ch = &parent_link.ch.ch;
	uint32_t id = ++parent_link.module_seq;
	struct msg m;
	ssize_t n;

	*data = NULL;
	*len = 0;
	if (chanev_send(&parent_link.ch,
			module ? MSG_R_MODULE_REQ : MSG_R_FILE_REQ, id, name,
			strlen(name), -1) < 0)
		return -1;
	chanev_drain(&parent_link.ch, MODULE_WAIT_MS);
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
				ruleset_parent_defer_buffered(ch);
				return found;
			}
			if (m.type == MSG_R_PING) {
				ruleset_parent_msg(&parent_link.ch, &m, NULL);
			} else if (m.type == MSG_R_MODULE) {
				continue; /* an answer to a require that gave up */
			} else {
				/* after the chunk that is loading, in the order
				 * they came: a saved update must land on the
				 * ruleset it was made for */
				ruleset_parent_defer(&m);
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

static void ruleset_parent_send_exit(int code)
{
	struct msg_exit ex = { .code = code };

	if (chanev_send(&parent_link.ch, MSG_R_EXIT, 0, &ex, sizeof(ex),
			-1) < 0)
		LOGE("os.exit: cannot reach the parent: %s", strerror(errno));
	chanev_drain(&parent_link.ch, 1000);
}

/* Deferred messages of a front that is gone. */
void ruleset_parent_drop_front(void)
{
	struct deferred **pp = &parent_link.deferred, *d;

	parent_link.deferred_tail = &parent_link.deferred;
	while ((d = *pp) != NULL) {
		if (d->front) {
			*pp = d->next;
			if (d->fd >= 0)
				close(d->fd);
			free(d);
			continue;
		}
		parent_link.deferred_tail = &d->next;
		pp = &d->next;
	}
}

static void ruleset_parent_msg(struct chanev *ce, struct msg *m, void *arg)
{
	(void)ce;
	(void)arg;
	switch (m->type) {
	case MSG_R_CONFIG:
		if (ruleset_set_config(m->data, m->len) < 0)
			goto bad;
		return;
	case MSG_R_START: {
		struct msg_sandbox sb;

		if (!ruleset_configured() || ruleset_started())
			goto bad;
		memcpy(&sb, m->data, sizeof(sb));
		ruleset_start(&sb);
		return;
	}
	case MSG_R_RULESET:
		if (!ruleset_started())
			goto bad;
		ruleset_parent_load(m);
		return;
	case MSG_R_CONFIGFILE:
		if (!ruleset_started())
			goto bad;
		ruleset_parent_configfile(m);
		return;
	case MSG_R_PEER_CHAN:
		if (m->fd < 0) {
			LOGE("front channel lost in transit");
			return;
		}
		ruleset_front_attach(m->fd);
		return;
	case MSG_R_PING:
		chanev_send(&parent_link.ch, MSG_R_PONG, m->id, m->data, m->len,
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
		if (m->fd < 0 || !ruleset_started()) {
			LOGE("API listener lost in transit");
			if (m->fd >= 0)
				close(m->fd);
			return;
		}
		if (api_start(m->fd, ruleset_conf()) < 0) {
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
		if (!ruleset_started())
			goto bad;
		ruleset_parent_replay(m);
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

bool ruleset_parent_deferring(void)
{
	return parent_link.deferred != NULL;
}

int ruleset_parent_init(struct event_base *base)
{
	parent_link.deferred_tail = &parent_link.deferred;
	parent_link.deferred_ev = event_new(base, -1, 0,
					    ruleset_parent_deferred_cb, NULL);
	loader_set_fetch(ruleset_parent_fetch);
	lib_os_set_exit(ruleset_parent_send_exit);
	if (parent_link.deferred_ev == NULL ||
	    chanev_init(&parent_link.ch, base, RULESET_CHAN_FD,
			CHAN_PARENT_RULESET, ROLE_PARENT,
			ruleset_parent_chan_msg, ruleset_parent_err,
			NULL) < 0)
		return -1;
	return 0;
}
