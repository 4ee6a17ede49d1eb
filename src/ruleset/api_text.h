/* api_text: the text of /stats, /metrics and /ruleset/gc. */
#ifndef NEOSOCKSD_API_TEXT_H
#define NEOSOCKSD_API_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/growbuf.h"
#include "ruleset/stats.h"

/* The texts go into d, which is failed when one does not fit. */
/* prev: the previous POST's view for rates, or NULL (GET). */
void text_stats(struct growbuf *d, const struct stats_view *v, bool banner,
		bool server, bool runtime, const struct stats_view *prev);
/* Ruleset Allocated / Threads / Events lines. */
void text_runtime(struct growbuf *d, const struct stats_view *v);
/* /ruleset/gc: "Difference" and the runtime lines. */
void text_gc(struct growbuf *d, const struct stats_view *v, double dmem,
	     double dobjects);
/* "Time Cost           : 85.07µs" in the adaptive duration format. */
void text_time_cost(struct growbuf *d, double seconds);
void text_metrics(struct growbuf *d, const struct stats_view *v);
/* "module=NAME sha256=HEX applied=2026-12-06T15:04:05Z" for the ruleset
 * and each module (codeinfo.h), each between prefix and suffix: the
 * "Ruleset Info" lines of /stats, the headers of /healthy. */
void text_ruleset_info(struct growbuf *d, const char *prefix,
		       const char *suffix);

#endif
