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
#include "common/u32sort.h"
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
	/* the round of STATS_REQ out now: the workers asked and not yet
	 * answered, those that answered, and what they said */
	bool round_out;
	uint32_t round_id;
	uint64_t round_waiting, round_got;
	struct msg_stats got[CONF_WORKERS_MAX];
	char lasterror[512];
} ruleset_stats;

/* every worker's latency samples, merged for the percentiles */
static uint32_t stats_lat[CONF_WORKERS_MAX * MSG_STATS_LAT_N];
static size_t stats_nlat;

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

void stats_fill(struct stats_view *v)
{
	struct timespec wall;

	memset(v, 0, sizeof(*v));
	stats_nlat = 0;
	v->status = ruleset_stats.status;
	clock_gettime(CLOCK_REALTIME, &wall);
	v->uptime = ((double)monotime_ns() -
		     (double)ruleset_stats.status.started_ns) / 1e9;
	v->wall = (double)wall.tv_sec;
	v->cpu_ns = stats_cpu_self_ns();
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

/* Add one worker's counters to the view (after stats_fill()). */
static void stats_add_worker(struct stats_view *v, unsigned worker,
			     const struct msg_stats *f)
{
	struct msg_stats *t = &v->front;
	uint32_t nlat = f->nlat < MSG_STATS_LAT_N ? f->nlat : MSG_STATS_LAT_N;

	t->accepts += f->accepts;
	t->accept_drops += f->accept_drops;
	t->requests += f->requests;
	t->success += f->success;
	t->reject_ruleset += f->reject_ruleset;
	t->reject_timeout += f->reject_timeout;
	t->reject_upstream += f->reject_upstream;
	t->bytes_up += f->bytes_up;
	t->bytes_down += f->bytes_down;
	t->hs_rx += f->hs_rx;
	t->hs_tx += f->hs_tx;
	t->dial_rx += f->dial_rx;
	t->dial_tx += f->dial_tx;
	t->dns_queries += f->dns_queries;
	t->dns_success += f->dns_success;
	t->dials += f->dials;
	t->dial_us_sum += f->dial_us_sum;
	t->active += f->active;
	t->halfopen += f->halfopen;
	t->peak += f->peak;
	/* a layer is in place for the front when every worker has it */
	t->sandbox = v->nworkers == 0 ? f->sandbox : t->sandbox & f->sandbox;
	t->log_dropped += f->log_dropped;
	t->cpu_ns += f->cpu_ns;
	t->udp_pkts_up += f->udp_pkts_up;
	t->udp_pkts_down += f->udp_pkts_down;
	t->udp_bytes_up += f->udp_bytes_up;
	t->udp_bytes_down += f->udp_bytes_down;
	t->udp_drops += f->udp_drops;
	t->udp_assocs += f->udp_assocs;
	t->udp_active += f->udp_active;
	memcpy(stats_lat + stats_nlat, f->lat, nlat * sizeof(f->lat[0]));
	stats_nlat += nlat;
	v->worker_id[v->nworkers] = worker;
	v->worker[v->nworkers++] = (struct stats_worker){
		.accepts = f->accepts, .requests = f->requests,
		.success = f->success, .bytes_up = f->bytes_up,
		.bytes_down = f->bytes_down, .cpu_ns = f->cpu_ns,
		.active = f->active, .halfopen = f->halfopen,
	};
}

/* The percentiles over every worker's samples, and the front's CPU. */
static void stats_add_done(struct stats_view *v)
{
	struct msg_stats *t = &v->front;
	size_t n = stats_nlat;

	v->cpu_ns += t->cpu_ns;
	t->nlat = (uint32_t)n;
	if (n == 0)
		return;
	u32sort(stats_lat, n);
	t->lat_p50_us = stats_lat[(n - 1) * 50 / 100];
	t->lat_p90_us = stats_lat[(n - 1) * 90 / 100];
	t->lat_p99_us = stats_lat[(n - 1) * 99 / 100];
	t->lat_max_us = stats_lat[n - 1];
}

/* The round is over: everyone waiting gets its figures. */
static void stats_round_end(void)
{
	struct stats_wait w[STATS_PENDING_MAX];
	unsigned n = ruleset_stats.nwait;
	struct stats_view v;

	ruleset_stats.round_out = false;
	stats_fill(&v);
	for (unsigned i = 0; i < CONF_WORKERS_MAX; i++)
		if (ruleset_stats.round_got & (UINT64_C(1) << i))
			stats_add_worker(&v, i, &ruleset_stats.got[i]);
	stats_add_done(&v);
	memcpy(w, ruleset_stats.wait, n * sizeof(w[0]));
	ruleset_stats.nwait = 0;
	for (unsigned i = 0; i < n; i++)
		w[i].fn(w[i].req, &v);
}

int stats_gather(stats_ready_fn fn, struct api_req *req)
{
	if (ruleset_stats.nwait == STATS_PENDING_MAX)
		return -1;
	ruleset_stats.wait[ruleset_stats.nwait++] =
		(struct stats_wait){ fn, req };
	if (ruleset_stats.round_out)
		return 0; /* answered with the round already out */
	ruleset_stats.round_out = true;
	ruleset_stats.round_id = ++ruleset_stats.seq;
	ruleset_stats.round_waiting = ruleset_stats.round_got = 0;
	for (unsigned i = 0; i < CONF_WORKERS_MAX; i++) {
		struct chanev *front = ruleset_front(i);

		if (front != NULL &&
		    chanev_send(front, MSG_STATS_REQ, ruleset_stats.round_id,
				NULL, 0, -1) == 0)
			ruleset_stats.round_waiting |= UINT64_C(1) << i;
	}
	if (ruleset_stats.round_waiting == 0)
		stats_round_end(); /* no worker: zeros, at once */
	return 0;
}

void stats_on_front(unsigned worker, uint32_t id, const struct msg_stats *f)
{
	uint64_t bit = UINT64_C(1) << worker;

	if (!ruleset_stats.round_out || id != ruleset_stats.round_id ||
	    !(ruleset_stats.round_waiting & bit))
		return; /* an answer to a round that ended */
	ruleset_stats.got[worker] = *f;
	ruleset_stats.round_got |= bit;
	ruleset_stats.round_waiting &= ~bit;
	if (ruleset_stats.round_waiting == 0)
		stats_round_end();
}

void stats_front_gone(unsigned worker)
{
	uint64_t bit = UINT64_C(1) << worker;

	if (!ruleset_stats.round_out || !(ruleset_stats.round_waiting & bit))
		return;
	ruleset_stats.round_waiting &= ~bit;
	if (ruleset_stats.round_waiting == 0)
		stats_round_end();
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

/* neosocksd.stats(): the reference's table, the front workers' counters
 * summed. They come by synchronous round trips, one worker after the
 * other, all within the entry's budget; a worker that does not answer in
 * time counts as zeros. */
void stats_push_table(lua_State *L)
{
	static struct stats_view v; /* big; this process has one thread */
	static struct msg_stats got;
	const struct msg_stats *f = &v.front;
	const struct api_counters *api = api_counters();
	int64_t deadline = monotime_ms() + vm_budget_ms();

	stats_fill(&v);
	for (unsigned i = 0; i < CONF_WORKERS_MAX; i++) {
		int64_t left = deadline - monotime_ms();
		size_t n = 0;

		if (ruleset_front(i) == NULL)
			continue;
		if (left <= 0)
			break;
		if (ruleset_front_call(i, MSG_STATS_REQ, ++ruleset_stats.seq,
				       NULL, 0, MSG_STATS, (int)left, &got,
				       sizeof(got), &n) &&
		    n == sizeof(got))
			stats_add_worker(&v, i, &got);
	}
	stats_add_done(&v);
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
	set_num(L, "num_halfopen", f->halfopen);
	set_num(L, "num_sessions", f->active);
	set_num(L, "num_sessions_peak", f->peak);
	set_num(L, "num_request", (lua_Integer)f->requests);
	set_num(L, "num_success", (lua_Integer)f->success);
	set_num(L, "num_reject_ruleset", (lua_Integer)f->reject_ruleset);
	set_num(L, "num_reject_timeout", (lua_Integer)f->reject_timeout);
	set_num(L, "num_reject_upstream", (lua_Integer)f->reject_upstream);
	set_num(L, "byt_up", (lua_Integer)f->bytes_up);
	set_num(L, "byt_down", (lua_Integer)f->bytes_down);
	set_num(L, "num_accept", (lua_Integer)f->accepts);
	set_num(L, "num_serve",
		(lua_Integer)(f->accepts > f->accept_drops
				      ? f->accepts - f->accept_drops
				      : 0));
	set_num(L, "num_api_request", (lua_Integer)api->requests);
	set_num(L, "num_api_success", (lua_Integer)api->success);
	set_num(L, "num_dns_query", (lua_Integer)f->dns_queries);
	set_num(L, "num_dns_success", (lua_Integer)f->dns_success);
	set_num(L, "bytes_allocated", (lua_Integer)vm_memory());
	set_num(L, "num_object", (lua_Integer)vm_objects());
	set_num(L, "num_thread_active", (lua_Integer)ar_active());
	set_num(L, "num_thread_peak", (lua_Integer)ar_peak());
	/* ours */
	set_num(L, "num_request_pending", (lua_Integer)request_pending());
	set_num(L, "num_udp_assoc", (lua_Integer)f->udp_active);
	set_num(L, "pkt_udp_up", (lua_Integer)f->udp_pkts_up);
	set_num(L, "pkt_udp_down", (lua_Integer)f->udp_pkts_down);
	set_num(L, "byt_udp_up", (lua_Integer)f->udp_bytes_up);
	set_num(L, "byt_udp_down", (lua_Integer)f->udp_bytes_down);
	set_num(L, "num_udp_dropped", (lua_Integer)f->udp_drops);
}
