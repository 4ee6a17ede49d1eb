/* sandbox_policy: the seccomp allowlist of each role, as data (for
 * sandbox.c, which loads them, and the tests, which check them). */
#ifndef NEOSOCKSD_SANDBOX_POLICY_H
#define NEOSOCKSD_SANDBOX_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "common/msg.h"

#define SANDBOX_MAX_CMP 3

enum sandbox_dyn {
	SANDBOX_DYN_NONE = 0,
	SANDBOX_DYN_PID, /* datum: getpid() of the process building it */
	SANDBOX_DYN_TID, /* datum: gettid() of the process building it */
	SANDBOX_DYN_STATE_DIR, /* datum: conf's parent_state_dirfd; the row
				* is left out when there is none */
	SANDBOX_DYN_PIDFILE_DIR, /* datum: conf's parent_pidfile_dirfd; the
				  * row is left out when there is none */
	SANDBOX_DYN_BIND_BACKLOG, /* datum: SANDBOX_BIND_BACKLOG; the row is
				   * left out without parent_bind_listen */
};

struct sandbox_cmp {
	uint8_t arg;   /* 0..5 */
	uint8_t op;    /* enum scmp_compare */
	uint8_t dyn;   /* enum sandbox_dyn */
	uint64_t mask; /* SCMP_CMP_MASKED_EQ only */
	uint64_t datum;
};

/* One row: syscall nr (SCMP_SYS), allowed when every comparison holds
 * (rows for the same syscall are alternatives), or failing with errno_ret
 * instead of being allowed when errno_ret != 0. */
struct sandbox_rule {
	int nr;
	int errno_ret;
	uint8_t ncmp;
	struct sandbox_cmp cmp[SANDBOX_MAX_CMP];
	const char *note; /* the condition in words, for docs and dumps */
};

struct sandbox_policy {
	const char *name;
	unsigned includes; /* (1u << role): also every row of these roles */
	const struct sandbox_rule *rules;
	size_t nrules;
	const struct sandbox_rule *extras; /* sanitizer runtime (else none) */
	size_t nextras;
};

/* The policy of a role, or NULL. */
const struct sandbox_policy *sandbox_policy_get(enum role role);

#endif
