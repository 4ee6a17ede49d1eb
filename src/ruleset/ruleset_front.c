/* ruleset_front: the ruleset process's ends of the front<->ruleset
 * channels, one per front worker: the workers' requests to decide, the
 * outcomes of await.forward dials, resolved names, their counters and the
 * sockets they dialed for the RPC client; and the synchronous round trips
 * of neosocksd.resolve and stats(). Each request is answered on the
 * channel it came from. A violation closes that channel, drops what
 * waited on it and is reported to the parent (which hands both a new
 * channel). */
#include "ruleset/ruleset_front.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "common/msg.h"
#include "ruleset/lib_await.h"
#include "ruleset/request.h"
#include "ruleset/rpcall_client.h"
#include "ruleset/ruleset_main.h"
#include "ruleset/ruleset_parent.h"
#include "ruleset/stats.h"

static struct chanev front_links[CONF_WORKERS_MAX];
static unsigned front_next; /* ruleset_front_pick()'s round robin */

struct chanev *ruleset_front(unsigned worker)
{
	if (worker >= CONF_WORKERS_MAX || !front_links[worker].open)
		return NULL;
	return &front_links[worker];
}

int ruleset_front_pick(void)
{
	for (unsigned i = 0; i < CONF_WORKERS_MAX; i++) {
		unsigned w = (front_next + i) % CONF_WORKERS_MAX;

		if (front_links[w].open) {
			front_next = w + 1;
			return (int)w;
		}
	}
	return -1;
}

/* The worker a channel end belongs to (its chanev arg). */
static unsigned ruleset_front_worker(const struct chanev *ce)
{
	return (unsigned)(ce - front_links);
}

/* The front<->ruleset channel has one state: open. */
#define RF_OPEN 1

static void ruleset_dispatch_front_route_req(struct chanev *ce,
					     struct msg *m, void *arg)
{
	(void)arg;
	request_on_route(m, ruleset_front_worker(ce));
}

static void ruleset_dispatch_front_route_cancel(struct chanev *ce,
						struct msg *m, void *arg)
{
	(void)arg;
	request_on_cancel(m, ruleset_front_worker(ce));
}

static void ruleset_dispatch_front_forward_res(struct chanev *ce,
					       struct msg *m, void *arg)
{
	(void)arg;
	request_on_forward_result(m, ruleset_front_worker(ce));
}

static void ruleset_dispatch_front_resolve_res(struct chanev *ce,
					       struct msg *m, void *arg)
{
	(void)arg;
	await_on_resolve_result(m, ruleset_front_worker(ce));
}

static void ruleset_dispatch_front_stats(struct chanev *ce, struct msg *m,
					 void *arg)
{
	struct msg_stats f;

	(void)arg;
	memcpy(&f, m->data, sizeof(f));
	stats_on_front(ruleset_front_worker(ce), m->id, &f);
}

static void ruleset_dispatch_front_dial_res(struct chanev *ce, struct msg *m,
					    void *arg)
{
	(void)arg;
	rpcall_client_on_dial(m, ruleset_front_worker(ce));
}

/* What a front worker sends. */
static const struct chanev_row ruleset_dispatch_front[] = {
	{ MSG_ROUTE_REQ, RF_OPEN, ruleset_dispatch_front_route_req },
	{ MSG_ROUTE_CANCEL, RF_OPEN, ruleset_dispatch_front_route_cancel },
	{ MSG_FORWARD_RES, RF_OPEN, ruleset_dispatch_front_forward_res },
	{ MSG_RESOLVE_RES, RF_OPEN, ruleset_dispatch_front_resolve_res },
	{ MSG_STATS, RF_OPEN, ruleset_dispatch_front_stats },
	{ MSG_DIAL_RES, RF_OPEN, ruleset_dispatch_front_dial_res },
};

/* What waited on a worker's channel is gone with it. */
static void ruleset_front_forget(unsigned worker)
{
	request_drop_worker(worker);
	stats_front_gone(worker);
	rpcall_client_front_gone(worker);
	await_front_gone(worker);
}

/* The worker broke the protocol (the parent hands both a new channel), or
 * is gone (a new channel comes when it is back). */
static void ruleset_front_err(struct chanev *ce, int err, const char *why,
			      void *arg)
{
	struct msg_peer p = { .worker = ruleset_front_worker(ce) };

	(void)arg;
	if (err != 0) {
		LOGE("front channel (worker %u): %s", p.worker + 1, why);
		chanev_send(ruleset_parent(), MSG_R_PEER_FAULT, 0, &p,
			    sizeof(p), -1);
	}
	chanev_close(ce); /* a new one comes when the worker restarts */
	ruleset_front_forget(p.worker);
}

static const struct chanev_end ruleset_front_end = {
	CHANEV_ROWS(ruleset_dispatch_front), ruleset_front_err, NULL
};

int ruleset_front_attach(unsigned worker, int fd)
{
	struct chanev *ce;

	if (worker >= CONF_WORKERS_MAX)
		return -1;
	ce = &front_links[worker];
	if (ce->open) {
		chanev_close(ce);
		ruleset_front_forget(worker); /* the old worker's requests */
	}
	if (chanev_init(ce, ruleset_base(), fd, CHAN_FRONT_RULESET, ROLE_FRONT,
			&ruleset_front_end, RF_OPEN, NULL) < 0) {
		LOGE("cannot watch the front channel");
		close(fd);
	}
	return 0;
}

int ruleset_front_call(unsigned worker, uint16_t type, uint32_t id,
		       const void *data, size_t len, uint16_t reply,
		       int timeout_ms, void *out, size_t cap, size_t *outlen)
{
	struct chanev *ce = ruleset_front(worker);
	struct msg m;

	if (ce == NULL || chanev_send(ce, type, id, data, len, -1) < 0)
		return 0;
	if (chanev_await(ce, reply, id, timeout_ms, &m) != 1)
		return 0;
	*outlen = m.len < cap ? m.len : cap;
	memcpy(out, m.data, *outlen);
	if (m.fd >= 0)
		close(m.fd);
	return 1;
}
