#include "ruleset/aroutine.h"

#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "common/log.h"
#include "ruleset/vm.h"

#define AR_MT "neosocksd.aroutine"

/* A full userdata (so nothing here can leak on a Lua error): the registry
 * keeps it alive until ar_free; its user value is the thread. */
struct aroutine {
	lua_State *co;
	bool freed;
	int ref;           /* registry reference keeping the thread alive */
	enum ar_kind kind;
	bool waiting, running;
	bool suspended;    /* a bare coroutine.yield(): the script resumes it */
	bool dropped;      /* ar_cancel'ed while running: free when it stops */
	void *op;          /* what it waits on */
	ar_cancel_fn cancel;
	ar_done_fn done;
	void *arg;
};

static unsigned ar_nactive, ar_npeak;

/* Finished routines kept for reuse: a new routine then costs no
 * allocation (the userdata, the thread and its stack stay). */
#define AR_POOL_MAX 64
static struct aroutine *ar_pool[AR_POOL_MAX];
static unsigned ar_npool;

unsigned ar_active(void)
{
	return ar_nactive;
}

unsigned ar_peak(void)
{
	return ar_npeak;
}

struct aroutine *ar_current(lua_State *L)
{
	struct aroutine *ar;

	memcpy(&ar, lua_getextraspace(L), sizeof(ar));
	return ar;
}

enum ar_kind ar_kind_of(const struct aroutine *ar)
{
	return ar->kind;
}

void *ar_arg(const struct aroutine *ar)
{
	return ar->arg;
}

lua_State *ar_thread(const struct aroutine *ar)
{
	return ar->co;
}

static void ar_set(lua_State *co, struct aroutine *ar)
{
	memcpy(lua_getextraspace(co), &ar, sizeof(ar));
}

static void ar_free(struct aroutine *ar)
{
	lua_State *L = vm_state();

	ar_set(ar->co, NULL);
	ar_nactive--;
	if (!ar->running && ar_npool < AR_POOL_MAX &&
	    lua_resetthread(ar->co) == LUA_OK) {
		ar->waiting = ar->suspended = ar->dropped = false;
		ar->op = ar->arg = NULL;
		ar->cancel = NULL;
		ar->done = NULL;
		ar_pool[ar_npool++] = ar;
		return;
	}
	ar->freed = true;
	/* Drop what the thread holds now, and cut the userdata's link to
	 * it: a userdata with a finalizer outlives emergency collections,
	 * and must not keep a dead routine's garbage (say, the table that
	 * ran out of memory) alive with it. */
	if (!ar->running)
		(void)lua_resetthread(ar->co);
	lua_rawgeti(L, LUA_REGISTRYINDEX, ar->ref);
	lua_pushnil(L);
	lua_setiuservalue(L, -2, 1);
	lua_pop(L, 1);
	luaL_unref(L, LUA_REGISTRYINDEX, ar->ref);
}

/* Collected while still waiting (only at lua_close): cancel the wait. */
static int ar_gc(lua_State *L)
{
	struct aroutine *ar = luaL_checkudata(L, 1, AR_MT);

	if (!ar->freed && ar->waiting && ar->cancel != NULL) {
		ar->cancel(ar->op);
		ar->cancel = NULL;
	}
	return 0;
}

/* Run after a resume: wait, or end (done callback, then free). */
static void ar_after(struct aroutine *ar, int status, int nres)
{
	ar->running = false;
	if (ar->dropped) {
		if (status == LUA_YIELD && ar->cancel != NULL)
			ar->cancel(ar->op);
		ar_free(ar);
		return;
	}
	if (status == LUA_YIELD) {
		if (ar->waiting)
			return;
		/* a bare coroutine.yield(): the routine stays suspended until
		 * the script resumes it (ar_co_resume), as the reference's
		 * libruleset futures and await.callback do; what it yielded
		 * has nobody to go to */
		lua_pop(ar->co, nres);
		ar->suspended = true;
		return;
	}
	ar->done(ar, ar->co, status, nres);
	ar_free(ar);
}

struct aroutine *ar_start(lua_State *L, int nargs, enum ar_kind kind,
			  ar_done_fn done, void *arg)
{
	struct aroutine *ar;
	int nres = 0, status;

	if (ar_npool > 0) {
		ar = ar_pool[--ar_npool];
		goto ready;
	}
	/* everything below may raise; nothing is owned by C until the
	 * reference is taken */
	ar = lua_newuserdatauv(L, sizeof(*ar), 1);
	memset(ar, 0, sizeof(*ar));
	if (luaL_newmetatable(L, AR_MT)) {
		lua_pushcfunction(L, ar_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	ar->co = lua_newthread(L);
	lua_setiuservalue(L, -2, 1);
	ar->ref = luaL_ref(L, LUA_REGISTRYINDEX);
ready:
	ar->kind = kind;
	ar->done = done;
	ar->arg = arg;
	ar_set(ar->co, ar);
	lua_xmove(L, ar->co, nargs + 1);
	/* the caller gets the thread (neosocksd.async returns it) */
	lua_pushthread(ar->co);
	lua_xmove(ar->co, L, 1);
	if (++ar_nactive > ar_npeak)
		ar_npeak = ar_nactive;
	ar->running = true;
	status = vm_resume(L, ar->co, nargs, &nres);
	ar_after(ar, status, nres);
	return ar;
}

/* The usual continuation: the values the routine was woken with. */
static int ar_results(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	(void)ctx;
	return lua_gettop(L);
}

int ar_wait(lua_State *L, void *op, ar_cancel_fn cancel, lua_KFunction k)
{
	struct aroutine *ar = ar_current(L);

	ar->op = op;
	ar->cancel = cancel;
	ar->waiting = true;
	/* the await function's own arguments are done with: after the
	 * resume, the stack holds exactly the wake-up values */
	lua_settop(L, 0);
	return lua_yieldk(L, 0, 0, k != NULL ? k : ar_results);
}

struct ar_wake_ctx {
	struct aroutine *ar;
	ar_push_fn push;
	void *ud;
	int n;
};

static int ar_wake_push(lua_State *L)
{
	struct ar_wake_ctx *w = lua_touserdata(L, 1);

	luaL_checkstack(w->ar->co, 8, "await results");
	w->n = w->push(w->ar->co, w->ud);
	return 0;
}

void ar_wake(struct aroutine *ar, ar_push_fn push, void *ud)
{
	struct ar_wake_ctx w = { ar, push, ud, 0 };
	int status, nres = 0;

	ar->waiting = false;
	ar->op = NULL;
	ar->cancel = NULL;
	if (vm_pcall(ar_wake_push, &w) != LUA_OK) {
		/* could not even push the results (out of memory) */
		lua_State *L = vm_state();
		LOG_RL(LOGL_WARN, 10, "routine dropped: %s",
		       lua_tostring(L, -1));
		lua_pop(L, 1);
		ar->done(ar, ar->co, LUA_ERRMEM, 0);
		ar_free(ar);
		return;
	}
	ar->running = true;
	status = vm_resume(vm_state(), ar->co, w.n, &nres);
	ar_after(ar, status, nres);
}

void ar_cancel(struct aroutine *ar)
{
	if (ar->running) {
		ar->dropped = true; /* freed when it stops running */
		return;
	}
	if (ar->waiting && ar->cancel != NULL)
		ar->cancel(ar->op);
	ar_free(ar);
}

/* ---- coroutine.resume and coroutine.close, aware of routines ---- */

/* coroutine.resume(co, ...): a routine suspended by a bare
 * coroutine.yield() resumes here, through the routine's own bookkeeping,
 * so that when it ends its done callback runs (a finished neosocksd.async
 * calls its finish function, a request gets its answer) whoever resumed
 * it. It runs nested in the resumer's entry and shares its time budget.
 * Returns true, plus what it yields if it yields bare again. A routine
 * waiting in await.* belongs to what it waits on: resuming it is refused.
 * Any other coroutine goes to Lua's own resume (upvalue 1). */
static int ar_co_resume(lua_State *L)
{
	lua_State *co = lua_tothread(L, 1);
	struct aroutine *ar;
	int nargs = lua_gettop(L) - 1, status, nres = 0;

	luaL_argexpected(L, co != NULL, 1, "coroutine");
	ar = ar_current(co);
	if (ar == NULL) {
		lua_pushvalue(L, lua_upvalueindex(1));
		lua_insert(L, 1);
		lua_call(L, nargs + 1, LUA_MULTRET);
		return lua_gettop(L);
	}
	if (!ar->suspended) {
		lua_pushboolean(L, 0);
		if (ar->running)
			lua_pushliteral(L, "cannot resume non-suspended coroutine");
		else
			lua_pushliteral(L, "cannot resume an asynchronous "
					   "routine waiting in await");
		return 2;
	}
	if (!lua_checkstack(co, nargs)) {
		lua_pushboolean(L, 0);
		lua_pushliteral(L, "too many arguments to resume");
		return 2;
	}
	lua_xmove(L, co, nargs);
	ar->suspended = false;
	ar->running = true;
	status = vm_resume(L, co, nargs, &nres);
	if (status == LUA_YIELD && !ar->waiting && !ar->dropped &&
	    lua_checkstack(L, nres + 1)) {
		/* yielded bare again: its values go to the resumer */
		lua_pushboolean(L, 1);
		lua_xmove(co, L, nres);
		ar_after(ar, status, 0);
		return nres + 1;
	}
	ar_after(ar, status, nres);
	lua_pushboolean(L, 1);
	return 1;
}

/* coroutine.close(co): a routine is the daemon's to end (its request, its
 * finish function wait for it); closing it is an error. */
static int ar_co_close(lua_State *L)
{
	lua_State *co = lua_tothread(L, 1);

	luaL_argexpected(L, co != NULL, 1, "coroutine");
	if (ar_current(co) != NULL)
		return luaL_error(L, "cannot close an asynchronous routine");
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
	return lua_gettop(L);
}

void ar_open_coroutine(lua_State *L)
{
	lua_getglobal(L, LUA_COLIBNAME);
	lua_getfield(L, -1, "resume");
	lua_pushcclosure(L, ar_co_resume, 1);
	lua_setfield(L, -2, "resume");
	lua_getfield(L, -1, "close");
	lua_pushcclosure(L, ar_co_close, 1);
	lua_setfield(L, -2, "close");
	lua_pop(L, 1);
}
