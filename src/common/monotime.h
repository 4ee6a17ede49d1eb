/* monotime: the one monotonic clock (CLOCK_MONOTONIC, never set back, not
 * counting suspend), for deadlines, durations and the daemon's uptime. */
#ifndef NEOSOCKSD_MONOTIME_H
#define NEOSOCKSD_MONOTIME_H

#include <stdint.h>
#include <time.h>

static inline int64_t monotime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t monotime_us(void)
{
	return monotime_ns() / 1000;
}

static inline int64_t monotime_ms(void)
{
	return monotime_ns() / 1000000;
}

#endif
