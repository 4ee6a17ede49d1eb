/* sandbox: namespaces, chroot, user switch, capabilities, no_new_privs,
 * rlimits, Landlock and the seccomp allowlist, applied in that order. See
 * sandbox.h for the contract and docs/sandbox.md for the reasons. */
#include "privsep/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "privsep/sandbox_policy.h"

#ifdef NEOSOCKSD_SANITIZE
#include <sanitizer/common_interface_defs.h>
#endif

/* si_code of a SIGSYS raised by a seccomp filter (asm-generic/siginfo.h) */
#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1
#endif

/* ---- Landlock, with the constants Debian 12's 6.1 headers lack ---- */

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule 445
#define __NR_landlock_restrict_self 446
#endif
#define LL_CREATE_RULESET_VERSION (1u << 0)
#define LL_RULE_PATH_BENEATH 1
/* filesystem rights: ABI 1 knows bits 0..12, ABI 2 adds REFER (13), ABI 3
 * TRUNCATE (14), ABI 5 IOCTL_DEV (15) */
#define LL_FS_ABI1 ((1ull << 13) - 1)
#define LL_FS_REFER (1ull << 13)
#define LL_FS_TRUNCATE (1ull << 14)
#define LL_FS_IOCTL_DEV (1ull << 15)
#define LL_FS_READ_FILE (1ull << 2)
#define LL_FS_READ_DIR (1ull << 3)
/* ABI 4: TCP bind and connect */
#define LL_NET_BIND_TCP (1ull << 0)
#define LL_NET_CONNECT_TCP (1ull << 1)
/* ABI 6: scopes */
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ull << 0)
#define LL_SCOPE_SIGNAL (1ull << 1)

struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net; /* ABI >= 4 */
	uint64_t scoped;             /* ABI >= 6 */
};

struct ll_path_beneath_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

/* ---- state ---- */

static unsigned sandbox_bits;
static pid_t sandbox_pid; /* the process sandbox_bits describe */
#ifdef NEOSOCKSD_SANITIZE
static bool sandbox_san_extras = true;
static bool sandbox_chrooted;
#endif

/* The SIGSYS handler of the debug mode may not allocate or format with
 * stdio: everything it prints is prepared before the filter is loaded. */
#define SBX_NAMES 512
#define SBX_NAMELEN 32
static char sandbox_names[SBX_NAMES][SBX_NAMELEN];
static char sandbox_label[16];

struct sbx {
	const struct sandbox_conf *c;
	char *skipped;
	size_t skippedcap;
	char *err;
	size_t errcap;
	bool debug;
	bool cap_setuid, cap_setgid, cap_chroot, cap_setpcap, cap_sysadmin;
	pid_t ppid; /* the parent when sandbox_apply() began */
};

static void sbx_note(struct sbx *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int sbx_fail(struct sbx *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Append one "layer (reason)" item to the skipped list. */
static void sbx_note(struct sbx *s, const char *fmt, ...)
{
	size_t n;
	va_list ap;

	if (s->skipped == NULL || s->skippedcap == 0)
		return;
	n = strlen(s->skipped);
	if (n > 0 && n + 2 < s->skippedcap) {
		memcpy(s->skipped + n, ", ", 3);
		n += 2;
	}
	if (n + 1 >= s->skippedcap)
		return;
	va_start(ap, fmt);
	vsnprintf(s->skipped + n, s->skippedcap - n, fmt, ap);
	va_end(ap);
}

/* Fill err and return -1. errno is appended when the format ends in ':'. */
static int sbx_fail(struct sbx *s, const char *fmt, ...)
{
	int saved = errno;
	size_t n;
	va_list ap;

	if (s->err == NULL || s->errcap == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(s->err, s->errcap, fmt, ap);
	va_end(ap);
	n = strlen(s->err);
	if (n > 0 && s->err[n - 1] == ':')
		snprintf(s->err + n, s->errcap - n, " %s", strerror(saved));
	errno = saved;
	return -1;
}

unsigned sandbox_state(void)
{
	return sandbox_pid == getpid() ? sandbox_bits : 0;
}

const char *sandbox_state_str(unsigned state, char *buf, size_t cap)
{
	static const char *const names[] = {
		"seccomp", "nnp", "caps", "user", "chroot",
		"netns", "landlock", "bounding", "rlimits", "debug",
	};
	size_t n = 0;

	if (cap == 0)
		return buf;
	buf[0] = '\0';
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int r;

		if (!(state & (1u << i)))
			continue;
		r = snprintf(buf + n, cap - n, "%s%s", n ? "," : "", names[i]);
		if (r < 0 || (size_t)r >= cap - n)
			break;
		n += (size_t)r;
	}
	return buf;
}

#ifdef NEOSOCKSD_SANITIZE
void sandbox_set_sanitizer_extras(bool on)
{
	sandbox_san_extras = on;
}

/* LeakSanitizer needs /proc (thread list, memory map), which a chroot
 * hides: skip the exit-time leak check in a chrooted process rather than
 * fail it. (A weak hook the LSan runtime calls.) */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	return sandbox_chrooted;
}
#endif

/* ---- the seccomp filter ---- */

/* --state-dir's fd for SANDBOX_DYN_STATE_DIR rows (0: none), --pidfile's
 * directory for SANDBOX_DYN_PIDFILE_DIR rows */
static int sbx_state_dirfd, sbx_pidfile_dirfd;
/* --enable-socks5-bind: SANDBOX_DYN_BIND_BACKLOG rows are in */
static bool sbx_bind_listen;

static uint64_t sbx_datum(const struct sandbox_cmp *m)
{
	switch (m->dyn) {
	case SANDBOX_DYN_PID:
		return (uint64_t)getpid();
	case SANDBOX_DYN_TID:
		return (uint64_t)gettid();
	case SANDBOX_DYN_STATE_DIR:
		return (uint64_t)sbx_state_dirfd;
	case SANDBOX_DYN_PIDFILE_DIR:
		return (uint64_t)sbx_pidfile_dirfd;
	case SANDBOX_DYN_BIND_BACKLOG:
		return SANDBOX_BIND_BACKLOG;
	default:
		return m->datum;
	}
}

static int sbx_add_rows(scmp_filter_ctx ctx, const struct sandbox_rule *r,
			size_t n, char *err, size_t errcap)
{
	for (size_t i = 0; i < n; i++) {
		struct scmp_arg_cmp cmp[SANDBOX_MAX_CMP];
		uint32_t act = r[i].errno_ret ? SCMP_ACT_ERRNO(
						       (uint16_t)r[i].errno_ret)
					      : SCMP_ACT_ALLOW;
		int rc;
		bool absent = false;

		for (unsigned k = 0; k < r[i].ncmp && k < SANDBOX_MAX_CMP; k++)
			if ((r[i].cmp[k].dyn == SANDBOX_DYN_STATE_DIR &&
			     sbx_state_dirfd <= 0) ||
			    (r[i].cmp[k].dyn == SANDBOX_DYN_PIDFILE_DIR &&
			     sbx_pidfile_dirfd <= 0) ||
			    (r[i].cmp[k].dyn == SANDBOX_DYN_BIND_BACKLOG &&
			     !sbx_bind_listen))
				absent = true;
		if (absent)
			continue; /* no --state-dir, --pidfile: no write */
		if (r[i].ncmp > SANDBOX_MAX_CMP) {
			snprintf(err, errcap, "policy row %zu: bad row", i);
			return -1;
		}
		for (unsigned k = 0; k < r[i].ncmp; k++) {
			const struct sandbox_cmp *m = &r[i].cmp[k];

			memset(&cmp[k], 0, sizeof(cmp[k]));
			cmp[k].arg = m->arg;
			cmp[k].op = (enum scmp_compare)m->op;
			if (m->op == SCMP_CMP_MASKED_EQ) {
				cmp[k].datum_a = m->mask;
				cmp[k].datum_b = sbx_datum(m);
			} else {
				cmp[k].datum_a = sbx_datum(m);
			}
		}
		/* a syscall this arch does not have (a pseudo number) is
		 * simply not allowed */
		if (r[i].nr < 0)
			continue;
		rc = seccomp_rule_add_array(ctx, act, r[i].nr, r[i].ncmp, cmp);
		if (rc < 0 && rc != -EEXIST) {
			char *name = seccomp_syscall_resolve_num_arch(
				SCMP_ARCH_NATIVE, r[i].nr);

			snprintf(err, errcap, "seccomp rule for %s: %s",
				 name ? name : "?", strerror(-rc));
			free(name);
			return -1;
		}
	}
	return 0;
}

/* Build the role's filter. trap: SCMP_ACT_TRAP instead of kill. */
static scmp_filter_ctx sbx_build(enum role role, bool trap, char *err,
				 size_t errcap)
{
	const struct sandbox_policy *p = sandbox_policy_get(role);
	scmp_filter_ctx ctx;
	int rc;

	if (p == NULL) {
		snprintf(err, errcap, "no seccomp policy for role %d", (int)role);
		return NULL;
	}
	ctx = seccomp_init(trap ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS);
	if (ctx == NULL) {
		snprintf(err, errcap, "seccomp_init failed");
		return NULL;
	}
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH,
			      SCMP_ACT_KILL_PROCESS);
	if (rc == 0)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
	if (rc < 0) {
		snprintf(err, errcap, "seccomp_attr_set: %s", strerror(-rc));
		seccomp_release(ctx);
		return NULL;
	}
	for (int r = 0; r < ROLE_COUNT; r++) {
		const struct sandbox_policy *q = sandbox_policy_get((enum role)r);

		if (q != p && !(p->includes & (1u << r)))
			continue;
		if (sbx_add_rows(ctx, q->rules, q->nrules, err, errcap) < 0)
			goto fail;
#ifdef NEOSOCKSD_SANITIZE
		if (sandbox_san_extras &&
		    sbx_add_rows(ctx, q->extras, q->nextras, err, errcap) < 0)
			goto fail;
#endif
	}
	return ctx;
fail:
	seccomp_release(ctx);
	return NULL;
}

int sandbox_dump(enum role role, int fd)
{
	char err[256];
	scmp_filter_ctx ctx = sbx_build(role, false, err, sizeof(err));
	int rc;

	if (ctx == NULL) {
		size_t n = strlen(err);

		if (fd >= 0 && n + 1 < sizeof(err)) {
			err[n++] = '\n';
			(void)!write(fd, err, n);
		}
		return -1;
	}
	rc = seccomp_export_pfc(ctx, fd);
	seccomp_release(ctx);
	return rc < 0 ? -1 : 0;
}

/* ---- debug mode: report, fail with ENOSYS, carry on ---- */

static void sbx_names_init(void)
{
	for (int nr = 0; nr < SBX_NAMES; nr++) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE,
							       nr);

		snprintf(sandbox_names[nr], SBX_NAMELEN, "%s",
			 name != NULL ? name : "?");
		free(name);
	}
}

static size_t sbx_put(char *buf, size_t n, size_t cap, const char *s)
{
	while (*s != '\0' && n + 1 < cap)
		buf[n++] = *s++;
	return n;
}

static void sbx_sigsys(int sig, siginfo_t *si, void *uctx)
{
	ucontext_t *uc = uctx;
	int saved = errno;
	char line[160], num[16];
	size_t n = 0, k = 0;
	unsigned nr;

	(void)sig;
	if (si->si_code != SYS_SECCOMP)
		return;
	nr = (unsigned)si->si_syscall;
	do {
		num[k++] = (char)('0' + nr % 10);
		nr /= 10;
	} while (nr != 0 && k < sizeof(num));
	n = sbx_put(line, n, sizeof(line), "sandbox: ");
	n = sbx_put(line, n, sizeof(line), sandbox_label);
	n = sbx_put(line, n, sizeof(line), ": forbidden syscall ");
	while (k > 0 && n + 1 < sizeof(line))
		line[n++] = num[--k];
	n = sbx_put(line, n, sizeof(line), " (");
	n = sbx_put(line, n, sizeof(line),
		    (unsigned)si->si_syscall < SBX_NAMES
			    ? sandbox_names[si->si_syscall]
			    : "?");
	n = sbx_put(line, n, sizeof(line), ")\n");
	(void)!write(STDERR_FILENO, line, n);
#if defined(__x86_64__)
	uc->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
#elif defined(__aarch64__)
	uc->uc_mcontext.regs[0] = (unsigned long long)-ENOSYS;
#else
	(void)uc; /* not reached: sbx_debug_setup() refuses */
#endif
	errno = saved;
}

static int sbx_debug_setup(struct sbx *s)
{
	struct sigaction sa;
	sigset_t set;

#if !defined(__x86_64__) && !defined(__aarch64__)
	return sbx_fail(s, "debug mode: not supported on this architecture");
#endif
	snprintf(sandbox_label, sizeof(sandbox_label), "%s",
		 sandbox_policy_get(s->c->role)->name);
	sbx_names_init();
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sbx_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&set);
	sigaddset(&set, SIGSYS);
	if (sigaction(SIGSYS, &sa, NULL) < 0 ||
	    sigprocmask(SIG_UNBLOCK, &set, NULL) < 0)
		return sbx_fail(s, "debug mode: SIGSYS handler:");
	return 0;
}

/* ---- capabilities ---- */

static bool sbx_cap_eff(cap_t caps, cap_value_t v)
{
	cap_flag_value_t f = CAP_CLEAR;

	if (!CAP_IS_SUPPORTED(v))
		return false;
	return cap_get_flag(caps, v, CAP_EFFECTIVE, &f) == 0 && f == CAP_SET;
}

static int sbx_probe_caps(struct sbx *s)
{
	cap_t caps = cap_get_proc();

	if (caps == NULL)
		return sbx_fail(s, "cap_get_proc:");
	s->cap_setuid = sbx_cap_eff(caps, CAP_SETUID);
	s->cap_setgid = sbx_cap_eff(caps, CAP_SETGID);
	s->cap_chroot = sbx_cap_eff(caps, CAP_SYS_CHROOT);
	s->cap_setpcap = sbx_cap_eff(caps, CAP_SETPCAP);
	s->cap_sysadmin = sbx_cap_eff(caps, CAP_SYS_ADMIN);
	cap_free(caps);
	return 0;
}

static bool sbx_keep(uint64_t mask, int cap)
{
	return cap < 64 && (mask >> cap) & 1;
}

/* Drop every capability not in keep from the bounding set (CAP_SETPCAP). */
static int sbx_bounding(struct sbx *s, uint64_t keep)
{
	int max = (int)cap_max_bits();

	if (!s->cap_setpcap) {
		for (int i = 0; i < max; i++)
			if (!sbx_keep(keep, i) && cap_get_bound(i) == 1) {
				sbx_note(s, "bounding set (no CAP_SETPCAP)");
				return 0;
			}
		sandbox_bits |= SANDBOX_BOUNDING; /* already as wanted */
		return 0;
	}
	for (int i = 0; i < max; i++) {
		if (sbx_keep(keep, i) || cap_get_bound(i) != 1)
			continue;
		if (cap_drop_bound(i) < 0)
			return sbx_fail(s, "dropping cap %d from the bounding "
					"set:", i);
	}
	for (int i = 0; i < max; i++)
		if (!sbx_keep(keep, i) && cap_get_bound(i) != 0)
			return sbx_fail(s, "bounding set still holds cap %d", i);
	sandbox_bits |= SANDBOX_BOUNDING;
	return 0;
}

/* Set the capability sets to exactly eff/prm (both within what the process
 * has), inheritable and ambient empty, and check. */
static int sbx_caps(struct sbx *s, uint64_t eff, uint64_t prm)
{
	cap_t want = cap_init(), have = cap_get_proc();
	int max = (int)cap_max_bits(), rc = -1;

	if (want == NULL || have == NULL) {
		sbx_fail(s, "capabilities:");
		goto out;
	}
	for (int i = 0; i < max && i < 64; i++) {
		cap_value_t v = i;
		cap_flag_value_t f = CAP_CLEAR;

		/* "keep" keeps what is there; it never asks for more */
		if (cap_get_flag(have, v, CAP_PERMITTED, &f) < 0 ||
		    f != CAP_SET)
			continue;
		if (sbx_keep(prm, i) &&
		    cap_set_flag(want, CAP_PERMITTED, 1, &v, CAP_SET) < 0)
			goto out_fail;
		if (sbx_keep(eff, i) && sbx_keep(prm, i) &&
		    cap_set_flag(want, CAP_EFFECTIVE, 1, &v, CAP_SET) < 0)
			goto out_fail;
	}
	if (cap_set_proc(want) < 0) {
		sbx_fail(s, "cap_set_proc:");
		goto out;
	}
	if (cap_reset_ambient() < 0 && errno != EINVAL) {
		sbx_fail(s, "clearing the ambient set:");
		goto out;
	}
	cap_free(have);
	have = cap_get_proc();
	if (have == NULL || cap_compare(have, want) != 0) {
		sbx_fail(s, "capability sets differ from the wanted ones");
		goto out;
	}
	for (int i = 0; i < max; i++)
		if (cap_get_ambient(i) > 0) {
			sbx_fail(s, "ambient set still holds cap %d", i);
			goto out;
		}
	sandbox_bits |= SANDBOX_CAPS;
	rc = 0;
	goto out;
out_fail:
	sbx_fail(s, "cap_set_flag:");
out:
	cap_free(want);
	cap_free(have);
	return rc;
}

/* ---- namespaces, jail, user ---- */

static int sbx_netns(struct sbx *s)
{
	struct stat before, after;
	bool have_before;

	if (!s->c->netns) {
		sbx_note(s, "netns (not requested)");
		return 0;
	}
	if (!s->cap_sysadmin) {
		sbx_note(s, "netns (no CAP_SYS_ADMIN)");
		return 0;
	}
	have_before = stat("/proc/self/ns/net", &before) == 0;
	if (unshare(CLONE_NEWNET | CLONE_NEWIPC) < 0) {
		/* a unit's RestrictNamespaces=, a seccomp filter above us, a
		 * kernel without namespaces, user.max_net_namespaces = 0 */
		if (errno == EPERM || errno == ENOSYS || errno == EINVAL ||
		    errno == ENOSPC) {
			sbx_note(s, "netns (unshare: %s)", strerror(errno));
			return 0;
		}
		return sbx_fail(s, "unshare(CLONE_NEWNET|CLONE_NEWIPC):");
	}
	if (have_before && stat("/proc/self/ns/net", &after) == 0 &&
	    after.st_ino == before.st_ino)
		return sbx_fail(s, "unshare: still in the old network namespace");
	sandbox_bits |= SANDBOX_NETNS;
	return 0;
}

/* The jail must be an empty directory that only root can change. */
static int sbx_check_jail(struct sbx *s, const char *dir, struct stat *st)
{
	DIR *d;
	struct dirent *e;
	int n = 0;

	if (lstat(dir, st) < 0)
		return sbx_fail(s, "jail %s:", dir);
	if (!S_ISDIR(st->st_mode))
		return sbx_fail(s, "jail %s: not a directory", dir);
	if (st->st_uid != 0 || (st->st_mode & (S_IWGRP | S_IWOTH)) != 0)
		return sbx_fail(s, "jail %s: must be owned by root and not "
				"writable by group or others", dir);
	d = opendir(dir);
	if (d == NULL)
		return sbx_fail(s, "jail %s:", dir);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	if (n != 0)
		return sbx_fail(s, "jail %s: not empty", dir);
	return 0;
}

static int sbx_chroot(struct sbx *s)
{
	const char *dir = s->c->jail;
	struct stat st, root;

	if (dir == NULL || dir[0] == '\0') {
		if (s->c->role == ROLE_RULESET)
			sbx_note(s, "chroot (no jail directory)");
		return 0;
	}
	if (!s->cap_chroot) {
		sbx_note(s, "chroot (no CAP_SYS_CHROOT)");
		return 0;
	}
	if (sbx_check_jail(s, dir, &st) < 0)
		return -1;
	if (chroot(dir) < 0)
		return sbx_fail(s, "chroot %s:", dir);
	if (chdir("/") < 0)
		return sbx_fail(s, "chdir / in the jail:");
	if (stat("/", &root) < 0 || root.st_dev != st.st_dev ||
	    root.st_ino != st.st_ino)
		return sbx_fail(s, "chroot %s: / is not the jail", dir);
	sandbox_bits |= SANDBOX_CHROOT;
#ifdef NEOSOCKSD_SANITIZE
	sandbox_chrooted = true;
#endif
	return 0;
}

static int sbx_user(struct sbx *s)
{
	const struct sandbox_conf *c = s->c;
	uid_t r, e, sv;
	gid_t rg, eg, sg;

	if (!c->drop_user) {
		sbx_note(s, "user switch (not requested)");
		return 0;
	}
	if (!s->cap_setuid || !s->cap_setgid) {
		/* uid 0 without CAP_SETUID would stay uid 0: refuse */
		if (geteuid() == 0)
			return sbx_fail(s, "running as root without "
					"CAP_SETUID/CAP_SETGID: cannot switch "
					"to uid %u", (unsigned)c->uid);
		sbx_note(s, "user switch (no CAP_SETUID/CAP_SETGID)");
		return 0;
	}
	if (setgroups(0, NULL) < 0)
		return sbx_fail(s, "setgroups:");
	if (setresgid(c->gid, c->gid, c->gid) < 0)
		return sbx_fail(s, "setresgid %u:", (unsigned)c->gid);
	if (setresuid(c->uid, c->uid, c->uid) < 0)
		return sbx_fail(s, "setresuid %u:", (unsigned)c->uid);
	if (getresuid(&r, &e, &sv) < 0 || r != c->uid || e != c->uid ||
	    sv != c->uid || getresgid(&rg, &eg, &sg) < 0 || rg != c->gid ||
	    eg != c->gid || sg != c->gid || getgroups(0, NULL) != 0)
		return sbx_fail(s, "user switch did not take");
	sandbox_bits |= SANDBOX_USER;
	return 0;
}

/* The kernel clears the parent-death signal when the uid changes: arm it
 * again, then make sure the parent did not die before it was armed (the
 * signal would never come; the child now belongs to another process). */
static int sbx_pdeathsig(struct sbx *s)
{
	if (!(sandbox_bits & SANDBOX_USER))
		return 0; /* not cleared: whatever the caller armed stays */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return sbx_fail(s, "PR_SET_PDEATHSIG:");
	if (getppid() != s->ppid)
		return sbx_fail(s, "the parent (pid %d) is gone", (int)s->ppid);
	return 0;
}

/* After the capabilities are gone, the way back to root must be closed
 * (a switch between two non-zero uids keeps capabilities until then). */
static int sbx_user_verify(struct sbx *s)
{
	if (!(sandbox_bits & SANDBOX_USER))
		return 0;
	if (setresuid(0, 0, 0) == 0 || setresgid(0, 0, 0) == 0)
		return sbx_fail(s, "could regain uid/gid 0 after the switch");
	return 0;
}

/* ---- process attributes ---- */

static int sbx_nnp_dumpable(struct sbx *s)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return sbx_fail(s, "PR_SET_NO_NEW_PRIVS:");
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return sbx_fail(s, "no_new_privs did not take");
	sandbox_bits |= SANDBOX_NNP;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return sbx_fail(s, "PR_SET_DUMPABLE:");
	if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
		return sbx_fail(s, "dumpable did not take");
	return 0;
}

static int sbx_rlimit(struct sbx *s, int res, const char *name)
{
	struct rlimit rl = { 0, 0 };

	if (setrlimit(res, &rl) < 0)
		return sbx_fail(s, "setrlimit %s:", name);
	if (getrlimit(res, &rl) < 0 || rl.rlim_cur != 0 || rl.rlim_max != 0)
		return sbx_fail(s, "%s did not take", name);
	return 0;
}

static int sbx_rlimits(struct sbx *s)
{
	if (s->c->role == ROLE_PARENT) {
		if (sbx_rlimit(s, RLIMIT_CORE, "RLIMIT_CORE") < 0)
			return -1;
		sandbox_bits |= SANDBOX_RLIMITS;
		return 0;
	}
#ifdef NEOSOCKSD_SANITIZE
	/* LeakSanitizer's exit check clones a tracer task; NPROC 0 would
	 * make that fail. The seccomp filter still allows only that clone. */
	if (!sandbox_san_extras &&
	    sbx_rlimit(s, RLIMIT_NPROC, "RLIMIT_NPROC") < 0)
		return -1;
#else
	if (sbx_rlimit(s, RLIMIT_NPROC, "RLIMIT_NPROC") < 0)
		return -1;
#endif
	if (sbx_rlimit(s, RLIMIT_FSIZE, "RLIMIT_FSIZE") < 0 ||
	    sbx_rlimit(s, RLIMIT_CORE, "RLIMIT_CORE") < 0)
		return -1;
	sandbox_bits |= SANDBOX_RLIMITS;
	return 0;
}

#ifdef NEOSOCKSD_SANITIZE
/* LeakSanitizer reads /proc/self/task and /proc/self/maps at exit: leave
 * /proc readable in sanitizer builds (in a chroot it is out of reach
 * anyway, and the leak check is skipped there). */
static int sbx_landlock_san_rule(struct sbx *s, int ruleset)
{
	struct ll_path_beneath_attr pb = { 0 };
	int fd;

	if (!sandbox_san_extras || sandbox_chrooted)
		return 0;
	fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	pb.allowed_access = LL_FS_READ_FILE | LL_FS_READ_DIR;
	pb.parent_fd = fd;
	if (syscall(__NR_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &pb,
		    0) < 0) {
		close(fd);
		return sbx_fail(s, "landlock_add_rule /proc:");
	}
	close(fd);
	return 0;
}
#endif

/* A Landlock domain that handles every right the kernel knows and grants
 * none: no file can be opened, created or executed any more; the ruleset
 * also loses TCP bind/connect; both lose abstract unix sockets and signals
 * outside their domain. */
static int sbx_landlock(struct sbx *s)
{
	struct ll_ruleset_attr attr = { 0 };
	size_t size = sizeof(attr.handled_access_fs);
	long abi = syscall(__NR_landlock_create_ruleset, NULL, 0,
			   LL_CREATE_RULESET_VERSION);
	int fd, probe;

	if (abi < 1) {
		sbx_note(s, "landlock (%s)",
			 errno == EOPNOTSUPP ? "disabled at boot"
			 : errno == ENOSYS   ? "kernel too old"
					     : strerror(errno));
		return 0;
	}
	attr.handled_access_fs = LL_FS_ABI1;
	if (abi >= 2)
		attr.handled_access_fs |= LL_FS_REFER;
	if (abi >= 3)
		attr.handled_access_fs |= LL_FS_TRUNCATE;
	if (abi >= 5)
		attr.handled_access_fs |= LL_FS_IOCTL_DEV;
	if (abi >= 4 && s->c->role == ROLE_RULESET) {
		attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
		size = offsetof(struct ll_ruleset_attr, scoped);
	}
	if (abi >= 6) {
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
		size = sizeof(attr);
	}
	fd = (int)syscall(__NR_landlock_create_ruleset, &attr, size, 0);
	if (fd < 0)
		return sbx_fail(s, "landlock_create_ruleset (ABI %ld):", abi);
#ifdef NEOSOCKSD_SANITIZE
	if (sbx_landlock_san_rule(s, fd) < 0) {
		close(fd);
		return -1;
	}
#endif
	if (syscall(__NR_landlock_restrict_self, fd, 0) < 0) {
		close(fd);
		return sbx_fail(s, "landlock_restrict_self:");
	}
	close(fd);
	/* check: listing / must now be refused */
	probe = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (probe >= 0) {
		close(probe);
		return sbx_fail(s, "landlock: / can still be opened");
	}
	if (errno != EACCES)
		return sbx_fail(s, "landlock check: open /:");
	sandbox_bits |= SANDBOX_LANDLOCK;
	return 0;
}

static int sbx_seccomp(struct sbx *s, scmp_filter_ctx ctx)
{
	int rc = seccomp_load(ctx);

	if (rc < 0) {
		errno = -rc;
		return sbx_fail(s, "seccomp_load:");
	}
	sandbox_bits |= SANDBOX_SECCOMP;
	if (s->debug)
		sandbox_bits |= SANDBOX_DEBUG;
	return 0;
}

/* ---- the recipes ---- */

/* Refuse a configuration that cannot be right, before changing anything. */
static int sbx_check_conf(struct sbx *s)
{
	const struct sandbox_conf *c = s->c;

	if (c->role == ROLE_PARENT) {
		if (c->drop_user || c->jail != NULL || c->netns)
			return sbx_fail(s, "the parent takes no user, jail or "
					"netns");
		if ((c->parent_keep_eff & ~c->parent_keep_prm) != 0)
			return sbx_fail(s, "parent_keep_eff must be within "
					"parent_keep_prm");
		return 0;
	}
	if (c->drop_user && (c->uid == 0 || c->gid == 0))
		return sbx_fail(s, "refusing to run the %s as uid/gid 0",
				sandbox_policy_get(c->role)->name);
	if (c->netns && c->role != ROLE_RULESET)
		return sbx_fail(s, "netns is for the ruleset only");
	return 0;
}

static int sbx_child(struct sbx *s)
{
	if (s->c->role == ROLE_RULESET && sbx_netns(s) < 0)
		return -1;
	if (sbx_chroot(s) < 0 || sbx_bounding(s, 0) < 0 || sbx_user(s) < 0 ||
	    sbx_pdeathsig(s) < 0 || sbx_caps(s, 0, 0) < 0 || sbx_user_verify(s) < 0 ||
	    sbx_nnp_dumpable(s) < 0 || sbx_rlimits(s) < 0 ||
	    sbx_landlock(s) < 0)
		return -1;
	return 0;
}

static int sbx_parent(struct sbx *s)
{
	const struct sandbox_conf *c = s->c;

	if (sbx_bounding(s, c->parent_keep_prm) < 0 ||
	    sbx_caps(s, c->parent_keep_eff, c->parent_keep_prm) < 0 ||
	    sbx_nnp_dumpable(s) < 0 || sbx_rlimits(s) < 0)
		return -1;
	return 0;
}

int sandbox_apply(const struct sandbox_conf *c, char *skipped,
		  size_t skippedcap, char *err, size_t errcap)
{
	struct sbx s = {
		.c = c,
		.skipped = skipped,
		.skippedcap = skippedcap,
		.err = err,
		.errcap = errcap,
		.ppid = getppid(),
	};
	const char *env = getenv("NEOSOCKSD_SANDBOX_DEBUG");
	scmp_filter_ctx ctx;

	if (c->role == ROLE_PARENT) {
		sbx_state_dirfd = c->parent_state_dirfd;
		sbx_pidfile_dirfd = c->parent_pidfile_dirfd;
		sbx_bind_listen = c->parent_bind_listen;
	}
	int rc;

	if (skipped != NULL && skippedcap > 0)
		skipped[0] = '\0';
	if (err != NULL && errcap > 0)
		err[0] = '\0';
	if (sandbox_policy_get(c->role) == NULL)
		return sbx_fail(&s, "no sandbox for role %d", (int)c->role);
	/* a forked child starts its own record (its parent's filter and
	 * limits stay in force underneath whatever it applies) */
	if (sandbox_pid != getpid()) {
		sandbox_pid = getpid();
		sandbox_bits = 0;
	}
	if (sandbox_bits & SANDBOX_SECCOMP)
		return sbx_fail(&s, "the sandbox is already applied");
	if (sbx_check_conf(&s) < 0)
		return -1;
	s.debug = c->debug || (env != NULL && strcmp(env, "1") == 0);
	/* everything that can fail without changing the process first */
	if (s.debug && sbx_debug_setup(&s) < 0)
		return -1;
	ctx = sbx_build(c->role, s.debug, err, errcap);
	if (ctx == NULL)
		return -1;
	if (sbx_probe_caps(&s) < 0) {
		seccomp_release(ctx);
		return -1;
	}
#ifdef NEOSOCKSD_SANITIZE
	/* the sanitizer runtime caches /proc/self/maps while it can */
	if (sandbox_san_extras)
		__sanitizer_sandbox_on_notify(NULL);
#endif
	rc = c->role == ROLE_PARENT ? sbx_parent(&s) : sbx_child(&s);
	if (rc == 0 && c->role == ROLE_PARENT && c->parent_no_filter)
		sbx_note(&s, "seccomp (--enable-execute: commands would inherit "
		       "the filter)");
	else if (rc == 0)
		rc = sbx_seccomp(&s, ctx);
	seccomp_release(ctx);
	return rc;
}
