/* sandbox_policy: the seccomp allowlists, one table per role.
 *
 * A row allows one syscall, optionally only when its arguments match; rows
 * for the same syscall are alternatives. Anything not listed kills the
 * process (SCMP_ACT_KILL_PROCESS), or traps in debug mode. Where the
 * arguments are filtered, the note says how. How the lists were found:
 * strace -f of the daemon (release and ASan builds) relaying real SOCKS4,
 * SOCKS4A, SOCKS5 and HTTP CONNECT traffic, with evdns, splice and buffer
 * relays; a Lua 5.4 VM running string, table, os.clock and GC work; and
 * the debug mode of this module for the sanitizer runtime. docs/sandbox.md
 * prints these tables (test_sandbox --policy-markdown) and explains them.
 *
 * Rules of thumb for editing: keep a syscall out unless the process makes
 * it after sandbox_apply() in normal operation; filter the arguments that
 * select an operation (socket family, fcntl command, prctl option, mmap
 * protection); never allow anything that opens a file, creates a process
 * or changes privileges in a child. */
#include "privsep/sandbox_policy.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#if defined(__x86_64__)
#include <asm/prctl.h>

#include "privsep/sandbox.h"
#ifndef ARCH_CET_STATUS
#define ARCH_CET_STATUS 0x3001
#endif
#endif

#define ROW(sys, nt) { .nr = SCMP_SYS(sys), .note = (nt) }
#define ROW1(sys, c0, nt)                                                \
	{ .nr = SCMP_SYS(sys), .ncmp = 1, .cmp = { c0 }, .note = (nt) }
#define ROW2(sys, c0, c1, nt)                                            \
	{ .nr = SCMP_SYS(sys), .ncmp = 2, .cmp = { c0, c1 }, .note = (nt) }
#define ROW3(sys, c0, c1, c2, nt)                                        \
	{ .nr = SCMP_SYS(sys), .ncmp = 3, .cmp = { c0, c1, c2 },          \
	  .note = (nt) }
#define FAILS(sys, e, nt)                                                \
	{ .nr = SCMP_SYS(sys), .errno_ret = (e), .note = (nt) }

#define EQ(a, v) { .arg = (a), .op = SCMP_CMP_EQ, .datum = (uint64_t)(v) }
#define MASKED(a, m, v)                                                  \
	{ .arg = (a), .op = SCMP_CMP_MASKED_EQ, .mask = (uint64_t)(m),    \
	  .datum = (uint64_t)(v) }
#define SELF(a, d) { .arg = (a), .op = SCMP_CMP_EQ, .dyn = (d) }
/* the same for an int argument: its upper 32 bits are not defined */
#define SELF32(a, d)                                                     \
	{ .arg = (a), .op = SCMP_CMP_MASKED_EQ, .mask = 0xffffffffu,      \
	  .dyn = (d) }

/* socket(2) type without the flag bits */
#define SOCK_FLAGS_OUT (~(uint64_t)(SOCK_NONBLOCK | SOCK_CLOEXEC))
/* the bit O_TMPFILE adds to O_DIRECTORY (glibc's __O_TMPFILE has both) */
#define SBX_O_TMPFILE_BIT 020000000
/* open flags that write or create */
#define OPEN_WRITING                                                     \
	(O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND | SBX_O_TMPFILE_BIT)
/* clone flags other than the exit signal */
#define CLONE_FLAGS_ONLY (~(uint64_t)CSIGNAL)
/* a pid argument that is >= 0 as an int (no -1, no negative groups) */
#define PID_NOT_NEGATIVE 0xffffffff80000000ull

/* ---- shared rows ---- */

/* Every role: the event loop, plain I/O on descriptors it already has,
 * memory, time, signals, futexes, exit. */
#define ROWS_COMMON                                                             \
	ROW(read, NULL), ROW(write, NULL), ROW(readv, NULL), ROW(writev, NULL),  \
	ROW(close, NULL),                                                        \
	ROW(epoll_wait, NULL), ROW(epoll_pwait, NULL), ROW(epoll_ctl, NULL),     \
	ROW(poll, "chanev_drain() flushes the channel at exit"),                 \
	ROW(ppoll, NULL),                                                        \
	ROW(recvfrom, NULL), ROW(sendto, NULL),                                  \
	ROW(recvmsg, "the parent channel carries fds (SCM_RIGHTS)"),             \
	ROW(sendmsg, NULL),                                                      \
	ROW(brk, NULL), ROW(munmap, NULL),                                       \
	ROW1(mremap, EQ(3, 0), "flags 0"),                                       \
	ROW1(mremap, EQ(3, MREMAP_MAYMOVE), "flags MREMAP_MAYMOVE"),             \
	ROW1(madvise, EQ(2, MADV_DONTNEED), "MADV_DONTNEED (malloc trim)"),      \
	ROW1(madvise, EQ(2, MADV_FREE), "MADV_FREE"),                            \
	ROW1(madvise, EQ(2, MADV_HUGEPAGE),                                      \
	     "MADV_HUGEPAGE (glibc.malloc.hugetlb)"),                            \
	ROW1(madvise, EQ(2, MADV_NOHUGEPAGE), "MADV_NOHUGEPAGE"),                \
	ROW(clock_gettime, "any clock: Lua's os.clock() needs "                  \
			   "CLOCK_PROCESS_CPUTIME_ID, which the vDSO "           \
			   "does not serve"),                                    \
	ROW(clock_getres, NULL), ROW(gettimeofday, NULL),                        \
	ROW(nanosleep, NULL), ROW(clock_nanosleep, NULL),                        \
	ROW(getrandom, "evdns transaction ids, arc4random, hash seeds, "        \
		       "OpenSSL reseeding its generator (TLS)"),                 \
	ROW(rt_sigreturn, NULL), ROW(rt_sigprocmask, NULL),                      \
	ROW(rt_sigaction, NULL), ROW(sigaltstack, NULL),                         \
	ROW(restart_syscall, NULL),                                              \
	ROW(getpid, "log lines"), ROW(gettid, NULL), ROW(sched_yield, NULL),     \
	ROW1(futex, MASKED(1, FUTEX_CMD_MASK, FUTEX_WAIT), "FUTEX_WAIT"),        \
	ROW1(futex, MASKED(1, FUTEX_CMD_MASK, FUTEX_WAKE), "FUTEX_WAKE"),        \
	ROW1(futex, MASKED(1, FUTEX_CMD_MASK, FUTEX_WAIT_BITSET),                \
	     "FUTEX_WAIT_BITSET"),                                               \
	ROW1(futex, MASKED(1, FUTEX_CMD_MASK, FUTEX_WAKE_BITSET),                \
	     "FUTEX_WAKE_BITSET"),                                               \
	ROW(exit, NULL), ROW(exit_group, NULL)

/* Children: no executable memory, ever. */
#define ROWS_CHILD_MEMORY                                                \
	ROW1(mmap, MASKED(2, PROT_EXEC, 0), "prot without PROT_EXEC"),  \
	ROW1(mprotect, MASKED(2, PROT_EXEC, 0), "prot without PROT_EXEC")

/* Children: abort() (assert, a failed check) still ends in SIGABRT, not
 * SIGSYS: raise() is tgkill(own pid, own tid, SIGABRT). */
#define ROWS_CHILD_ABORT                                                 \
	ROW3(tgkill, SELF(0, SANDBOX_DYN_PID), SELF(1, SANDBOX_DYN_TID),  \
	     EQ(2, SIGABRT), "own pid and tid, SIGABRT only")

/* Children: the descriptor flags they set (non-blocking, close-on-exec). */
#define ROWS_CHILD_FCNTL                                                 \
	ROW1(fcntl, EQ(1, F_GETFL), "F_GETFL"),                          \
	ROW1(fcntl, EQ(1, F_SETFL), "F_SETFL"),                          \
	ROW1(fcntl, EQ(1, F_GETFD), "F_GETFD"),                          \
	ROW1(fcntl, EQ(1, F_SETFD), "F_SETFD"),                          \
	ROW1(fcntl, EQ(1, F_DUPFD_CLOEXEC), "F_DUPFD_CLOEXEC")

/* The socket options a child sets on its own TCP sockets. Options that
 * attach programs (SO_ATTACH_FILTER, SO_ATTACH_BPF), mark or bind to a
 * device stay out. */
#define ROWS_CHILD_SETSOCKOPT                                            \
	ROW2(setsockopt, EQ(1, IPPROTO_TCP), EQ(2, TCP_NODELAY),          \
	     "IPPROTO_TCP, TCP_NODELAY"),                                 \
	ROW2(setsockopt, EQ(1, SOL_SOCKET), EQ(2, SO_KEEPALIVE),          \
	     "SOL_SOCKET, SO_KEEPALIVE"),                                 \
	ROW2(setsockopt, EQ(1, SOL_SOCKET), EQ(2, SO_SNDBUF),             \
	     "SOL_SOCKET, SO_SNDBUF"),                                    \
	ROW2(setsockopt, EQ(1, SOL_SOCKET), EQ(2, SO_RCVBUF),             \
	     "SOL_SOCKET, SO_RCVBUF")

/* TCP and UDP over IPv4/IPv6, nothing else (no AF_UNIX, AF_NETLINK,
 * AF_PACKET, raw sockets). */
#define ROWS_SOCKET_INET(fam, famname)                                    \
	ROW3(socket, EQ(0, fam), MASKED(1, SOCK_FLAGS_OUT, SOCK_STREAM),  \
	     EQ(2, 0), famname ", SOCK_STREAM, 0"),                       \
	ROW3(socket, EQ(0, fam), MASKED(1, SOCK_FLAGS_OUT, SOCK_STREAM),  \
	     EQ(2, IPPROTO_TCP), famname ", SOCK_STREAM, IPPROTO_TCP"),   \
	ROW3(socket, EQ(0, fam), MASKED(1, SOCK_FLAGS_OUT, SOCK_DGRAM),   \
	     EQ(2, 0), famname ", SOCK_DGRAM, 0"),                        \
	ROW3(socket, EQ(0, fam), MASKED(1, SOCK_FLAGS_OUT, SOCK_DGRAM),   \
	     EQ(2, IPPROTO_UDP), famname ", SOCK_DGRAM, IPPROTO_UDP")

/* ---- front: SOCKS/HTTP handshakes, evdns, outbound TCP, splice relay ---- */

static const struct sandbox_rule front_rules[] = {
	ROWS_COMMON,
	ROWS_CHILD_MEMORY,
	ROWS_CHILD_ABORT,
	ROWS_CHILD_FCNTL,
	ROW1(fcntl, EQ(1, F_SETPIPE_SZ), "F_SETPIPE_SZ (relay pipes)"),
	ROW1(fcntl, EQ(1, F_GETPIPE_SZ), "F_GETPIPE_SZ"),
	ROW(accept4, "on the listeners the parent passed"),
	ROWS_SOCKET_INET(AF_INET, "AF_INET"),
	ROWS_SOCKET_INET(AF_INET6, "AF_INET6"),
	ROW(connect, "outbound TCP, evdns"),
	ROW(getsockopt, "read-only (SO_ERROR, TCP_INFO, SO_TYPE)"),
	ROWS_CHILD_SETSOCKOPT,
	ROW2(setsockopt, EQ(1, IPPROTO_TCP), EQ(2, TCP_FASTOPEN_CONNECT),
	     "IPPROTO_TCP, TCP_FASTOPEN_CONNECT"),
	ROW(getsockname, NULL),
	ROW(getpeername, NULL),
	ROW(shutdown, "half-close"),
	ROW(pipe2, "relay pipes"),
	ROW(splice, "socket <-> pipe relay"),
	ROW(recvmmsg, "SOCKS5 UDP relay: datagrams in batches"),
	ROW(sendmmsg, "SOCKS5 UDP relay: datagrams in batches"),
};

/* ---- ruleset: Lua VM and the REST API, on descriptors it was given ---- */

static const struct sandbox_rule ruleset_rules[] = {
	ROWS_COMMON,
	ROWS_CHILD_MEMORY,
	ROWS_CHILD_ABORT,
	ROWS_CHILD_FCNTL,
	ROW(accept4, "on the API listener the parent passed"),
	ROW(getsockopt, "read-only"),
	ROWS_CHILD_SETSOCKOPT,
	ROW(getsockname, NULL),
	ROW(getpeername, NULL),
	ROW(shutdown, "half-close"),
	ROW1(ioctl, EQ(1, FIONREAD), "FIONREAD only (libevent evbuffer_read)"),
};

/* ---- parent: supervision, brokering, and everything its children do ----
 *
 * Seccomp filters are inherited across fork and execve and they stack: a
 * child spawned after the parent loaded this filter runs under both, and
 * a call passes only if every filter allows it. So the parent's filter is
 * necessarily a superset of
 *   - the children's start-up: the dynamic loader, libc and libevent
 *     start-up and their own sandbox_apply(), which run under this filter
 *     alone (execveat, mmap(PROT_EXEC), capset, setresuid, chroot,
 *     unshare, landlock_*, seccomp: rows below), and
 *   - the children's steady state: every row of the front and ruleset
 *     tables (the `includes` of this policy), e.g. accept4 and splice.
 * The parent's own steady state needs much less; the child's own filter
 * is what narrows each child to its role. */

static const struct sandbox_rule parent_rules[] = {
	ROWS_COMMON,
	ROW1(mmap, MASKED(2, PROT_WRITE | PROT_EXEC, 0),
	     "prot neither writable nor executable"),
	ROW1(mmap, MASKED(2, PROT_WRITE | PROT_EXEC, PROT_WRITE),
	     "prot writable, not executable"),
	ROW1(mmap, MASKED(2, PROT_WRITE | PROT_EXEC, PROT_EXEC),
	     "prot executable, not writable (the loader maps the code of "
	     "exec'd children); never W+X"),
	ROW1(mprotect, MASKED(2, PROT_EXEC, 0),
	     "prot without PROT_EXEC (RELRO)"),
	ROW(tgkill, "abort(); any pid, since the children run under this "
		    "filter and a self-only row would name the parent"),
	/* supervision */
	ROW1(clone, MASKED(0, CLONE_FLAGS_ONLY,
			   CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID),
	     "fork() exactly as glibc does it: no threads, no namespaces"),
	FAILS(clone3, ENOSYS, "so glibc falls back to clone"),
	FAILS(sysinfo, ENOSYS, "a respawned ruleset process sets OpenSSL up "
			       "(TLS) under this filter: glibc's qsort() asks "
			       "the memory size once, and without it assumes "
			       "plenty"),
	ROW(execve, "children (fexecve fallback)"),
	ROW(execveat, "children: fexecve of the daemon's own binary"),
	ROW(wait4, NULL),
	ROW(waitid, NULL),
	ROW1(kill, MASKED(0, PID_NOT_NEGATIVE, 0),
	     "pid >= 0 (its children); never -1 or a foreign group"),
	/* files: config, ruleset, modules, tokens, resolver files */
	ROW1(openat, MASKED(2, OPEN_WRITING, 0),
	     "read-only: no O_WRONLY/O_RDWR/O_CREAT/O_TRUNC/O_APPEND/O_TMPFILE"),
	/* --state-dir: the saved updates, written next to the old file and
	 * renamed over it, relative to the directory opened at start only
	 * (rows left out without --state-dir) */
	ROW2(openat, SELF(0, SANDBOX_DYN_STATE_DIR),
	     MASKED(2, O_ACCMODE | O_APPEND | SBX_O_TMPFILE_BIT, O_WRONLY),
	     "--state-dir only: write-only, may create and truncate"),
	ROW2(renameat, SELF(0, SANDBOX_DYN_STATE_DIR),
	     SELF(2, SANDBOX_DYN_STATE_DIR), "within --state-dir only"),
	ROW2(renameat2, SELF(0, SANDBOX_DYN_STATE_DIR),
	     SELF(2, SANDBOX_DYN_STATE_DIR), "within --state-dir only"),
	ROW1(unlinkat, SELF(0, SANDBOX_DYN_STATE_DIR),
	     "within --state-dir only (a failed save's temporary file)"),
	ROW(fsync, "--state-dir: the saved updates reach the disk"),
	ROW1(unlinkat, SELF(0, SANDBOX_DYN_PIDFILE_DIR),
	     "within --pidfile's directory only: the pidfile, at exit"),
	ROW(newfstatat, NULL), ROW(fstat, NULL), ROW(statx, NULL),
	ROW(lseek, NULL), ROW(pread64, "the loader reads ELF headers"),
	ROW(getdents64, "module search paths"),
	ROW(access, "the loader (ld.so.preload)"), ROW(faccessat, NULL),
	ROW(faccessat2, NULL),
	ROW(close_range, "children before exec"),
	ROW(dup, NULL), ROW(dup2, NULL), ROW(dup3, NULL),
	ROW(pipe2, "children's log pipes"),
	ROWS_CHILD_FCNTL,
	ROW1(fcntl, EQ(1, F_DUPFD), "F_DUPFD"),
	/* sockets */
	ROW1(socketpair, EQ(0, AF_UNIX), "AF_UNIX: children's channels"),
	ROW2(socket, EQ(0, AF_UNIX), MASKED(1, SOCK_FLAGS_OUT, SOCK_DGRAM),
	     "AF_UNIX, SOCK_DGRAM: $NOTIFY_SOCKET, syslog"),
	ROW2(socket, EQ(0, AF_UNIX), MASKED(1, SOCK_FLAGS_OUT, SOCK_STREAM),
	     "AF_UNIX, SOCK_STREAM"),
	ROWS_SOCKET_INET(AF_INET, "AF_INET"),
	ROWS_SOCKET_INET(AF_INET6, "AF_INET6"),
	ROW(connect, "$NOTIFY_SOCKET, syslog"),
	ROW(bind, "brokered privileged sockets"),
	ROW1(listen, SELF32(1, SANDBOX_DYN_BIND_BACKLOG),
	     "backlog 1 (an int: the low 32 bits): SOCKS5 BIND's brokered "
	     "socket, only with --enable-socks5-bind"),
	ROW(setsockopt, "any: the options it brokers need privileges"),
	ROW(getsockopt, NULL), ROW(getsockname, NULL), ROW(getpeername, NULL),
	ROW(shutdown, NULL),
	/* exec'd children: loader and libc/libevent start-up */
#if defined(__x86_64__)
	ROW1(arch_prctl, EQ(0, ARCH_SET_FS), "ARCH_SET_FS (TLS set-up)"),
	ROW1(arch_prctl, EQ(0, ARCH_CET_STATUS), "ARCH_CET_STATUS"),
#endif
	ROW(set_tid_address, NULL), ROW(set_robust_list, NULL), ROW(rseq, NULL),
	ROW1(prlimit64, EQ(0, 0), "own process only"),
	ROW(getuid, NULL), ROW(geteuid, NULL), ROW(getgid, NULL),
	ROW(getegid, NULL), ROW(getppid, NULL), ROW(getresuid, NULL),
	ROW(getresgid, NULL), ROW(getgroups, NULL),
	ROW(epoll_create1, NULL),
	/* the children's own sandbox_apply() (and libcap's start-up) */
	ROW1(prctl, EQ(0, PR_SET_PDEATHSIG), "PR_SET_PDEATHSIG"),
	ROW1(prctl, EQ(0, PR_SET_NAME), "PR_SET_NAME"),
	ROW1(prctl, EQ(0, PR_SET_NO_NEW_PRIVS), "PR_SET_NO_NEW_PRIVS"),
	ROW1(prctl, EQ(0, PR_GET_NO_NEW_PRIVS), "PR_GET_NO_NEW_PRIVS"),
	ROW1(prctl, EQ(0, PR_SET_DUMPABLE), "PR_SET_DUMPABLE"),
	ROW1(prctl, EQ(0, PR_GET_DUMPABLE), "PR_GET_DUMPABLE"),
	ROW1(prctl, EQ(0, PR_CAPBSET_READ), "PR_CAPBSET_READ"),
	ROW1(prctl, EQ(0, PR_CAPBSET_DROP), "PR_CAPBSET_DROP"),
	ROW1(prctl, EQ(0, PR_CAP_AMBIENT), "PR_CAP_AMBIENT"),
	ROW1(prctl, EQ(0, PR_GET_SECUREBITS), "PR_GET_SECUREBITS"),
	ROW1(prctl, EQ(0, PR_SET_SECCOMP), "PR_SET_SECCOMP (libseccomp "
					     "fallback)"),
	ROW1(prctl, EQ(0, PR_GET_SECCOMP), "PR_GET_SECCOMP"),
	ROW(capget, NULL), ROW(capset, NULL),
	ROW(setgroups, NULL), ROW(setresgid, NULL), ROW(setresuid, NULL),
	ROW(chroot, "the ruleset's jail"), ROW(chdir, NULL),
	ROW1(unshare, EQ(0, CLONE_NEWNET | CLONE_NEWIPC),
	     "CLONE_NEWNET|CLONE_NEWIPC exactly (the ruleset's jail)"),
	ROW(landlock_create_ruleset, NULL), ROW(landlock_restrict_self, NULL),
	ROW(seccomp, "the children load their own filter"),
};

#ifdef NEOSOCKSD_SANITIZE
/* ---- ASan/UBSan/LSan runtime (sanitizer builds only) ----
 *
 * Found with the debug mode of this module on the ASan build (gcc 12
 * libasan): normal operation needs more madvise advice and, at exit,
 * LeakSanitizer "stops the world": it clones a tracer task
 * (CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_UNTRACED), makes the process
 * dumpable for the time of the check, lets the tracer ptrace-attach every
 * thread listed in /proc/self/task, reads /proc/self/maps, and waits for
 * it. Reports open /proc/self/maps and the binary for symbols. Release
 * builds never contain these rows. */
#define ROWS_SAN_COMMON                                                   \
	ROW1(madvise, EQ(2, MADV_DONTDUMP), "MADV_DONTDUMP (shadow)"),    \
	ROW1(madvise, EQ(2, MADV_DODUMP), "MADV_DODUMP"),                 \
	ROW1(prctl, EQ(0, PR_GET_DUMPABLE), "PR_GET_DUMPABLE (LSan)"),    \
	ROW1(prctl, EQ(0, PR_SET_DUMPABLE), "PR_SET_DUMPABLE (LSan)"),    \
	ROW1(prctl, EQ(0, PR_SET_PTRACER), "PR_SET_PTRACER (LSan)"),      \
	ROW1(prctl, EQ(0, PR_SET_PDEATHSIG), "PR_SET_PDEATHSIG (LSan "    \
					      "tracer)"),                  \
	ROW1(clone, EQ(0, CLONE_VM | CLONE_FS | CLONE_FILES |             \
				  CLONE_UNTRACED),                         \
	     "LSan's tracer task, exactly these flags"),                  \
	ROW(ptrace, "LSan's tracer suspends the threads"),                \
	ROW(wait4, "LSan waits for its tracer"),                          \
	ROW1(open, MASKED(1, OPEN_WRITING, 0),                            \
	     "read-only: /proc/self/maps, /proc/self/task"),              \
	ROW1(openat, MASKED(2, OPEN_WRITING, 0), "read-only"),            \
	ROW(getdents64, "/proc/self/task"),                               \
	ROW(getdents, "/proc/self/task (the runtime uses the old call)"),  \
	ROW(newfstatat, NULL), ROW(fstat, NULL), ROW(lseek, NULL),        \
	ROW(readlink, "/proc/self/exe"),                                  \
	ROW1(ioctl, EQ(1, TCGETS), "TCGETS: is stderr a terminal (colours)"), \
	ROW(getppid, "LSan's tracer checks its parent")

static const struct sandbox_rule front_extras[] = {
	ROWS_SAN_COMMON,
};

static const struct sandbox_rule ruleset_extras[] = {
	ROWS_SAN_COMMON,
};

static const struct sandbox_rule parent_extras[] = {
	ROWS_SAN_COMMON,
	ROW(landlock_add_rule, "LSan: the children keep /proc readable"),
};

#define EXTRAS(x) .extras = x, .nextras = sizeof(x) / sizeof(x[0])
#else
#define EXTRAS(x) .extras = NULL, .nextras = 0
#endif

#define RULES(x) .rules = x, .nrules = sizeof(x) / sizeof(x[0])

static const struct sandbox_policy sandbox_policies[ROLE_COUNT] = {
	[ROLE_PARENT] = { .name = "parent",
			  .includes = (1u << ROLE_FRONT) | (1u << ROLE_RULESET),
			  RULES(parent_rules), EXTRAS(parent_extras) },
	[ROLE_FRONT] = { .name = "front", RULES(front_rules),
			 EXTRAS(front_extras) },
	[ROLE_RULESET] = { .name = "ruleset", RULES(ruleset_rules),
			   EXTRAS(ruleset_extras) },
};

const struct sandbox_policy *sandbox_policy_get(enum role role)
{
	if ((unsigned)role >= ROLE_COUNT)
		return NULL;
	return &sandbox_policies[role];
}
