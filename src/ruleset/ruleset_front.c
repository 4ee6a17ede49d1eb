/* ruleset_front: the ruleset process's end of the front<->ruleset
 * channel: the front's requests to decide, the outcomes of await.forward
 * dials, resolved names, the front's counters and the sockets it dialed
 * for the RPC client; and the synchronous round trips of neosocksd.resolve
 * and stats(). A violation closes the channel, drops what waited on it and
 * is reported to the parent (which hands both a new channel). */
#include "ruleset/ruleset_front.h"

#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/msg.h"
#include "ruleset/lib_await.h"
#include "ruleset/request.h"
#include "ruleset/rpcall_client.h"
#include "ruleset/ruleset_main.h"
#include "ruleset/ruleset_parent.h"
#include "ruleset/stats.h"

static struct chanev front_link;

struct chanev *ruleset_front(void)
{
	return front_link.open ? &front_link : NULL;
}

/* The front<->ruleset channel has one state: open. */
#define RF_OPEN 1

static void ruleset_dispatch_front_route_req(struct chanev *ce,
					     struct msg *m, void *arg)
{
	(void)ce;
	(void)arg;
	request_on_route(m);
}

static void ruleset_dispatch_front_route_cancel(struct chanev *ce,
						struct msg *m, void *arg)
{
	(void)ce;
	(void)arg;
	request_on_cancel(m);
}

static void ruleset_dispatch_front_forward_res(struct chanev *ce,
					       struct msg *m, void *arg)
{
	(void)ce;
	(void)arg;
	request_on_forward_result(m);
}

static void ruleset_dispatch_front_resolve_res(struct chanev *ce,
					       struct msg *m, void *arg)
{
	(void)ce;
	(void)arg;
	await_on_resolve_result(m);
}

static void ruleset_dispatch_front_stats(struct chanev *ce, struct msg *m,
					 void *arg)
{
	struct msg_stats f;

	(void)ce;
	(void)arg;
	memcpy(&f, m->data, sizeof(f));
	stats_on_front(&f);
}

static void ruleset_dispatch_front_dial_res(struct chanev *ce, struct msg *m,
					    void *arg)
{
	(void)ce;
	(void)arg;
	rpcall_client_on_dial(m);
}

/* What the front sends. */
static const struct chanev_row ruleset_dispatch_front[] = {
	{ MSG_ROUTE_REQ, RF_OPEN, ruleset_dispatch_front_route_req },
	{ MSG_ROUTE_CANCEL, RF_OPEN, ruleset_dispatch_front_route_cancel },
	{ MSG_FORWARD_RES, RF_OPEN, ruleset_dispatch_front_forward_res },
	{ MSG_RESOLVE_RES, RF_OPEN, ruleset_dispatch_front_resolve_res },
	{ MSG_STATS, RF_OPEN, ruleset_dispatch_front_stats },
	{ MSG_DIAL_RES, RF_OPEN, ruleset_dispatch_front_dial_res },
};

/* The front broke the protocol (the parent hands both a new channel), or
 * is gone (a new channel comes when it is back). */
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
	stats_front_gone();
	rpcall_client_front_gone();
}

static const struct chanev_end ruleset_front_end = {
	CHANEV_ROWS(ruleset_dispatch_front), ruleset_front_err, NULL
};

void ruleset_front_attach(int fd)
{
	if (front_link.open) {
		chanev_close(&front_link);
		request_drop_all(); /* the old front's requests are gone */
	}
	if (chanev_init(&front_link, ruleset_base(), fd, CHAN_FRONT_RULESET,
			ROLE_FRONT, &ruleset_front_end, RF_OPEN, NULL) < 0) {
		LOGE("cannot watch the front channel");
		close(fd);
	}
}

int ruleset_front_call(uint16_t type, uint32_t id, const void *data,
		       size_t len, uint16_t reply, int timeout_ms, void *out,
		       size_t cap, size_t *outlen)
{
	struct msg m;

	if (!front_link.open ||
	    chanev_send(&front_link, type, id, data, len, -1) < 0)
		return 0;
	if (chanev_await(&front_link, reply, id, timeout_ms, &m) != 1)
		return 0;
	*outlen = m.len < cap ? m.len : cap;
	memcpy(out, m.data, *outlen);
	if (m.fd >= 0)
		close(m.fd);
	return 1;
}
