/* api_text: /stats and /metrics text. */
#ifndef NEOSOCKSD_API_TEXT_H
#define NEOSOCKSD_API_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ruleset/stats.h"

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
