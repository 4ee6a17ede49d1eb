#include "ruleset/stats.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/monotime.h"
#include "common/msg.h"
#include "ruleset/api.h"
#include "ruleset/api_conn.h"
#include "ruleset/aroutine.h"
#include "ruleset/request.h"
#include "ruleset/ruleset_front.h"
#include "ruleset/ruleset_main.h"
#include "ruleset/vm.h"

static char stats_lasterror[512];
static struct msg_status stats_status;
static uint32_t stats_seq;

void stats_set_status(const struct msg_status *st)
{
	stats_status = *st;
}

void stats_set_lasterror(const char *msg)
{
	snprintf(stats_lasterror, sizeof(stats_lasterror), "%s",
		 msg != NULL ? msg : "?");
}

static void set_num(lua_State *L, const char *k, lua_Integer v)
{
	lua_pushinteger(L, v);
	lua_setfield(L, -2, k);
}

/* neosocksd.stats(): the reference's table. The front's counters come by
 * a synchronous round trip (bounded by the entry's budget); without an
 * answer they are zeros. */
void stats_push_table(lua_State *L)
{
	struct msg_stats f;
	const struct api_counters *api = api_counters();
	size_t n = 0;

	memset(&f, 0, sizeof(f));
	if (!ruleset_front_call(MSG_STATS_REQ, ++stats_seq, NULL, 0,
				MSG_STATS, vm_budget_ms(), &f, sizeof(f), &n) ||
	    n != sizeof(f))
		memset(&f, 0, sizeof(f));
	lua_createtable(L, 0, 24);
	if (stats_lasterror[0] != '\0') {
		lua_pushstring(L, stats_lasterror);
		lua_setfield(L, -2, "lasterror");
	}
	/* nanoseconds, as a float (the reference's unit) */
	lua_pushnumber(L, stats_status.started_ns == 0
				  ? 0.0
				  : (double)monotime_ns() -
					    (double)stats_status.started_ns);
	lua_setfield(L, -2, "uptime");
	set_num(L, "num_halfopen", f.halfopen);
	set_num(L, "num_sessions", f.active);
	set_num(L, "num_sessions_peak", f.peak);
	set_num(L, "num_request", (lua_Integer)f.requests);
	set_num(L, "num_success", (lua_Integer)f.success);
	set_num(L, "num_reject_ruleset", (lua_Integer)f.reject_ruleset);
	set_num(L, "num_reject_timeout", (lua_Integer)f.reject_timeout);
	set_num(L, "num_reject_upstream", (lua_Integer)f.reject_upstream);
	set_num(L, "byt_up", (lua_Integer)f.bytes_up);
	set_num(L, "byt_down", (lua_Integer)f.bytes_down);
	set_num(L, "num_accept", (lua_Integer)f.accepts);
	set_num(L, "num_serve",
		(lua_Integer)(f.accepts > f.accept_drops
				      ? f.accepts - f.accept_drops
				      : 0));
	set_num(L, "num_api_request", (lua_Integer)api->requests);
	set_num(L, "num_api_success", (lua_Integer)api->success);
	set_num(L, "num_dns_query", (lua_Integer)f.dns_queries);
	set_num(L, "num_dns_success", (lua_Integer)f.dns_success);
	set_num(L, "bytes_allocated", (lua_Integer)vm_memory());
	set_num(L, "num_object", (lua_Integer)vm_objects());
	set_num(L, "num_thread_active", (lua_Integer)ar_active());
	set_num(L, "num_thread_peak", (lua_Integer)ar_peak());
	/* ours */
	set_num(L, "num_request_pending", (lua_Integer)request_pending());
}
