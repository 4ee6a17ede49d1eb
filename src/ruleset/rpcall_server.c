/* rpcall_server: /ruleset/rpcall. The chunk (chunk name "=(rpc)", an
 * environment that reads through to _G) runs in an asynchronous routine,
 * so it may await; the answer goes out when it ends, or 504 after -t. */
#include "ruleset/rpcall_server.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <lauxlib.h>

#include "common/log.h"
#include "ruleset/api_conn.h"
#include "ruleset/aroutine.h"
#include "ruleset/lib_marshal.h"
#include "ruleset/rpcall.h"
#include "ruleset/ruleset_main.h"
#include "ruleset/updates.h"
#include "ruleset/vm.h"

struct rpc_srv {
	struct api_req *req;
	struct aroutine *ar;
	struct event *timer;
	bool done;
	bool waiting; /* rpcall_serve returned: rpc_done frees */
};

static void rpc_finish(struct rpc_srv *s)
{
	if (s->timer != NULL)
		event_free(s->timer);
	free(s);
}

static void rpc_answer(struct rpc_srv *s, lua_State *co, int status,
		       int nres);

static void rpc_done(struct aroutine *ar, lua_State *co, int status, int nres)
{
	struct rpc_srv *s = ar_arg(ar);

	s->ar = NULL;
	s->done = true;
	rpc_answer(s, co, status, nres);
	if (s->waiting)
		rpc_finish(s);
}

static void rpc_answer(struct rpc_srv *s, lua_State *co, int status,
		       int nres)
{
	const char *out;
	size_t len;

	if (status != LUA_OK) {
		const char *e = status == LUA_ERRMEM ? "not enough memory"
			      : lua_isstring(co, -1) ? lua_tostring(co, -1)
						     : "(error object)";
		LOG_RL(LOGL_WARN, 1, "rpcall: %s", e);
		api_reply(s->req, 500, RPC_MIME, e, strlen(e), NULL);
		return;
	}
	if (nres == 0) {
		/* returned nothing: "return true" */
		out = "";
		len = 0;
	} else {
		int top = lua_gettop(co);

		/* the results are the top nres values */
		if (lib_marshal_values(co, top - nres + 1, top) != 0) {
			const char *e = lua_gettop(co) > top
						? lua_tostring(co, -1)
						: NULL;

			if (e == NULL)
				e = "results not marshallable";
			api_reply(s->req, 500, RPC_MIME, e, strlen(e), NULL);
			return;
		}
		out = lua_tolstring(co, -1, &len);
	}
	{
		char *body = malloc(len + 12);
		size_t n;

		if (body == NULL) {
			api_reply(s->req, 500, RPC_MIME, "out of memory", 13,
				  NULL);
			return;
		}
		memcpy(body, "return true", 11);
		n = 11;
		if (len > 0) {
			body[n++] = ',';
			memcpy(body + n, out, len);
			n += len;
		}
		api_reply_text(s->req, 200, RPC_MIME, body, n,
			       n >= RPC_COMPRESS_MIN);
		free(body);
	}
}

static void rpc_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct rpc_srv *s = arg;
	static const char msg[] = "rpcall timed out";

	(void)fd;
	(void)what;
	if (s->ar != NULL)
		ar_cancel(s->ar);
	s->ar = NULL;
	api_reply(s->req, 504, RPC_MIME, msg, sizeof(msg) - 1, NULL);
	rpc_finish(s);
}

static int rpc_start(lua_State *L)
{
	struct rpc_srv *s = lua_touserdata(L, 1);
	struct api_req *r = s->req;

	lua_settop(L, 0);
	if (luaL_loadbufferx(L, r->body, r->body_len, "=(rpc)", "t") != LUA_OK)
		return lua_error(L);
	updates_push_env(L);
	lua_setupvalue(L, 1, 1);
	s->ar = ar_start(L, 0, AR_RPC, rpc_done, s);
	return 0;
}

void rpcall_serve(struct api_req *r)
{
	struct rpc_srv *s = calloc(1, sizeof(*s));
	lua_State *L = vm_state();
	struct timeval tv;
	double t = ruleset_conf()->timeout;

	if (s == NULL) {
		api_reply(r, 500, RPC_MIME, "out of memory", 13, NULL);
		return;
	}
	s->req = r;
	if (vm_pcall(rpc_start, s) != LUA_OK) {
		const char *e = lua_tostring(L, -1);
		api_reply(r, 500, "text/plain; charset=utf-8", e ? e : "?",
			  e ? strlen(e) : 1, NULL);
		lua_pop(L, 1);
		if (s->ar != NULL && !s->done)
			ar_cancel(s->ar);
		free(s);
		return;
	}
	if (s->done) {
		free(s);
		return;
	}
	/* it waits: bound it */
	tv.tv_sec = (time_t)t;
	tv.tv_usec = (suseconds_t)((t - (double)tv.tv_sec) * 1e6);
	s->timer = evtimer_new(ruleset_base(), rpc_timeout, s);
	if (s->timer != NULL)
		evtimer_add(s->timer, &tv);
	s->waiting = true;
}
