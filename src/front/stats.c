/* stats: the front's counters, the latency of its last dials, and their
 * encoding for the ruleset process (STATS, for /stats, /metrics and
 * neosocksd.stats()). The sessions and the listeners count. */
#include "front/stats.h"

#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/u32sort.h"
#include "front/resolver.h"
#include "privsep/sandbox.h"

struct front_stats front_stats;

void stats_served(uint64_t latency_us)
{
	struct front_stats *f = &front_stats;

	f->success++;
	f->dials++;
	f->dial_us_sum += latency_us;
	f->lat[f->latpos] =
		latency_us > UINT32_MAX ? UINT32_MAX : (uint32_t)latency_us;
	f->latpos = (f->latpos + 1) % STATS_LAT_N;
	if (f->nlat < STATS_LAT_N)
		f->nlat++;
}

void stats_encode(struct msg_stats *m)
{
	const struct front_stats *f = &front_stats;
	const struct resolver_stats *rs = resolver_stats();
	*m = (struct msg_stats){
		.accepts = f->accepts, .accept_drops = f->accept_drops,
		.requests = f->requests, .success = f->success,
		.reject_ruleset = f->reject_ruleset,
		.reject_timeout = f->reject_timeout,
		.reject_upstream = f->reject_upstream,
		.bytes_up = f->bytes_up, .bytes_down = f->bytes_down,
		.hs_rx = f->hs_rx, .hs_tx = f->hs_tx,
		.dial_rx = f->dial_rx, .dial_tx = f->dial_tx,
		.dns_queries = rs->queries, .dns_success = rs->success,
		.dials = f->dials, .dial_us_sum = f->dial_us_sum,
		.active = f->active, .halfopen = f->halfopen, .peak = f->peak,
		.nlat = f->nlat,
		.sandbox = sandbox_state(),
		.log_dropped = (uint32_t)log_dropped(),
		.udp_pkts_up = f->udp_pkts_up,
		.udp_pkts_down = f->udp_pkts_down,
		.udp_bytes_up = f->udp_bytes_up,
		.udp_bytes_down = f->udp_bytes_down,
		.udp_drops = f->udp_drops,
		.udp_assocs = f->udp_assocs,
		.udp_active = f->udp_active,
	};
	uint32_t lat[STATS_LAT_N];
	struct timespec ts;

	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0)
		m->cpu_ns = (uint64_t)ts.tv_sec * 1000000000u +
			    (uint64_t)ts.tv_nsec;
	if (f->nlat > 0) {
		memcpy(lat, f->lat, f->nlat * sizeof(lat[0]));
		memcpy(m->lat, lat, f->nlat * sizeof(lat[0]));
		u32sort(lat, f->nlat);
		m->lat_p50_us = lat[(f->nlat - 1) * 50 / 100];
		m->lat_p90_us = lat[(f->nlat - 1) * 90 / 100];
		m->lat_p99_us = lat[(f->nlat - 1) * 99 / 100];
		m->lat_max_us = lat[f->nlat - 1];
	}
}
