#include "ruleset/request.h"

#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <lauxlib.h>

#include "common/chanev.h"
#include "common/log.h"
#include "common/route_wire.h"
#include "ruleset/aroutine.h"
#include "ruleset/ruleset_front.h"
#include "ruleset/ruleset_main.h"
#include "ruleset/vm.h"

#define REQ_BUCKETS 4096 /* power of two */

/* A request is named by the worker that sent it and that worker's id for
 * it (each front worker numbers its own sessions). */
struct request {
	uint32_t id;
	uint32_t worker;
	struct request *next; /* hash chain */
	struct aroutine *ar;
	struct route_request in; /* strings point into the copies below */
	bool in_start;  /* inside ar_start: do not free yet */
	bool finished;  /* the routine ended */
	bool forwarding, forwarded;
	char addr[ROUTE_STR_MAX + 1];
	char user[ROUTE_CRED_MAX + 1], pass[ROUTE_CRED_MAX + 1];
};

static struct request *req_bucket[REQ_BUCKETS];
static unsigned req_count;

unsigned request_pending(void)
{
	return req_count;
}

static struct request **req_slot(uint32_t worker, uint32_t id)
{
	/* a session's id is its worker's count: spread the workers */
	return &req_bucket[(id ^ (worker * 0x9e3779b1u)) & (REQ_BUCKETS - 1)];
}

static struct request *req_find(uint32_t worker, uint32_t id)
{
	struct request *r = *req_slot(worker, id);

	while (r != NULL && (r->id != id || r->worker != worker))
		r = r->next;
	return r;
}

static void req_remove(struct request *r)
{
	for (struct request **pp = req_slot(r->worker, r->id); *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			req_count--;
			break;
		}
	}
}

static void req_free(struct request *r)
{
	req_remove(r);
	explicit_bzero(r->pass, sizeof(r->pass));
	free(r);
}

/* The answer goes back on the channel the request came from. */
static void req_reply(uint32_t worker, uint32_t id,
		      const struct route_decision *d)
{
	char buf[sizeof(struct msg_route) + MSG_ROUTE_STRS_MAX];
	struct chanev *front = ruleset_front(worker);
	int n = route_wire_encode(buf, sizeof(buf), d);

	if (n < 0 || front == NULL)
		return;
	if (chanev_send(front, MSG_ROUTE_REPLY, id, buf, (size_t)n, -1) < 0)
		LOG_RL(LOGL_WARN, 10, "cannot answer the front");
}

static void req_reply_result(uint32_t worker, uint32_t id, uint16_t result)
{
	struct route_decision d = { .result = result };

	req_reply(worker, id, &d);
}

/* Values 1..nres of co: addr [, proxyN, ..., proxy1]. Hops go out first
 * hop first, so the list is reversed. */
static void req_reply_values(struct request *r, lua_State *co, int nres)
{
	struct route_decision d = { .result = ROUTE_GO };
	size_t len;

	if (nres < 1 || !lua_toboolean(co, 1)) {
		req_reply_result(r->worker, r->id, ROUTE_REJECT);
		return;
	}
	if (lua_type(co, 1) != LUA_TSTRING || nres - 1 > ROUTE_HOPS_MAX)
		goto bad;
	d.addr.p = lua_tolstring(co, 1, &len);
	if (len == 0 || len > ROUTE_STR_MAX)
		goto bad;
	d.addr.len = (uint16_t)len;
	d.nhops = (uint16_t)(nres - 1);
	for (int i = 0; i < nres - 1; i++) {
		int idx = nres - i; /* the last value is the first hop */

		if (lua_type(co, idx) != LUA_TSTRING)
			goto bad;
		d.hops[i].p = lua_tolstring(co, idx, &len);
		if (len == 0 || len > ROUTE_STR_MAX)
			goto bad;
		d.hops[i].len = (uint16_t)len;
	}
	req_reply(r->worker, r->id, &d);
	return;
bad:
	LOG_RL(LOGL_WARN, 10, "ruleset: %s returned an unusable route",
	       r->addr);
	req_reply_result(r->worker, r->id, ROUTE_ERROR);
}

static void req_done(struct aroutine *ar, lua_State *co, int status, int nres)
{
	struct request *r = ar_arg(ar);

	r->finished = true;
	r->ar = NULL;
	if (r->forwarded) {
		req_reply_result(r->worker, r->id, ROUTE_DONE);
	} else if (status != LUA_OK) {
		LOG_RL(LOGL_WARN, 1, "ruleset error: %s",
		       lua_isstring(co, -1) ? lua_tostring(co, -1) : "?");
		req_reply_result(r->worker, r->id, ROUTE_ERROR);
	} else {
		req_reply_values(r, co, nres);
	}
	if (!r->in_start)
		req_free(r);
}

static const char *req_callback(uint16_t kind)
{
	switch (kind) {
	case ROUTE_KIND_ROUTE:
		return "route";
	case ROUTE_KIND_ROUTE6:
		return "route6";
	default:
		return "resolve";
	}
}

/* [ud] in protected mode: find the callback and start the routine. */
static int req_start(lua_State *L)
{
	struct request *r = lua_touserdata(L, 1);

	lua_settop(L, 0);
	if (lua_getglobal(L, "ruleset") != LUA_TTABLE ||
	    lua_getfield(L, 1, req_callback(r->in.kind)) != LUA_TFUNCTION) {
		r->finished = true; /* no such callback: as without a ruleset */
		req_reply_result(r->worker, r->id, ROUTE_NO_RULESET);
		return 0;
	}
	lua_pushlstring(L, r->addr, r->in.addr.len);
	if (r->in.has_user)
		lua_pushlstring(L, r->user, r->in.user.len);
	else
		lua_pushnil(L);
	if (r->in.has_pass)
		lua_pushlstring(L, r->pass, r->in.pass.len);
	else
		lua_pushnil(L);
	r->ar = ar_start(L, 3, AR_REQUEST, req_done, r);
	return 0;
}

static bool req_fail_closed;

void request_set_fail_closed(bool on)
{
	req_fail_closed = on;
}

void request_on_route(const struct msg *m, unsigned worker)
{
	struct route_request in;
	struct request *r;

	if (route_wire_decode_req(m->data, m->len, &in) < 0 ||
	    req_find(worker, m->id) != NULL) {
		LOGE("malformed route request from the front");
		req_reply_result(worker, m->id, ROUTE_ERROR);
		return;
	}
	if (!vm_has_ruleset()) {
		/* none configured: direct, as the reference; one configured
		 * that did not load here: fail closed, never direct */
		req_reply_result(worker, m->id,
				 req_fail_closed ? ROUTE_ERROR
						 : ROUTE_NO_RULESET);
		return;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		req_reply_result(worker, m->id, ROUTE_ERROR);
		return;
	}
	r->id = m->id;
	r->worker = worker;
	r->in = in;
	memcpy(r->addr, in.addr.p, in.addr.len);
	memcpy(r->user, in.user.p, in.user.len);
	memcpy(r->pass, in.pass.p, in.pass.len);
	r->next = *req_slot(worker, r->id);
	*req_slot(worker, r->id) = r;
	req_count++;
	r->in_start = true;
	if (vm_pcall(req_start, r) != LUA_OK) {
		lua_State *L = vm_state();
		LOG_RL(LOGL_WARN, 1, "ruleset.%s: %s", req_callback(in.kind),
		       lua_tostring(L, -1));
		lua_pop(L, 1);
		if (r->ar != NULL && !r->finished)
			ar_cancel(r->ar);
		if (!r->finished)
			req_reply_result(r->worker, r->id, ROUTE_ERROR);
		r->finished = true;
	}
	r->in_start = false;
	if (r->finished)
		req_free(r);
}

void request_on_cancel(const struct msg *m, unsigned worker)
{
	struct request *r = req_find(worker, m->id);

	if (r == NULL)
		return;
	if (r->ar != NULL)
		ar_cancel(r->ar); /* its wait is cancelled; done never runs */
	req_free(r);
}

void request_drop_worker(unsigned worker)
{
	if (req_count == 0)
		return;
	for (unsigned i = 0; i < REQ_BUCKETS; i++) {
		struct request **pp = &req_bucket[i], *r;

		while ((r = *pp) != NULL) {
			if (r->worker != worker) {
				pp = &r->next;
				continue;
			}
			if (r->ar != NULL)
				ar_cancel(r->ar);
			req_free(r); /* unlinks it from *pp */
		}
	}
}

/* ---- await.forward ---- */

struct forward_res {
	bool ok;
	const char *err;
	size_t errlen;
};

static int fwd_push(lua_State *co, void *ud)
{
	struct forward_res *fr = ud;

	lua_pushboolean(co, fr->ok);
	if (fr->ok)
		return 1;
	lua_pushlstring(co, fr->err, fr->errlen);
	return 2;
}

static void fwd_cancel(void *op)
{
	struct request *r = op;

	r->forwarding = false;
}

int request_await_forward(lua_State *L)
{
	struct aroutine *ar = ar_current(L);
	struct request *r;
	struct route_decision d = { .result = ROUTE_GO };
	char buf[sizeof(struct msg_route) + MSG_ROUTE_STRS_MAX];
	int n = lua_gettop(L), len;
	size_t sl;

	if (ar == NULL)
		return luaL_error(L, "not in asynchronous routine");
	if (ar_kind_of(ar) != AR_REQUEST)
		return luaL_error(L, "await.forward must be called from a "
				     "ruleset request handler");
	r = ar_arg(ar);
	if (r->forwarded || r->forwarding)
		return luaL_error(L, "await.forward: the request is not "
				     "forwardable");
	if (n == 0 || lua_isnil(L, 1))
		return 0; /* nothing to forward to: the caller rejects */
	if (n - 1 > ROUTE_HOPS_MAX)
		return luaL_error(L, "await.forward: too many proxies");
	d.addr.p = luaL_checklstring(L, 1, &sl);
	if (sl == 0 || sl > ROUTE_STR_MAX)
		return luaL_error(L, "invalid address");
	d.addr.len = (uint16_t)sl;
	d.nhops = (uint16_t)(n - 1);
	for (int i = 0; i < n - 1; i++) {
		d.hops[i].p = luaL_checklstring(L, n - i, &sl);
		if (sl == 0 || sl > ROUTE_STR_MAX)
			return luaL_error(L, "invalid address");
		d.hops[i].len = (uint16_t)sl;
	}
	len = route_wire_encode(buf, sizeof(buf), &d);
	/* the session is the requesting worker's: that worker dials */
	if (len < 0 || ruleset_front(r->worker) == NULL ||
	    chanev_send(ruleset_front(r->worker), MSG_FORWARD_REQ, r->id, buf,
			(size_t)len, -1) < 0) {
		lua_pushboolean(L, 0);
		lua_pushliteral(L, "operation cancelled");
		return 2;
	}
	r->forwarding = true;
	return ar_wait(L, r, fwd_cancel, NULL);
}

void request_on_forward_result(const struct msg *m, unsigned worker)
{
	struct request *r = req_find(worker, m->id);
	struct msg_result res;
	struct forward_res fr;

	if (r == NULL || !r->forwarding || r->ar == NULL)
		return;
	memcpy(&res, m->data, sizeof(res));
	fr.ok = res.ok != 0;
	fr.err = (const char *)m->data + sizeof(res);
	fr.errlen = m->len - sizeof(res);
	r->forwarding = false;
	if (fr.ok)
		r->forwarded = true;
	ar_wake(r->ar, fwd_push, &fr);
}
