/* stats: the front's counters (what /stats, /metrics and
 * neosocksd.stats() show of the front). */
#ifndef NEOSOCKSD_FRONT_STATS_H
#define NEOSOCKSD_FRONT_STATS_H

#include <stdint.h>

#include "common/msg.h"

#define STATS_LAT_N MSG_STATS_LAT_N /* dial latencies kept */

/* Sessions and listeners count here as things happen. */
struct front_stats {
	uint64_t accepts, accept_drops;
	uint64_t requests, success;
	uint64_t reject_ruleset, reject_timeout, reject_upstream;
	uint64_t bytes_up, bytes_down;
	uint64_t hs_rx, hs_tx;     /* handshake bytes with clients */
	uint64_t dial_rx, dial_tx; /* handshake bytes with proxies */
	uint32_t active, halfopen, peak;
	uint64_t dials, dial_us_sum;
	uint32_t lat[STATS_LAT_N]; /* the last dial latencies, microseconds */
	uint32_t nlat, latpos;
	/* SOCKS5 UDP ASSOCIATE (udp_assoc.c): datagrams and payload bytes
	 * (up: from clients), dropped ones, associations ever and open */
	uint64_t udp_pkts_up, udp_pkts_down, udp_bytes_up, udp_bytes_down;
	uint64_t udp_drops, udp_assocs;
	uint32_t udp_active;
};
extern struct front_stats front_stats;

/* A request was served (its tunnel is up): its dial took latency_us. */
void stats_served(uint64_t latency_us);
/* Everything the ruleset process gets in STATS: the counters, the
 * percentiles of the last dials, DNS, the sandbox, CPU time. */
void stats_encode(struct msg_stats *m);

#endif
