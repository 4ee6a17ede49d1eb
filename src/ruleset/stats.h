/* stats: what the ruleset process gathers for /stats, /metrics and
 * neosocksd.stats(): its own VM and routines, the API and RPC counters,
 * the daemon's status, and the front's counters (by message). */
#ifndef NEOSOCKSD_RSTATS_H
#define NEOSOCKSD_RSTATS_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "common/msg.h"
#include "ruleset/api.h"

/* One front worker's figures, for /metrics' per-worker families. */
struct stats_worker {
	uint64_t accepts, requests, success, bytes_up, bytes_down, cpu_ns;
	uint32_t active, halfopen;
};

/* Everything /stats and /metrics show, gathered at one moment. */
struct stats_view {
	/* the front workers' counters summed (peak: the sum of each
	 * worker's), their sandbox layers those all of them applied, the
	 * latency percentiles over every worker's samples */
	struct msg_stats front;
	unsigned nworkers; /* that answered */
	uint32_t worker_id[CONF_WORKERS_MAX]; /* 0-based */
	struct stats_worker worker[CONF_WORKERS_MAX];
	struct msg_status status;
	double uptime; /* seconds */
	double wall;   /* epoch seconds */
	uint64_t cpu_ns; /* front workers + ruleset */
	struct api_counters api;
	uint64_t rpc_requests, rpc_rx, rpc_tx;
	size_t lua_mem, lua_limit, lua_objects;
	unsigned threads, threads_peak;
	unsigned nevents;
	double ev_p50, ev_p90, ev_p99, ev_max; /* seconds */
	unsigned sandbox_ruleset;
};

/* R_STATUS: start time, restart counts, the parent's sandbox. */
void stats_set_status(const struct msg_status *st);
/* One RPC/invoke request sent to another daemon. */
void stats_count_rpc(uint64_t rx, uint64_t tx);
/* Everything now, without the front workers' counters (zeros). */
void stats_fill(struct stats_view *v);

typedef void (*stats_ready_fn)(struct api_req *req,
			       const struct stats_view *v);
/* Ask every front worker for its counters; fn(req, view) follows when
 * all have answered or gone (at once, with zeros, when there is none).
 * A request that comes while a round is out is answered with it. -1 when
 * too many wait already. */
int stats_gather(stats_ready_fn fn, struct api_req *req);
/* STATS from a worker, for the round of that id. */
void stats_on_front(unsigned worker, uint32_t id, const struct msg_stats *f);
/* A worker went away: the round no longer waits for it. */
void stats_front_gone(unsigned worker);

void stats_set_lasterror(const char *msg);
/* neosocksd.stats() */
void stats_push_table(lua_State *L);

#endif
