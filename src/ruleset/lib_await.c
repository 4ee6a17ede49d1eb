/* lib_await: the await.* primitives. Each may only run inside an
 * asynchronous routine; it registers what it waits on and yields, and the
 * event that completes it wakes the routine with the results. */
#include "ruleset/lib_await.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <lauxlib.h>

#include "common/addr.h"
#include "common/chanev.h"
#include "common/log.h"
#include "ruleset/aroutine.h"
#include "ruleset/hostapi.h"
#include "ruleset/request.h"
#include "ruleset/rpcall_client.h"
#include "ruleset/ruleset_front.h"
#include "ruleset/ruleset_main.h"
#include "ruleset/ruleset_parent.h"
#include "ruleset/vm.h"

#define RESOLVE_PENDING_MAX 1024

static struct aroutine *await_check(lua_State *L)
{
	struct aroutine *ar = ar_current(L);

	if (ar == NULL)
		luaL_error(L, "not in asynchronous routine");
	return ar;
}

/* ---- await.sleep(seconds) ---- */

struct sleep_op {
	struct event *ev;
	struct aroutine *ar;
};

static int sleep_push(lua_State *co, void *ud)
{
	(void)co;
	(void)ud;
	return 0;
}

static void sleep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sleep_op *op = arg;
	struct aroutine *ar = op->ar;

	(void)fd;
	(void)what;
	event_free(op->ev);
	free(op);
	ar_wake(ar, sleep_push, NULL);
}

static void sleep_cancel(void *arg)
{
	struct sleep_op *op = arg;

	event_free(op->ev);
	free(op);
}

static int await_sleep(lua_State *L)
{
	struct aroutine *ar = await_check(L);
	lua_Number n = luaL_checknumber(L, 1);
	struct sleep_op *op;
	struct timeval tv;

	luaL_argcheck(L, isfinite(n) && n >= 0 && n <= 1e9, 1,
		      "invalid interval");
	op = malloc(sizeof(*op));
	if (op == NULL)
		return luaL_error(L, "out of memory");
	op->ar = ar;
	op->ev = evtimer_new(ruleset_base(), sleep_cb, op);
	if (op->ev == NULL) {
		free(op);
		return luaL_error(L, "out of memory");
	}
	tv.tv_sec = (time_t)n;
	tv.tv_usec = (suseconds_t)((n - floor(n)) * 1e6);
	evtimer_add(op->ev, &tv);
	return ar_wait(L, op, sleep_cancel, NULL);
}

/* ---- await.resolve(host): the front resolves, we have no network ---- */

struct resolve_op {
	uint32_t qid;
	unsigned worker; /* the front worker asked */
	struct aroutine *ar;
};

static struct resolve_op *resolve_pending[RESOLVE_PENDING_MAX];
static unsigned resolve_n;
static uint32_t resolve_next;

static void resolve_forget(struct resolve_op *op)
{
	for (unsigned i = 0; i < resolve_n; i++) {
		if (resolve_pending[i] == op) {
			resolve_pending[i] = resolve_pending[--resolve_n];
			return;
		}
	}
}

static void resolve_cancel(void *arg)
{
	resolve_forget(arg);
	free(arg);
}

struct resolve_res {
	const char *addr;
	size_t len;
};

static int resolve_push(lua_State *co, void *ud)
{
	struct resolve_res *r = ud;

	if (r->addr == NULL)
		lua_pushnil(co);
	else
		lua_pushlstring(co, r->addr, r->len);
	return 1;
}

/* The query's routine gets nil (or the address). */
static void resolve_wake(struct resolve_op *op, const struct resolve_res *r)
{
	struct aroutine *ar = op->ar;

	resolve_forget(op);
	free(op);
	ar_wake(ar, resolve_push, (void *)r);
}

void await_front_gone(unsigned worker)
{
	static const struct resolve_res none = { NULL, 0 };

	/* the worker asked will not answer: the routines get nil now
	 * rather than wait out their budget */
	for (unsigned i = resolve_n; i-- > 0;)
		if (i < resolve_n && resolve_pending[i]->worker == worker)
			resolve_wake(resolve_pending[i], &none);
}

void await_on_resolve_result(const struct msg *m, unsigned worker)
{
	struct msg_result res;
	struct resolve_res r = { NULL, 0 };
	struct resolve_op *op = NULL;

	for (unsigned i = 0; i < resolve_n; i++)
		if (resolve_pending[i]->qid == m->id &&
		    resolve_pending[i]->worker == worker)
			op = resolve_pending[i];
	if (op == NULL)
		return; /* its routine is gone */
	memcpy(&res, m->data, sizeof(res));
	if (res.ok) {
		r.addr = (const char *)m->data + sizeof(res);
		r.len = m->len - sizeof(res);
	}
	resolve_wake(op, &r);
}

uint32_t await_resolve_qid(void)
{
	return ++resolve_next;
}

static bool is_ip_literal(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 ||
	       inet_pton(AF_INET6, s, buf) == 1;
}

int await_resolve_impl(lua_State *L)
{
	struct aroutine *ar = await_check(L);
	size_t len;
	const char *host = luaL_checklstring(L, 1, &len);
	int worker = ruleset_front_pick();
	struct resolve_op *op;

	if (is_ip_literal(host)) {
		lua_settop(L, 1);
		return 1;
	}
	/* no '%' (an IPv6 zone), NUL, empty label, ...: not a name */
	if (!addr_name_valid(host, len) || worker < 0 ||
	    resolve_n == RESOLVE_PENDING_MAX) {
		lua_pushnil(L);
		return 1;
	}
	op = malloc(sizeof(*op));
	if (op == NULL)
		return luaL_error(L, "out of memory");
	op->qid = ++resolve_next;
	op->worker = (unsigned)worker;
	op->ar = ar;
	if (chanev_send(ruleset_front((unsigned)worker), MSG_RESOLVE_REQ,
			op->qid, host, len, -1) < 0) {
		free(op);
		lua_pushnil(L);
		return 1;
	}
	resolve_pending[resolve_n++] = op;
	return ar_wait(L, op, resolve_cancel, NULL);
}

/* ---- await.execute(cmd): run by the parent, if the operator allowed
 * it with --enable-execute ---- */

#define EXEC_PENDING_MAX 16

struct exec_op {
	uint32_t id;
	struct aroutine *ar;
};

static struct exec_op *exec_pending[EXEC_PENDING_MAX];
static unsigned exec_n;
static uint32_t exec_next;

static void exec_forget(struct exec_op *op)
{
	for (unsigned i = 0; i < exec_n; i++) {
		if (exec_pending[i] == op) {
			exec_pending[i] = exec_pending[--exec_n];
			return;
		}
	}
}

static void exec_cancel(void *arg)
{
	struct exec_op *op = arg;

	/* the routine is gone: so is the point of the command */
	chanev_send(ruleset_parent(), MSG_R_EXECUTE_CANCEL, op->id, NULL, 0,
		    -1);
	exec_forget(op);
	free(op);
}

static int exec_push(lua_State *co, void *ud)
{
	const struct msg_executed *r = ud;

	/* like os.execute: true/nil, "exit"/"signal", code */
	if (r->kind == EXEC_EXIT && r->code == 0)
		lua_pushboolean(co, 1);
	else
		lua_pushnil(co);
	lua_pushstring(co, r->kind == EXEC_SIGNAL ? "signal" : "exit");
	lua_pushinteger(co, r->kind == EXEC_REFUSED ? 127 : r->code);
	return 3;
}

void await_on_executed(const struct msg *m)
{
	struct msg_executed r;

	memcpy(&r, m->data, sizeof(r));
	for (unsigned i = 0; i < exec_n; i++) {
		struct exec_op *op = exec_pending[i];

		if (op->id != m->id)
			continue;
		struct aroutine *ar = op->ar;
		exec_forget(op);
		free(op);
		ar_wake(ar, exec_push, &r);
		return;
	}
}

static int await_execute(lua_State *L)
{
	struct aroutine *ar = await_check(L);
	size_t len;
	const char *cmd = luaL_checklstring(L, 1, &len);
	struct exec_op *op;

	if (!ruleset_conf()->enable_execute)
		return luaL_error(L, "await.execute is disabled (start the "
				     "daemon with --enable-execute)");
	luaL_argcheck(L, len > 0 && len <= MSG_COMMAND_MAX &&
				 memchr(cmd, '\0', len) == NULL,
		      1, "bad command");
	if (exec_n == EXEC_PENDING_MAX)
		return luaL_error(L, "await.execute: too many commands running");
	op = malloc(sizeof(*op));
	if (op == NULL)
		return luaL_error(L, "out of memory");
	op->id = ++exec_next;
	op->ar = ar;
	if (chanev_send(ruleset_parent(), MSG_R_EXECUTE, op->id, cmd, len,
			-1) < 0) {
		free(op);
		return luaL_error(L, "await.execute: cannot reach the parent");
	}
	exec_pending[exec_n++] = op;
	return ar_wait(L, op, exec_cancel, NULL);
}

/* ---- await.park(key) / neosocksd.unpark(key): a routine waits until
 * something else (another routine, a callback) wakes it. libruleset's
 * futures and await.callback are built on these. Wakes are delivered on
 * the next loop iteration, never inside unpark's caller. ---- */

#define PARK_MAX 4096

struct park_op {
	struct park_op *next;
	int keyref; /* LUA_REGISTRYINDEX reference to the key */
	bool ready;
	struct aroutine *ar;
};

static struct park_op *parked;
static unsigned nparked;
static struct event *unpark_ev;

static void park_unlink(struct park_op *op)
{
	struct park_op **pp = &parked;

	while (*pp != NULL && *pp != op)
		pp = &(*pp)->next;
	if (*pp == op) {
		*pp = op->next;
		nparked--;
	}
	luaL_unref(vm_state(), LUA_REGISTRYINDEX, op->keyref);
}

static void park_cancel(void *arg)
{
	park_unlink(arg);
	free(arg);
}

static int park_push(lua_State *co, void *ud)
{
	(void)co;
	(void)ud;
	return 0;
}

static void unpark_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	for (;;) {
		struct park_op *op = parked;
		struct aroutine *ar;

		while (op != NULL && !op->ready)
			op = op->next;
		if (op == NULL)
			return;
		ar = op->ar;
		park_unlink(op);
		free(op);
		ar_wake(ar, park_push, NULL); /* may park or unpark again */
	}
}

static int await_park(lua_State *L)
{
	struct aroutine *ar = await_check(L);
	struct park_op *op;

	luaL_argcheck(L, lua_istable(L, 1) || lua_isuserdata(L, 1), 1,
		      "table or userdata expected");
	if (nparked == PARK_MAX)
		return luaL_error(L, "await.park: too many parked routines");
	if (unpark_ev == NULL) {
		unpark_ev = event_new(ruleset_base(), -1, 0, unpark_cb, NULL);
		if (unpark_ev == NULL)
			return luaL_error(L, "out of memory");
	}
	op = calloc(1, sizeof(*op));
	if (op == NULL)
		return luaL_error(L, "out of memory");
	lua_settop(L, 1);
	op->keyref = luaL_ref(L, LUA_REGISTRYINDEX);
	if (op->keyref == LUA_REFNIL || op->keyref == LUA_NOREF) {
		free(op);
		return luaL_error(L, "out of memory");
	}
	op->ar = ar;
	op->next = parked;
	parked = op;
	nparked++;
	return ar_wait(L, op, park_cancel, NULL);
}

int await_unpark_impl(lua_State *L)
{
	int n = 0;

	luaL_checkany(L, 1);
	for (struct park_op *op = parked; op != NULL; op = op->next) {
		if (op->ready)
			continue;
		lua_rawgeti(L, LUA_REGISTRYINDEX, op->keyref);
		if (lua_rawequal(L, -1, 1)) {
			op->ready = true;
			n++;
		}
		lua_pop(L, 1);
	}
	if (n > 0 && unpark_ev != NULL)
		event_active(unpark_ev, EV_TIMEOUT, 0);
	lua_pushinteger(L, n);
	return 1;
}

static const luaL_Reg await_funcs[] = {
	{ "sleep", await_sleep },
	{ "resolve", await_resolve_impl },
	{ "forward", request_await_forward },
	{ "execute", await_execute },
	{ "invoke", rpcall_client_await_invoke },
	{ "park", await_park },
	{ NULL, NULL },
};

int luaopen_await(lua_State *L)
{
	luaL_newlib(L, await_funcs);
	return 1;
}
