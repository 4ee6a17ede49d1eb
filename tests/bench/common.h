/* Small helpers shared by benchsrv.c and loadgen.c (benchmark tools only). */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static const char *prog_name = "bench";

__attribute__((format(printf, 1, 2), noreturn)) static void
die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", prog_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static inline uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Raise the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit. */
static inline rlim_t
raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur;
}

/* Parse a decimal number in [lo, hi]; dies with `what` on error. */
static inline long long
parse_num(const char *s, long long lo, long long hi, const char *what)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		die("bad %s: '%s' (want %lld..%lld)", what, s, lo, hi);
	return v;
}

static inline double
parse_double(const char *s, double lo, double hi, const char *what)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
		die("bad %s: '%s' (want %g..%g)", what, s, lo, hi);
	return v;
}

/*
 * Parse "host:port" where host is an IPv4 loopback literal (127.0.0.0/8) or
 * "localhost". Anything else is refused: these tools only ever talk to
 * addresses on this machine.
 */
static inline void
parse_loopback(const char *spec, struct sockaddr_in *out, int allow_port0)
{
	char host[64];
	const char *colon = strrchr(spec, ':');
	if (colon == NULL || (size_t)(colon - spec) >= sizeof(host) || colon == spec)
		die("address '%s' is not host:port", spec);
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	if (inet_pton(AF_INET, host, &out->sin_addr) != 1)
		die("address '%s': host must be an IPv4 loopback literal", spec);
	if ((ntohl(out->sin_addr.s_addr) >> 24) != 127)
		die("address '%s' is not loopback (127.0.0.0/8); refusing", spec);
	out->sin_port = htons((uint16_t)parse_num(colon + 1, allow_port0 ? 0 : 1,
	                                          65535, "port"));
}

#endif
