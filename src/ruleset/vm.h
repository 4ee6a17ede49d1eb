/* vm: the ruleset process's Lua 5.4 state.
 *
 * Bounds (the REST API accepts code from the network):
 * - memory: a counting allocator with a hard cap; an allocation past it
 *   fails, that call raises "not enough memory", the state lives on;
 * - time: every entry into Lua from C (a callback, a resumed routine, a
 *   tick) gets a budget of CPU time; past it a count hook raises an error, and
 *   keeps raising on every instruction so no pcall can swallow it;
 * - library: base (text chunks only), string, table, math, utf8,
 *   coroutine, os.time/clock/date/difftime/getenv/exit (lib_os.c),
 *   debug.getinfo/traceback, require/loadfile/dofile whose sources come
 *   from the parent (loader.c); no io, no C modules.
 *
 * Every call from C into Lua goes through vm_pcall(). */
#ifndef NEOSOCKSD_VM_H
#define NEOSOCKSD_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#define VM_MEMLIMIT_DEFAULT_MB 128
#define VM_BUDGET_MS_DEFAULT 1000

struct vm_conf {
	size_t memlimit;    /* bytes; 0: the default */
	int budget_ms;      /* per entry; 0: the default */
	bool traceback;     /* attach a traceback to error messages */
	const char *package_path; /* what package.path shows */
};

int vm_init(const struct vm_conf *c);
/* New limits (a config file may set memlimit and traceback). */
void vm_reconf(const struct vm_conf *c);
void vm_close(void);
lua_State *vm_state(void);
/* The CPU budget of one entry, in ms (also the longest a synchronous
 * round trip to the front may wait). */
int vm_budget_ms(void);
size_t vm_memory(void);
size_t vm_objects(void);
size_t vm_memlimit(void);

/* Call fn(L) in protected mode on the main thread with ud as a light
 * userdata at index 1, within a fresh time budget. On error returns the
 * Lua status with the message at the top of the stack (the caller pops). */
int vm_pcall(lua_CFunction fn, void *ud);
/* Resume co from the thread `from` (the main state for the event loop,
 * the resumer for a nested coroutine.resume): a fresh time budget, or the
 * enclosing entry's when nested. As lua_resume. */
int vm_resume(lua_State *from, lua_State *co, int nargs, int *nres);
/* The message handler used by vm_pcall (traceback when enabled). */
int vm_msgh(lua_State *L);

/* Make src loadable: gunzip it if compressed (bounded by the memory cap),
 * skip a UTF-8 BOM and a "#!" first line. *out points into src or a new
 * allocation in *buf (free it). 0 or -1 with err. */
int vm_prepare_source(const char *src, size_t len, const char **out,
		      size_t *outlen, char **buf, char *err, size_t errcap);

/* Load a ruleset: call the chunk with "ruleset"; if it returns a table it
 * becomes _G.ruleset. On error the previous ruleset stays. 0 or -1. */
int vm_load_ruleset(const char *src, size_t len, const char *chunkname,
		    char *err, size_t errcap);
bool vm_has_ruleset(void);

/* os.exit(): raise msg now, and at the first instruction of every later
 * entry (the daemon is stopping). Does not return. */
int vm_abort(lua_State *L, const char *msg);

/* Durations of the last 1024 entries into Lua, for /stats (seconds). */
void vm_event_percentiles(unsigned *n, double *p50, double *p90,
			  double *p99, double *max);

/* require() and module updates note the modules they install. A reload
 * takes them out of package.loaded first (so the new ruleset's require
 * reads them again), and puts them back if the reload fails. */
void vm_mark_module(lua_State *L, const char *name);
void vm_modules_stash(void);
void vm_modules_unstash(bool restore);

#endif
