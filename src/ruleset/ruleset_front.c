/* ruleset_front: the ruleset process's end of the front<->ruleset
 * channel: the front's requests to decide, the outcomes of await.forward
 * dials, resolved names, the front's counters and the sockets it dialed
 * for the RPC client; and the synchronous round trips of neosocksd.resolve
 * and stats(). A violation closes the channel, drops what waited on it
 * and is reported to the parent (which hands both a new channel). */
#include "ruleset/ruleset_front.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/monotime.h"
#include "common/msg.h"
#include "ruleset/api_routes.h"
#include "ruleset/lib_await.h"
#include "ruleset/request.h"
#include "ruleset/rpcall_client.h"
#include "ruleset/ruleset_main.h"
#include "ruleset/ruleset_parent.h"

static struct chanev front_link;

struct chanev *ruleset_front(void)
{
	return front_link.open ? &front_link : NULL;
}

void ruleset_front_dispatch(struct chanev *ce, struct msg *m, void *arg)
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
void ruleset_front_fault(const char *why)
{
	if (why != NULL)
		LOGE("front channel: %s", why);
	chanev_close(&front_link);
	request_drop_all();
	api_routes_front_gone();
	rpcall_client_front_gone();
	chanev_send(ruleset_parent(), MSG_R_PEER_FAULT, 0, NULL, 0, -1);
}

static void ruleset_front_err(struct chanev *ce, int err, const char *why,
			      void *arg)
{
	(void)arg;
	if (err != 0) {
		LOGE("front channel: %s", why);
		chanev_send(ruleset_parent(), MSG_R_PEER_FAULT, 0, NULL, 0, -1);
	}
	chanev_close(ce); /* a new one comes when the front restarts */
	request_drop_all();
	api_routes_front_gone();
	rpcall_client_front_gone();
}

/* The front channel's handler: behind anything deferred, in order. */
static void ruleset_front_chan_msg(struct chanev *ce, struct msg *m,
				   void *arg)
{
	if (ruleset_parent_deferring()) {
		ruleset_parent_defer_from(m, true);
		return;
	}
	ruleset_front_dispatch(ce, m, arg);
}

/* A front message that is not the answer: for after, in order. */
static void ruleset_front_keep(const struct msg *m)
{
	ruleset_parent_defer_from(m, true);
}

/* A front message that breaks the catalogue (or a malformed frame): a
 * deferred fault, handled in order. Takes m's fd, if any. */
static void ruleset_front_keep_fault(const struct msg *m, const char *why)
{
	struct msg f = { .type = MSG_INVALID, .len = strlen(why) + 1,
			 .data = (const uint8_t *)why, .fd = -1 };

	if (m != NULL && m->fd >= 0)
		close(m->fd);
	ruleset_parent_defer_from(&f, true);
}

int ruleset_front_call(uint16_t type, uint32_t id, const void *data,
		       size_t len, uint16_t reply, int timeout_ms, void *out,
		       size_t cap, size_t *outlen)
{
	struct msgchan *ch = &front_link.ch;
	int64_t deadline = monotime_ms() + timeout_ms;
	struct msg m;

	if (!front_link.open ||
	    chanev_send(&front_link, type, id, data, len, -1) < 0)
		return 0;
	chanev_drain(&front_link, timeout_ms);
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
		left = deadline - monotime_ms();
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return 0;
		n = msgchan_read(ch);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return 0; /* the event loop sees the end too */
	}
}

void ruleset_front_attach(int fd)
{
	if (front_link.open) {
		chanev_close(&front_link);
		request_drop_all(); /* the old front's requests are gone */
	}
	ruleset_parent_drop_front();
	if (chanev_init(&front_link, ruleset_base(), fd, CHAN_FRONT_RULESET,
			ROLE_FRONT, ruleset_front_chan_msg, ruleset_front_err,
			NULL) < 0) {
		LOGE("cannot watch the front channel");
		close(fd);
	}
}
