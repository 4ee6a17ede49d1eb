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

/* Everything /stats and /metrics show, gathered at one moment. */
struct stats_view {
	struct msg_stats front;
	struct msg_status status;
	double uptime; /* seconds */
	double wall;   /* epoch seconds */
	uint64_t cpu_ns; /* front + ruleset */
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
/* Everything now; f: the front's counters, NULL for zeros. */
void stats_fill(struct stats_view *v, const struct msg_stats *f);

typedef void (*stats_ready_fn)(struct api_req *req,
			       const struct stats_view *v);
/* Ask the front for its counters; fn(req, view) follows when they come
 * (at once, with zeros, when there is no front). -1 when too many wait
 * already. */
int stats_gather(stats_ready_fn fn, struct api_req *req);
/* STATS: the front's counters, for whoever waits. */
void stats_on_front(const struct msg_stats *f);
/* The front went away while requests waited: they get zeros. */
void stats_front_gone(void);

void stats_set_lasterror(const char *msg);
/* neosocksd.stats() */
void stats_push_table(lua_State *L);

#endif
