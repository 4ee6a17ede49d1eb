/* stats: what the ruleset process gathers for /stats, /metrics and
 * neosocksd.stats(): the front's counters (STATS_REQ, answered by STATS),
 * its own (the API, the RPC client, the VM and its routines) and the
 * daemon's status (R_STATUS). api_text.c formats them. */
#include "ruleset/stats.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/chanev.h"
#include "common/monotime.h"
#include "privsep/sandbox.h"
#include "ruleset/api_conn.h"
#include "ruleset/aroutine.h"
#include "ruleset/request.h"
#include "ruleset/ruleset_front.h"
#include "ruleset/vm.h"

#define STATS_PENDING_MAX 64 /* requests waiting for the front's counters */

struct stats_wait {
	stats_ready_fn fn;
	struct api_req *req;
};

static struct {
	struct msg_status status;
	uint64_t rpc_requests, rpc_rx, rpc_tx;
	struct stats_wait wait[STATS_PENDING_MAX];
	unsigned nwait;
	uint32_t seq;
	char lasterror[512];
} ruleset_stats;

void stats_set_status(const struct msg_status *st)
{
	ruleset_stats.status = *st;
}

void stats_count_rpc(uint64_t rx, uint64_t tx)
{
	ruleset_stats.rpc_requests++;
	ruleset_stats.rpc_rx += rx;
	ruleset_stats.rpc_tx += tx;
}

static uint64_t stats_cpu_self_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void stats_fill(struct stats_view *v, const struct msg_stats *f)
{
	struct timespec wall;

	memset(v, 0, sizeof(*v));
	if (f != NULL)
		v->front = *f;
	v->status = ruleset_stats.status;
	clock_gettime(CLOCK_REALTIME, &wall);
	v->uptime = ((double)monotime_ns() -
		     (double)ruleset_stats.status.started_ns) / 1e9;
	v->wall = (double)wall.tv_sec;
	v->cpu_ns = stats_cpu_self_ns() + (f != NULL ? f->cpu_ns : 0);
	v->api = *api_counters();
	v->rpc_requests = ruleset_stats.rpc_requests;
	v->rpc_rx = ruleset_stats.rpc_rx;
	v->rpc_tx = ruleset_stats.rpc_tx;
	v->lua_mem = vm_memory();
	v->lua_limit = vm_memlimit();
	v->lua_objects = vm_objects();
	v->threads = ar_active();
	v->threads_peak = ar_peak();
	vm_event_percentiles(&v->nevents, &v->ev_p50, &v->ev_p90, &v->ev_p99,
			     &v->ev_max);
	v->sandbox_ruleset = sandbox_state();
}

int stats_gather(stats_ready_fn fn, struct api_req *req)
{
	struct chanev *front = ruleset_front();
	struct stats_view v;

	if (ruleset_stats.nwait == STATS_PENDING_MAX)
		return -1;
	if (front == NULL || chanev_send(front, MSG_STATS_REQ,
					 ++ruleset_stats.seq, NULL, 0, -1) < 0) {
		stats_fill(&v, NULL); /* the front is away: zeros */
		fn(req, &v);
		return 0;
	}
	ruleset_stats.wait[ruleset_stats.nwait++] =
		(struct stats_wait){ fn, req };
	return 0;
}

/* Answer everyone waiting, with the front's counters or without. */
static void stats_answer_all(const struct msg_stats *f)
{
	struct stats_wait w[STATS_PENDING_MAX];
	unsigned n = ruleset_stats.nwait;
	struct stats_view v;

	memcpy(w, ruleset_stats.wait, n * sizeof(w[0]));
	ruleset_stats.nwait = 0;
	for (unsigned i = 0; i < n; i++) {
		stats_fill(&v, f);
		w[i].fn(w[i].req, &v);
	}
}

void stats_on_front(const struct msg_stats *f)
{
	stats_answer_all(f);
}

void stats_front_gone(void)
{
	stats_answer_all(NULL);
}

void stats_set_lasterror(const char *msg)
{
	snprintf(ruleset_stats.lasterror, sizeof(ruleset_stats.lasterror), "%s",
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
	if (!ruleset_front_call(MSG_STATS_REQ, ++ruleset_stats.seq, NULL, 0,
				MSG_STATS, vm_budget_ms(), &f, sizeof(f), &n) ||
	    n != sizeof(f))
		memset(&f, 0, sizeof(f));
	lua_createtable(L, 0, 32);
	if (ruleset_stats.lasterror[0] != '\0') {
		lua_pushstring(L, ruleset_stats.lasterror);
		lua_setfield(L, -2, "lasterror");
	}
	/* nanoseconds, as a float (the reference's unit) */
	lua_pushnumber(L, ruleset_stats.status.started_ns == 0
				  ? 0.0
				  : (double)monotime_ns() -
					    (double)ruleset_stats.status.started_ns);
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
	set_num(L, "num_udp_assoc", (lua_Integer)f.udp_active);
	set_num(L, "pkt_udp_up", (lua_Integer)f.udp_pkts_up);
	set_num(L, "pkt_udp_down", (lua_Integer)f.udp_pkts_down);
	set_num(L, "byt_udp_up", (lua_Integer)f.udp_bytes_up);
	set_num(L, "byt_udp_down", (lua_Integer)f.udp_bytes_down);
	set_num(L, "num_udp_dropped", (lua_Integer)f.udp_drops);
}
