/* aroutine: asynchronous routines. A routine is a Lua thread started by
 * the host (a request handler, neosocksd.async, an RPC call) that may wait
 * in await.* primitives. The thread's extra space points to its routine,
 * so await.* called anywhere else (the main thread, a coroutine the script
 * made itself) fails with "not in asynchronous routine". A bare
 * coroutine.yield() suspends a routine until the script resumes it with
 * coroutine.resume.
 *
 * A waiting routine holds one pending operation with a cancel function;
 * dropping the routine (ar_cancel) cancels it, so nothing wakes a routine
 * that is gone. */
#ifndef NEOSOCKSD_AROUTINE_H
#define NEOSOCKSD_AROUTINE_H

#include <stdbool.h>
#include <stdint.h>

#include <lua.h>

struct aroutine;

/* The routine ended: status is LUA_OK (results are co's stack [1..nres])
 * or an error (the message at the top of co). Called once; afterwards the
 * routine is freed. The callback must not call into Lua except through
 * vm_pcall. */
typedef void (*ar_done_fn)(struct aroutine *ar, lua_State *co, int status,
			   int nres);
typedef void (*ar_cancel_fn)(void *op);
/* Push the values a waiting routine resumes with onto co; return how
 * many. Runs in protected mode. */
typedef int (*ar_push_fn)(lua_State *co, void *ud);

enum ar_kind {
	AR_REQUEST = 1, /* a ruleset.resolve/route/route6 call */
	AR_ASYNC,       /* neosocksd.async */
	AR_RPC,         /* /ruleset/rpcall */
};

/* Start func(args...) from the top of L's stack (func below nargs args)
 * in a new routine and run it until it waits or ends. Call only from a
 * protected context (inside vm_pcall). The new thread is left on L's
 * stack. Returns the routine, which may already have ended (its done
 * callback ran) when nothing made it wait: do not use it then. */
struct aroutine *ar_start(lua_State *L, int nargs, enum ar_kind kind,
			  ar_done_fn done, void *arg);

/* The routine running on L, or NULL. */
struct aroutine *ar_current(lua_State *L);
enum ar_kind ar_kind_of(const struct aroutine *ar);
void *ar_arg(const struct aroutine *ar);
lua_State *ar_thread(const struct aroutine *ar);

/* Inside an await.* C function: remember op (cancelled by cancel if the
 * routine is dropped) and yield. Resumption continues in k (NULL: return
 * the values ar_wake pushed). */
int ar_wait(lua_State *L, void *op, ar_cancel_fn cancel, lua_KFunction k);
/* The operation a routine waits on completed: push results and resume.
 * Safe to call from any event callback. */
void ar_wake(struct aroutine *ar, ar_push_fn push, void *ud);
/* Drop a routine (waiting or not): its operation is cancelled and its
 * done callback never runs. */
void ar_cancel(struct aroutine *ar);

/* Replace coroutine.resume and coroutine.close in L's coroutine library
 * with versions that know routines: a routine suspended by a bare
 * coroutine.yield() is resumed by coroutine.resume (as the reference's
 * libruleset does for its futures), and ends through its done callback. */
void ar_open_coroutine(lua_State *L);

/* Live routines and the peak, for /stats. */
unsigned ar_active(void);
unsigned ar_peak(void);

#endif
