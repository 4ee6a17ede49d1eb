/* limits: RLIMIT_NOFILE and the defaults of -m and --max-startups. */
#include "privsep/limits.h"

#include <limits.h>
#include <sched.h>
#include <sys/resource.h>

long limits_raise_nofile(long *raised_from)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return *raised_from = 1024;
	*raised_from = rl.rlim_cur > INT_MAX ? INT_MAX : (long)rl.rlim_cur;
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit want = { rl.rlim_max, rl.rlim_max };

		/* an infinite hard limit cannot be the soft one (nr_open):
		 * then what is in force stays */
		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			rl.rlim_cur = rl.rlim_max;
	}
	return rl.rlim_cur > INT_MAX ? INT_MAX : (long)rl.rlim_cur;
}

int limits_sessions_for(long nofile)
{
	long m = (nofile - LIMITS_NOFILE_RESERVE) / 2;

	return m < LIMITS_SESSIONS_MIN ? LIMITS_SESSIONS_MIN : (int)m;
}

void limits_derive(struct config *c, long nofile, bool m_given,
		   bool startups_given)
{
	int m;

	if (!m_given) {
		c->max_sessions = limits_sessions_for(nofile);
		if (startups_given && c->startup_limit_full > c->max_sessions)
			c->max_sessions = c->startup_limit_full;
	}
	if (startups_given)
		return;
	m = c->max_sessions > 0 ? c->max_sessions : limits_sessions_for(nofile);
	c->startup_limit_full = m / 2;
	c->startup_limit_start = m / 4;
	c->startup_limit_rate = 30;
}

void limits_workers(struct config *c)
{
	cpu_set_t set;
	int n;

	if (c->workers > 0)
		return;
	n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
	c->workers = n < 1 ? 1 : n > CONF_WORKERS_MAX ? CONF_WORKERS_MAX : n;
}
