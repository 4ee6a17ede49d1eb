/* sandbox: lock a process down for its role, in one call.
 *
 * The children (front, ruleset) call sandbox_apply() once, after their
 * start-up (event base, channel, resolver, everything that opens a file or
 * binds) and before they serve. The parent calls it with ROLE_PARENT once
 * its listeners are bound and its event base exists. The order of the
 * layers is fixed here (see docs/sandbox.md):
 *
 *   children: [ruleset: unshare(NEWNET|NEWIPC)] -> [chroot(jail), chdir /]
 *     -> bounding set emptied -> setgroups(0) -> setresgid -> setresuid
 *     -> every capability set cleared (incl. ambient) -> NO_NEW_PRIVS
 *     -> DUMPABLE 0 -> RLIMIT_NPROC/FSIZE/CORE 0 -> Landlock (no rules)
 *     -> seccomp allowlist (default: kill the process)
 *   parent: bounding set cut to keep_prm -> capabilities cut to
 *     keep_eff/keep_prm, inheritable and ambient cleared -> NO_NEW_PRIVS
 *     -> DUMPABLE 0 -> RLIMIT_CORE 0 -> seccomp allowlist
 *
 * A layer that needs a privilege the process does not have (not root, or a
 * systemd unit that withholds the capability) is skipped and named in
 * `skipped`; anything else that fails makes sandbox_apply() return -1, and
 * the caller must exit: a process never runs half-sandboxed.
 *
 * The allowlists are data, one table per role, in sandbox_policy.c. */
#ifndef NEOSOCKSD_SANDBOX_H
#define NEOSOCKSD_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/msg.h"

struct sandbox_conf {
	enum role role;   /* ROLE_FRONT, ROLE_RULESET or ROLE_PARENT */
	bool drop_user;   /* switch to uid/gid (needs CAP_SETUID+CAP_SETGID) */
	uid_t uid;        /* never 0 when drop_user */
	gid_t gid;        /* never 0 when drop_user */
	const char *jail; /* empty root-owned directory to chroot into, or
			   * NULL. Meant for the ruleset; the front may use
			   * one too. Refused if not a directory owned by
			   * root, writable by group/other, or not empty. */
	bool netns;       /* ruleset only: unshare(CLONE_NEWNET|CLONE_NEWIPC)
			   * when CAP_SYS_ADMIN allows it */
	bool debug;       /* forbidden syscalls are reported on fd 2 and
			   * fail with ENOSYS instead of killing (also on
			   * when NEOSOCKSD_SANDBOX_DEBUG=1 is in the
			   * environment) */
	uint64_t parent_keep_eff; /* ROLE_PARENT: capabilities (bit n = cap
				   * n) to keep effective */
	bool parent_no_filter;    /* ROLE_PARENT: every layer but the seccomp
				   * filter (--enable-execute: the commands it
				   * starts would inherit it) */
	bool parent_bind_listen;  /* ROLE_PARENT: it makes listening sockets
				   * for SOCKS5 BIND (listen(fd, 1)) */
	int parent_pidfile_dirfd; /* ROLE_PARENT: the --pidfile's directory
				   * (> 0), where it removes the pidfile at
				   * exit; 0 or -1: none */
	int parent_state_dirfd;   /* ROLE_PARENT: the --state-dir directory
				   * (> 0), where it may write the saved
				   * updates; 0 or -1: none */
	uint64_t parent_keep_prm; /* ROLE_PARENT: to keep permitted and in
				   * the bounding set; must include keep_eff
				   * and what the children need for their own
				   * setup (they inherit it across exec) */
};

/* The backlog of a SOCKS5 BIND socket: one peer. */
#define SANDBOX_BIND_BACKLOG 1

/* Layers, as reported by sandbox_state(). */
#define SANDBOX_SECCOMP  (1u << 0) /* allowlist loaded */
#define SANDBOX_NNP      (1u << 1) /* no_new_privs set */
#define SANDBOX_CAPS     (1u << 2) /* capability sets cut and verified */
#define SANDBOX_USER     (1u << 3) /* uid/gid switched, groups dropped */
#define SANDBOX_CHROOT   (1u << 4) /* chrooted into the jail */
#define SANDBOX_NETNS    (1u << 5) /* own network and IPC namespaces */
#define SANDBOX_LANDLOCK (1u << 6) /* Landlock domain without rules */
#define SANDBOX_BOUNDING (1u << 7) /* bounding set cut */
#define SANDBOX_RLIMITS  (1u << 8) /* resource limits lowered */
#define SANDBOX_DEBUG    (1u << 9) /* the filter reports instead of kills */

/* Apply every layer for c->role, in order. Returns 0 when every layer the
 * process can apply is in place; `skipped` (may be NULL) then lists the
 * layers left out and why, comma-separated ("" if none), for one log line.
 * Returns -1 with `err` filled when something failed that should have
 * worked; the process may then be half-changed and must exit.
 * Call it once per process. Not thread-safe: call it single-threaded. */
int sandbox_apply(const struct sandbox_conf *c, char *skipped,
		  size_t skippedcap, char *err, size_t errcap);

/* Write the role's seccomp filter (kill mode) as libseccomp PFC text to
 * fd. 0, or -1. */
int sandbox_dump(enum role role, int fd);

/* Bitmask of SANDBOX_* layers this process has applied. */
unsigned sandbox_state(void);

/* "seccomp,nnp,caps,..." for a state mask; returns buf. */
const char *sandbox_state_str(unsigned state, char *buf, size_t cap);

#ifdef NEOSOCKSD_SANITIZE
/* Sanitizer builds only: include (the default) or leave out the extra
 * syscalls the ASan/UBSan/LSan runtime needs, so tests can check the exact
 * release allowlists. */
void sandbox_set_sanitizer_extras(bool on);
#endif

#endif
