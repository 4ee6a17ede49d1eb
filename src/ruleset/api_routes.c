/* api_routes: the REST API's endpoints, with the reference's paths,
 * formats and status codes (see docs/api.md for where we differ). */
#include "ruleset/api_routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>

#include "common/hexdigit.h"
#include "common/http1.h"
#include "common/log.h"
#include "common/monotime.h"
#include "ruleset/api.h"
#include "ruleset/api_conn.h"
#include "ruleset/api_text.h"
#include "ruleset/rpcall.h"
#include "ruleset/rpcall_server.h"
#include "ruleset/ruleset_main.h"
#include "ruleset/ruleset_parent.h"
#include "ruleset/updates.h"
#include "ruleset/vm.h"

#define TEXT_MIME "text/plain; charset=utf-8"
enum stats_kind { SK_GET, SK_POST, SK_METRICS };

static struct {
	struct stats_view prev; /* the last POST /stats, for its rates */
	bool have_prev;
} api_routes;

/* ---- query strings ---- */

/* Find key in the query; decode its value into out. 1 found (a bare key
 * gives ""), 0 absent, -1 malformed. */
static int query_get(const char *q, const char *key, char *out, size_t cap)
{
	size_t klen = strlen(key);

	while (*q != '\0') {
		const char *amp = strchr(q, '&');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);

		if (len >= klen && strncmp(q, key, klen) == 0 &&
		    (len == klen || q[klen] == '=')) {
			size_t o = 0;

			for (size_t i = klen + (len > klen); i < len; i++) {
				char c = q[i];

				if (c == '%') {
					int h, l;
					if (i + 2 >= len)
						return -1;
					h = hex_digit(q[i + 1]);
					l = hex_digit(q[i + 2]);
					if (h < 0 || l < 0 || (h == 0 && l == 0))
						return -1;
					c = (char)(h * 16 + l);
					i += 2;
				} else if (c == '+') {
					c = ' ';
				}
				if (o + 1 >= cap)
					return -1;
				out[o++] = c;
			}
			out[o] = '\0';
			return 1;
		}
		q += len + (amp ? 1 : 0);
	}
	return 0;
}

/* Every %-escape well formed (two hex digits, not %00). */
static bool query_valid(const char *q)
{
	for (; *q != '\0'; q++) {
		if (*q != '%')
			continue;
		if (hex_digit(q[1]) < 0 || hex_digit(q[2]) < 0 ||
		    (q[1] == '0' && q[2] == '0'))
			return false;
		q += 2;
	}
	return true;
}

/* A bare key counts as true here (the reference reads it as false). */
static bool query_bool(const char *q, const char *key, bool dflt)
{
	char v[16];
	int r = query_get(q, key, v, sizeof(v));

	if (r <= 0)
		return dflt;
	if (v[0] == '\0')
		return true;
	return strcmp(v, "1") == 0 || strcasecmp(v, "y") == 0 ||
	       strcasecmp(v, "yes") == 0 || strcasecmp(v, "on") == 0 ||
	       strcasecmp(v, "t") == 0 || strcasecmp(v, "true") == 0;
}

/* api_text.c; here because api_text.h is shared with other work */

/* ---- replies ---- */

static void reply_status(struct api_req *r, int status, const char *extra)
{
	char body[64];
	int n = snprintf(body, sizeof(body), "%d %s\n", status,
			 http1_reason(status));

	api_reply(r, status, TEXT_MIME, body, (size_t)n, extra);
}

static void reply_lua_error(struct api_req *r, int status, const char *err)
{
	api_reply_text(r, status, TEXT_MIME, err, strlen(err), false);
}

/* ---- Lua calls returning a string (ruleset.healthy/stats/metrics) ---- */

struct strcall {
	const char *field;
	int nargs;
	double dt;
	const char *q;
	bool has_q;
	char *out; /* malloc'd result, or NULL */
	size_t outlen;
	bool missing;
};

static int strcall_fn(lua_State *L)
{
	struct strcall *s = lua_touserdata(L, 1);
	const char *str;
	size_t len;

	lua_settop(L, 0);
	if (lua_getglobal(L, "ruleset") != LUA_TTABLE ||
	    lua_getfield(L, 1, s->field) != LUA_TFUNCTION) {
		s->missing = true;
		return 0;
	}
	if (s->nargs == 2) {
		lua_pushnumber(L, s->dt);
		if (s->has_q)
			lua_pushstring(L, s->q);
		else
			lua_pushnil(L);
	}
	lua_call(L, s->nargs, 1);
	if (lua_isnil(L, -1))
		return 0;
	str = luaL_tolstring(L, -1, &len);
	s->out = malloc(len + 1);
	if (s->out == NULL)
		return luaL_error(L, "out of memory");
	memcpy(s->out, str, len + 1);
	s->outlen = len;
	return 0;
}

/* 0 with s->out (maybe NULL), or -1 with the error text in s->out */
static int strcall_run(struct strcall *s)
{
	lua_State *L = vm_state();

	if (vm_pcall(strcall_fn, s) == LUA_OK)
		return 0;
	const char *e = lua_isstring(L, -1) ? lua_tostring(L, -1) : "?";
	s->out = strdup(e);
	s->outlen = s->out ? strlen(s->out) : 0;
	lua_pop(L, 1);
	return -1;
}

/* ---- /healthy ---- */

/* The body stays empty (as the reference's: load balancers probe it);
 * which code runs is in Neosocksd-Ruleset-Info headers, one each. */
static void ep_healthy(struct api_req *r)
{
	struct strcall s = { .field = "healthy" };
	struct growbuf h = GROWBUF_INIT(64 * 1024);

	text_ruleset_info(&h, "Neosocksd-Ruleset-Info: ", "\r\n");
	(void)strcall_run(&s);
	if (s.out == NULL || s.outlen == 0)
		api_reply(r, 200, NULL, NULL, 0,
			  h.failed || h.p == NULL ? NULL : h.p);
	else
		api_reply_text(r, 503, TEXT_MIME, s.out, s.outlen, false);
	free(s.out);
	growbuf_free(&h);
}

/* ---- /stats and /metrics (the front's counters come by message) ---- */

static void stats_answer(struct api_req *r, enum stats_kind kind,
			 const struct stats_view *v)
{
	struct growbuf d = GROWBUF_INIT(API_TEXT_MAX);

	if (kind == SK_METRICS) {
		struct strcall s = { .field = "metrics" };

		text_metrics(&d, v);
		if (strcall_run(&s) == 0 && s.out != NULL)
			(void)growbuf_add(&d, s.out, s.outlen);
		else if (s.out != NULL)
			LOG_RL(LOGL_WARN, 10, "ruleset.metrics: %s", s.out);
		free(s.out);
		if (d.failed)
			reply_status(r, 500, NULL);
		else
			api_reply_text(r, 200,
				       "text/plain; version=0.0.4; "
				       "charset=utf-8",
				       d.p, d.len, true);
		growbuf_free(&d);
		return;
	}
	if (kind == SK_POST && !api_routes.have_prev) {
		/* the first POST: rates since the start; no CPU time to
		 * compare with ("(unknown)") */
		memset(&api_routes.prev, 0, sizeof(api_routes.prev));
	}
	text_stats(&d, v, !query_bool(r->query, "nobanner", false),
		   query_bool(r->query, "server", true),
		   query_bool(r->query, "runtime", false),
		   kind == SK_POST ? &api_routes.prev : NULL);
	if (kind == SK_POST) {
		char q[1024];
		struct strcall s = {
			.field = "stats",
			.nargs = 2,
			.dt = v->uptime - api_routes.prev.uptime,
			.q = q,
		};

		s.has_q = query_get(r->query, "q", q, sizeof(q)) == 1;
		(void)strcall_run(&s);
		if (s.out != NULL)
			(void)growbuf_add(&d, s.out, s.outlen);
		free(s.out);
		api_routes.prev = *v;
		api_routes.have_prev = true;
	}
	if (d.failed)
		reply_status(r, 500, NULL);
	else
		api_reply_text(r, 200, TEXT_MIME, d.p, d.len, true);
	growbuf_free(&d);
}

static void stats_answer_get(struct api_req *r, const struct stats_view *v)
{
	stats_answer(r, SK_GET, v);
}

static void stats_answer_post(struct api_req *r, const struct stats_view *v)
{
	stats_answer(r, SK_POST, v);
}

static void stats_answer_metrics(struct api_req *r,
				 const struct stats_view *v)
{
	stats_answer(r, SK_METRICS, v);
}

/* Answered once the front's counters are in (or at once without it). */
static void ep_stats_common(struct api_req *r, stats_ready_fn answer)
{
	/* zeros would read as counter resets: too many waiting, come back */
	if (stats_gather(answer, r) < 0)
		reply_status(r, 503, "Retry-After: 1\r\n");
}

static void ep_stats(struct api_req *r)
{
	ep_stats_common(r, strcmp(r->method, "POST") == 0 ? stats_answer_post
							  : stats_answer_get);
}

static void ep_metrics(struct api_req *r)
{
	ep_stats_common(r, stats_answer_metrics);
}

/* ---- /ruleset/... ---- */

static void ep_invoke(struct api_req *r)
{
	char err[MSG_ERRTEXT_MAX];

	if (updates_invoke(r->body, r->body_len, err, sizeof(err)) < 0) {
		reply_lua_error(r, 500, err);
		return;
	}
	api_reply(r, 200, NULL, NULL, 0, NULL);
}

static void ep_update(struct api_req *r)
{
	char module[MSG_MODULE_NAME_MAX + 1] = "", chunk[128];
	char err[MSG_ERRTEXT_MAX];
	struct growbuf d = GROWBUF_INIT(API_TEXT_MAX);
	int hm = query_get(r->query, "module", module, sizeof(module));
	int hc = query_get(r->query, "chunkname", chunk, sizeof(chunk));
	int kind = hm == 1 ? UPDATE_MODULE : UPDATE_RULESET;
	double t0 = (double)monotime_us();

	if (hm < 0 || hc < 0 || (hm == 1 &&
				   !msg_module_name_ok(module, strlen(module), true))) {
		reply_status(r, 400, NULL);
		return;
	}
	if (hc != 1)
		snprintf(chunk, sizeof(chunk), "=%s",
			 kind == UPDATE_MODULE ? module : "ruleset");
	if (updates_apply(kind, module, chunk, r->body, r->body_len, err,
			  sizeof(err)) < 0) {
		reply_lua_error(r, 500, err);
		return;
	}
	ruleset_parent_persist(kind, module, chunk, r->body, r->body_len);
	text_time_cost(&d, ((double)monotime_us() - t0) / 1e6);
	if (d.failed)
		reply_status(r, 500, NULL);
	else
		api_reply(r, 200, TEXT_MIME, d.p, d.len, NULL);
	growbuf_free(&d);
}

static int gc_fn(lua_State *L)
{
	lua_gc(L, LUA_GCCOLLECT, 0);
	return 0;
}

static void ep_gc(struct api_req *r)
{
	size_t m0 = vm_memory(), o0 = vm_objects();
	double t0 = (double)monotime_us();
	struct stats_view v;
	struct growbuf d = GROWBUF_INIT(API_TEXT_MAX);

	if (vm_pcall(gc_fn, NULL) != LUA_OK)
		lua_pop(vm_state(), 1);
	stats_fill(&v);
	text_gc(&d, &v, (double)vm_memory() - (double)m0,
		(double)vm_objects() - (double)o0);
	text_time_cost(&d, ((double)monotime_us() - t0) / 1e6);
	if (d.failed)
		reply_status(r, 500, NULL);
	else
		api_reply(r, 200, TEXT_MIME, d.p, d.len, NULL);
	growbuf_free(&d);
}

static void ep_rpcall(struct api_req *r)
{
	if (!rpcall_mime_ok(r->content_type, strlen(r->content_type))) {
		reply_status(r, 400, NULL);
		return;
	}
	rpcall_serve(r);
}

/* ---- dispatch ---- */

struct endpoint {
	const char *path;
	const char *methods; /* comma list, for Allow */
	void (*fn)(struct api_req *r);
};

static const struct endpoint endpoints[] = {
	{ "/healthy", "GET", ep_healthy },
	{ "/stats", "GET, POST", ep_stats },
	{ "/metrics", "GET", ep_metrics },
	{ "/ruleset/invoke", "POST", ep_invoke },
	{ "/ruleset/update", "POST", ep_update },
	{ "/ruleset/gc", "POST", ep_gc },
	{ "/ruleset/rpcall", "POST", ep_rpcall },
};

static bool method_in(const char *m, const char *list)
{
	size_t n = strlen(m);

	for (const char *p = list; (p = strstr(p, m)) != NULL; p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0'))
			return true;
	return false;
}

/* Started without -r or -c, the front never asks the ruleset: updating
 * or running code would look successful and change nothing. */
static bool ruleset_enabled(void)
{
	const struct config *conf = ruleset_conf();

	return conf->ruleset[0] != '\0' || conf->config_file[0] != '\0';
}

void api_dispatch(struct api_req *r)
{
	if (strncmp(r->path, "/ruleset/", 9) == 0 && !ruleset_enabled()) {
		static const char msg[] = "ruleset is not enabled on the server";

		/* the reference's answer, before the method or path */
		api_reply(r, 500, TEXT_MIME, msg, sizeof(msg) - 1,
			  "X-Content-Type-Options: nosniff\r\n");
		return;
	}
	for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
		const struct endpoint *e = &endpoints[i];
		char allow[64];

		if (strcmp(r->path, e->path) != 0)
			continue;
		if (!method_in(r->method, e->methods)) {
			snprintf(allow, sizeof(allow), "Allow: %s\r\n",
				 e->methods);
			reply_status(r, 405, allow);
			return;
		}
		if (!query_valid(r->query)) {
			reply_status(r, 400, NULL);
			return;
		}
		e->fn(r);
		return;
	}
	reply_status(r, 404, NULL);
}
