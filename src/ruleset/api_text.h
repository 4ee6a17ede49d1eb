/* api_text: /stats and /metrics text. */
#ifndef NEOSOCKSD_API_TEXT_H
#define NEOSOCKSD_API_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/msg.h"
#include "ruleset/api.h"

/* A growing string; on allocation failure it stays as it was and marks
 * itself failed. */
struct dstr {
	char *p;
	size_t len, cap;
	bool failed;
};
void dstr_printf(struct dstr *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void dstr_add(struct dstr *d, const char *s, size_t n);

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

/* prev: the previous POST's view for rates, or NULL (GET). */
void text_stats(struct dstr *d, const struct stats_view *v, bool banner,
		bool server, bool runtime, const struct stats_view *prev);
/* Ruleset Allocated / Threads / Events lines. */
void text_runtime(struct dstr *d, const struct stats_view *v);
/* /ruleset/gc: "Difference" and the runtime lines. */
void text_gc(struct dstr *d, const struct stats_view *v, double dmem,
	     double dobjects);
/* "Time Cost           : 85.07µs" in the adaptive duration format. */
void text_time_cost(struct dstr *d, double seconds);
void text_metrics(struct dstr *d, const struct stats_view *v);

#endif
