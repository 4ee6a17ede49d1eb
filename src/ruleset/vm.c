#include "ruleset/vm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lualib.h>

#include "common/log.h"
#include "common/monotime.h"
#include "common/u32sort.h"
#include "ruleset/aroutine.h"
#include "ruleset/hostapi.h"
#include "ruleset/lib_os.h"
#include "ruleset/loader.h"
#include "ruleset/zbody.h"

#define VM_HOOK_COUNT 10000

static struct {
	lua_State *L;
	size_t used, objects, limit;
	int budget_ms;
	bool traceback;
	int64_t deadline_ns; /* 0: not inside an entry */
	int depth;           /* nested entries share the outer budget */
	int64_t entered_ns;  /* when the outermost entry began */
	uint32_t ev_ns[1024]; /* the last entries' durations (capped) */
	unsigned ev_n, ev_pos;
	bool expired;
	char abort_msg[128]; /* os.exit(): every entry fails from now on */
} vm;

/* The budget counts CPU time spent in this (single-threaded) process, so a
 * busy machine does not make a well-behaved callback fail. */
static int64_t vm_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- memory ---- */

static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	void *p;

	(void)ud;
	if (ptr == NULL)
		osize = 0;
	if (nsize == 0) {
		if (ptr != NULL) {
			vm.used -= osize;
			vm.objects--;
		}
		free(ptr);
		return NULL;
	}
	if (nsize > osize && vm.used + (nsize - osize) > vm.limit)
		return NULL; /* Lua raises "not enough memory" */
	p = realloc(ptr, nsize);
	if (p == NULL)
		return NULL;
	if (ptr == NULL)
		vm.objects++;
	vm.used = vm.used - osize + nsize;
	return p;
}

size_t vm_memory(void)
{
	return vm.used;
}

size_t vm_objects(void)
{
	return vm.objects;
}

size_t vm_memlimit(void)
{
	return vm.limit;
}

int vm_budget_ms(void)
{
	return vm.budget_ms;
}

lua_State *vm_state(void)
{
	return vm.L;
}

/* ---- time budget ---- */

/* The deadline of an entry is set when the hook first fires in it, after
 * VM_HOOK_COUNT instructions: an entry that ends sooner (nearly every
 * request) costs no CPU-clock system call. */
#define VM_DEADLINE_UNSET (-1)

static void vm_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	if (vm.abort_msg[0] != '\0') {
		lua_sethook(L, vm_hook, LUA_MASKCOUNT, 1);
		luaL_error(L, "%s", vm.abort_msg);
		return;
	}
	if (vm.deadline_ns == 0)
		return;
	if (vm.deadline_ns == VM_DEADLINE_UNSET) {
		vm.deadline_ns = vm_cpu_ns() + (int64_t)vm.budget_ms * 1000000;
		return;
	}
	if (!vm.expired) {
		if (vm_cpu_ns() < vm.deadline_ns)
			return;
		vm.expired = true;
	}
	/* from now on every instruction of this thread fails, so a pcall
	 * that catches the error cannot carry on */
	lua_sethook(L, vm_hook, LUA_MASKCOUNT, 1);
	luaL_error(L, "ruleset: time budget of %d ms (CPU) exceeded",
		   vm.budget_ms);
}

static void vm_enter(lua_State *thread)
{
	if (vm.depth++ == 0) {
		vm.entered_ns = monotime_ns();
		vm.deadline_ns = VM_DEADLINE_UNSET;
		vm.expired = false;
	}
	if (vm.abort_msg[0] != '\0')
		lua_sethook(thread, vm_hook, LUA_MASKCOUNT, 1);
	else if (!vm.expired)
		lua_sethook(thread, vm_hook, LUA_MASKCOUNT, VM_HOOK_COUNT);
}

int vm_abort(lua_State *L, const char *msg)
{
	snprintf(vm.abort_msg, sizeof(vm.abort_msg), "%s", msg);
	lua_sethook(L, vm_hook, LUA_MASKCOUNT, 1);
	return luaL_error(L, "%s", vm.abort_msg);
}

static void vm_leave(lua_State *thread)
{
	int64_t took;

	if (--vm.depth > 0)
		return;
	took = monotime_ns() - vm.entered_ns;
	vm.ev_ns[vm.ev_pos] = took > UINT32_MAX ? UINT32_MAX : (uint32_t)took;
	vm.ev_pos = (vm.ev_pos + 1) % 1024;
	if (vm.ev_n < 1024)
		vm.ev_n++;
	vm.deadline_ns = 0;
	vm.expired = false;
	lua_sethook(thread, vm_hook, LUA_MASKCOUNT, VM_HOOK_COUNT);
}

void vm_event_percentiles(unsigned *n, double *p50, double *p90,
			  double *p99, double *max)
{
	static uint32_t tmp[1024];

	*n = vm.ev_n;
	*p50 = *p90 = *p99 = *max = 0;
	if (vm.ev_n == 0)
		return;
	memcpy(tmp, vm.ev_ns, vm.ev_n * sizeof(tmp[0]));
	u32sort(tmp, vm.ev_n);
	*p50 = tmp[(vm.ev_n - 1) * 50 / 100] / 1e9;
	*p90 = tmp[(vm.ev_n - 1) * 90 / 100] / 1e9;
	*p99 = tmp[(vm.ev_n - 1) * 99 / 100] / 1e9;
	*max = tmp[vm.ev_n - 1] / 1e9;
}

int vm_msgh(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);

	if (msg == NULL) {
		if (luaL_callmeta(L, 1, "__tostring") &&
		    lua_type(L, -1) == LUA_TSTRING)
			return 1;
		msg = lua_pushfstring(L, "(error object is a %s value)",
				      luaL_typename(L, 1));
	}
	if (vm.traceback)
		luaL_traceback(L, L, msg, 1);
	return 1;
}

int vm_pcall(lua_CFunction fn, void *ud)
{
	lua_State *L = vm.L;
	int base = lua_gettop(L), r;

	lua_pushcfunction(L, vm_msgh);
	lua_pushcfunction(L, fn);
	lua_pushlightuserdata(L, ud);
	vm_enter(L);
	r = lua_pcall(L, 1, 0, base + 1);
	vm_leave(L);
	if (r != LUA_OK) {
		lua_remove(L, base + 1); /* the handler; the message stays */
		return r;
	}
	lua_settop(L, base);
	return LUA_OK;
}

/* [co] in protected mode: replace the error message at the top of the dead
 * coroutine co with message + co's traceback. */
static int vm_co_traceback(lua_State *L)
{
	lua_State *co = lua_touserdata(L, 1);

	/* the message stays on co (and alive) until the trace replaces it,
	 * so a failure here leaves co as it was */
	luaL_traceback(L, co, lua_tostring(co, -1), 0);
	if (!lua_checkstack(co, 1))
		return luaL_error(L, "stack overflow");
	lua_xmove(L, co, 1);
	lua_remove(co, -2);
	return 0;
}

int vm_resume(lua_State *from, lua_State *co, int nargs, int *nres)
{
	int r;

	vm_enter(co);
	r = lua_resume(co, from, nargs, nres);
	vm_leave(co);
	/* a routine has no message handler: --traceback adds the trace
	 * of where it failed (a message that is not a string stays as is) */
	if (r > LUA_YIELD && vm.traceback && lua_type(co, -1) == LUA_TSTRING &&
	    vm_pcall(vm_co_traceback, co) != LUA_OK)
		lua_pop(vm.L, 1); /* no memory for it: the plain message */
	return r;
}

/* ---- a safe standard library ---- */

/* print goes to the log (notice level, shown by default), not to a file
 * descriptor; the parent prefixes the line with this process's role */
static int vm_print(lua_State *L)
{
	luaL_Buffer b;
	int n = lua_gettop(L);

	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, '\t');
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	LOGN("%s", lua_tostring(L, -1));
	return 0;
}

/* load(chunk [, chunkname [, mode [, env]]]) with mode forced to "t"; an
 * absent env stays absent (nil would be a different thing) */
static int vm_load(lua_State *L)
{
	int n = lua_gettop(L);

	lua_settop(L, 4); /* chunk, chunkname, mode, env (nil-padded) */
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushvalue(L, 1);
	lua_pushvalue(L, 2);
	lua_pushliteral(L, "t");
	if (n >= 4)
		lua_pushvalue(L, 4);
	lua_call(L, n >= 4 ? 4 : 3, LUA_MULTRET);
	return lua_gettop(L) - 4;
}

static void vm_keep_fields(lua_State *L, const char *lib,
			   const char *const *keep)
{
	lua_newtable(L);
	for (int i = 0; keep[i] != NULL; i++) {
		lua_getfield(L, -2, keep[i]);
		lua_setfield(L, -2, keep[i]);
	}
	lua_setglobal(L, lib);
	lua_pop(L, 1);
}

static void vm_open_libs(lua_State *L)
{
	static const luaL_Reg libs[] = {
		{ LUA_GNAME, luaopen_base },
		{ LUA_COLIBNAME, luaopen_coroutine },
		{ LUA_TABLIBNAME, luaopen_table },
		{ LUA_STRLIBNAME, luaopen_string },
		{ LUA_MATHLIBNAME, luaopen_math },
		{ LUA_UTF8LIBNAME, luaopen_utf8 },
		{ NULL, NULL },
	};
	static const char *const os_keep[] = { "time", "clock", "date",
					       "difftime", NULL };
	/* read-only introspection: nothing that sets hooks, locals,
	 * upvalues or metatables, or reaches the registry */
	static const char *const debug_keep[] = { "getinfo", "traceback",
						  NULL };

	for (const luaL_Reg *l = libs; l->name != NULL; l++) {
		luaL_requiref(L, l->name, l->func, 1);
		lua_pop(L, 1);
	}
	ar_open_coroutine(L);
	/* no bytecode (loadfile and dofile: loader.c) */
	lua_getglobal(L, "load");
	lua_pushcclosure(L, vm_load, 1);
	lua_setglobal(L, "load");
	lua_pushcfunction(L, vm_print);
	lua_setglobal(L, "print");
	/* harmless parts of os and debug, in fresh tables */
	luaopen_os(L);
	vm_keep_fields(L, "os", os_keep);
	luaopen_debug(L);
	vm_keep_fields(L, "debug", debug_keep);
	lib_os_open(L);
}

int vm_init(const struct vm_conf *c)
{
	vm.limit = c->memlimit > 0 ? c->memlimit
				   : (size_t)VM_MEMLIMIT_DEFAULT_MB << 20;
	vm.budget_ms = c->budget_ms > 0 ? c->budget_ms : VM_BUDGET_MS_DEFAULT;
	vm.traceback = c->traceback;
	vm.L = lua_newstate(vm_alloc, NULL);
	if (vm.L == NULL)
		return -1;
	/* threads copy the main thread's extra space: NULL means "not an
	 * asynchronous routine" (see aroutine.c) */
	memset(lua_getextraspace(vm.L), 0, LUA_EXTRASPACE);
	lua_gc(vm.L, LUA_GCGEN, 0, 0);
	vm_open_libs(vm.L);
	loader_open(vm.L, c->package_path);
	hostapi_open(vm.L);
	return 0;
}

void vm_reconf(const struct vm_conf *c)
{
	if (c->memlimit > 0)
		vm.limit = c->memlimit;
	if (c->budget_ms > 0)
		vm.budget_ms = c->budget_ms;
	vm.traceback = c->traceback;
}

void vm_close(void)
{
	if (vm.L != NULL)
		lua_close(vm.L);
	vm.L = NULL;
}

/* ---- sources ---- */

int vm_prepare_source(const char *src, size_t len, const char **out,
		      size_t *outlen, char **buf, char *err, size_t errcap)
{
	*buf = NULL;
	if (len >= 2 && (unsigned char)src[0] == 0x1f &&
	    (unsigned char)src[1] == 0x8b) {
		size_t n = 0;
		int r = zbody_inflate(src, len, 1, vm.limit, buf, &n);

		if (r != 0) {
			snprintf(err, errcap, "%s",
				 r == -2 ? "decompressed source too large"
					 : "bad gzip data");
			return -1;
		}
		src = *buf;
		len = n;
	}
	if (len >= 1 && src[0] == LUA_SIGNATURE[0]) {
		snprintf(err, errcap, "binary chunks are not accepted");
		free(*buf);
		*buf = NULL;
		return -1;
	}
	if (len >= 3 && memcmp(src, "\xef\xbb\xbf", 3) == 0) {
		src += 3;
		len -= 3;
	}
	if (len >= 2 && src[0] == '#' && src[1] == '!') {
		/* keep the newline so line numbers stay right */
		const char *nl = memchr(src, '\n', len);
		size_t skip = nl != NULL ? (size_t)(nl - src) : len;
		src += skip;
		len -= skip;
	}
	*out = src;
	*outlen = len;
	return 0;
}

struct vm_load_args {
	const char *src;
	size_t len;
	const char *chunkname;
	const char *arg; /* passed to the chunk */
};

/* [ud] -> leaves the chunk's first result on the stack */
static int vm_load_call(lua_State *L)
{
	struct vm_load_args *a = lua_touserdata(L, 1);

	if (luaL_loadbufferx(L, a->src, a->len, a->chunkname, "t") != LUA_OK)
		return lua_error(L);
	lua_pushstring(L, a->arg);
	lua_call(L, 1, 1);
	return 1;
}

static int vm_install_ruleset(lua_State *L)
{
	if (vm_load_call(L) != 1)
		return 0;
	if (!lua_istable(L, -1))
		return luaL_error(L, "ruleset: expected table, got %s",
				  luaL_typename(L, -1));
	lua_setglobal(L, "ruleset");
	return 0;
}

static void vm_errtext(char *err, size_t errcap)
{
	lua_State *L = vm.L;

	snprintf(err, errcap, "%s",
		 lua_isstring(L, -1) ? lua_tostring(L, -1) : "(error object)");
	lua_pop(L, 1);
}

int vm_load_ruleset(const char *src, size_t len, const char *chunkname,
		    char *err, size_t errcap)
{
	struct vm_load_args a = { .chunkname = chunkname, .arg = "ruleset" };
	char *buf;

	if (vm_prepare_source(src, len, &a.src, &a.len, &buf, err, errcap) < 0)
		return -1;
	if (vm_pcall(vm_install_ruleset, &a) != LUA_OK) {
		vm_errtext(err, errcap);
		free(buf);
		return -1;
	}
	free(buf);
	return 0;
}

bool vm_has_ruleset(void)
{
	bool r;

	lua_getglobal(vm.L, "ruleset");
	r = lua_istable(vm.L, -1);
	lua_pop(vm.L, 1);
	return r;
}

/* ---- require ---- */

#define VM_MODULES "neosocksd.modules"       /* names we installed */
#define VM_MODULES_STASH "neosocksd.stash"   /* their values, on trial */

void vm_mark_module(lua_State *L, const char *name)
{
	if (lua_getfield(L, LUA_REGISTRYINDEX, VM_MODULES) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_setfield(L, LUA_REGISTRYINDEX, VM_MODULES);
	}
	lua_pushboolean(L, 1);
	lua_setfield(L, -2, name);
	lua_pop(L, 1);
}

/* [op] in protected mode: 1 stash and clear, 2 restore, 3 drop the stash */
static int vm_modules_op(lua_State *L)
{
	int op = (int)(intptr_t)lua_touserdata(L, 1);

	lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE); /* 2 */
	if (op == 1) {
		lua_newtable(L); /* 3: the stash */
		if (lua_getfield(L, LUA_REGISTRYINDEX, VM_MODULES) ==
		    LUA_TTABLE) { /* 4 */
			lua_pushnil(L);
			while (lua_next(L, 4) != 0) {
				lua_pop(L, 1);
				lua_pushvalue(L, -1);     /* name */
				lua_rawget(L, 2);         /* loaded[name] */
				lua_pushvalue(L, -2);
				lua_insert(L, -2);
				lua_rawset(L, 3);         /* stash[name] = it */
				lua_pushvalue(L, -1);
				lua_pushnil(L);
				lua_rawset(L, 2);         /* loaded[name] = nil */
			}
		}
		lua_settop(L, 3);
		lua_setfield(L, LUA_REGISTRYINDEX, VM_MODULES_STASH);
		return 0;
	}
	if (op == 2 && lua_getfield(L, LUA_REGISTRYINDEX, VM_MODULES_STASH) ==
			       LUA_TTABLE) { /* 3 */
		lua_pushnil(L);
		while (lua_next(L, 3) != 0) {
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, 2); /* loaded[name] = stashed */
		}
	}
	lua_pushnil(L);
	lua_setfield(L, LUA_REGISTRYINDEX, VM_MODULES_STASH);
	return 0;
}

void vm_modules_stash(void)
{
	if (vm_pcall(vm_modules_op, (void *)(intptr_t)1) != LUA_OK)
		lua_pop(vm.L, 1);
}

void vm_modules_unstash(bool restore)
{
	if (vm_pcall(vm_modules_op, (void *)(intptr_t)(restore ? 2 : 3)) !=
	    LUA_OK)
		lua_pop(vm.L, 1);
}
