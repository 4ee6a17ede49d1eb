/* sandbox_probe: the probe calls of test_sandbox.c and their tables.
 * Included by test_sandbox.c (one translation unit; not linked on its own).
 *
 * A probe is one call made after sandbox_apply() in a forked child. The
 * forbidden ones use raw syscall(2), so neither libc wrappers nor the
 * sanitizer runtime stand between the probe and the filter, and return
 * -errno if the call comes back (it must not). The allowed ones do what
 * the daemon does and return 0 when it worked. `pre` hooks run before the
 * sandbox and create what the probe needs (sockets, an epoll fd). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "privsep/sandbox.h"
#include "privsep/sandbox_policy.h"

#define NOBODY 65534
#define CAPBIT(c) (1ull << (c))
/* capability numbers (linux/capability.h) */
#define C_SETGID 6
#define C_SETUID 7
#define C_SETPCAP 8
#define C_NET_BIND_SERVICE 10
#define C_SYS_CHROOT 18
#define C_SYS_ADMIN 21

enum expect {
	EXIT0 = 1, /* the probe returned 0 and the child exited 0 */
	SIGSYS_, /* killed by SIGSYS inside the probe */
	SIGABRT_, /* killed by SIGABRT inside the probe */
};

struct probe {
	const char *name;
	enum role role;
	enum expect expect;
	void (*pre)(void); /* before sandbox_apply */
	long (*fn)(void);  /* the probe: 0 means "worked" for EXIT0 rows */
	bool asbuilt;      /* keep the sanitizer rows: the probe goes
			    * through the sanitizer runtime (malloc) */
};

/* state the pre hooks set up for the probes */
static int g_sock_udp = -1, g_sock_tcp = -1, g_listener = -1, g_sv[2] = {
	-1, -1
};
static int g_epfd = -1;
static pid_t g_ppid;

static size_t read_full(int fd, void *buf, size_t len)
{
	size_t n = 0;

	while (n < len) {
		ssize_t r = read(fd, (char *)buf + n, len - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	return n;
}


/* ---- pre hooks (before the filter) ---- */

/* A listening socket with one pending connection, for accept4. The
 * daemon's children never listen: the parent does, and so must a test
 * parent whose children run under the parent filter. Kept across exec. */
static void pre_listener(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int c;

	if (g_listener >= 0)
		return;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	g_listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (g_listener < 0 ||
	    bind(g_listener, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(g_listener, 4) < 0 ||
	    getsockname(g_listener, (struct sockaddr *)&a, &len) < 0)
		_exit(105);
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)) < 0)
		_exit(106);
}

static void pre_sockets(void)
{
	pre_listener();
	g_sock_udp = socket(AF_INET, SOCK_DGRAM, 0);
	g_sock_tcp = socket(AF_INET, SOCK_STREAM, 0);
	if (g_sock_udp < 0 || g_sock_tcp < 0)
		_exit(104);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, g_sv) < 0)
		_exit(107);
	g_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (g_epfd < 0)
		_exit(108);
}

/* ---- probes: forbidden calls (return -errno if they come back) ---- */

static long ret(long r)
{
	return r < 0 ? -errno : r;
}

#ifdef SYS_open
static long p_open(void)
{
	return ret(syscall(SYS_open, "/etc/passwd", O_RDONLY));
}
#endif

static long p_openat(void)
{
	return ret(syscall(SYS_openat, AT_FDCWD, "/etc/passwd", O_RDONLY));
}

static long p_socket_packet(void)
{
	return ret(syscall(SYS_socket, AF_PACKET, SOCK_RAW, 0));
}

static long p_socket_netlink(void)
{
	return ret(syscall(SYS_socket, AF_NETLINK, SOCK_RAW, 0));
}

static long p_socket_unix(void)
{
	return ret(syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0));
}

static long p_socket_inet(void)
{
	return ret(syscall(SYS_socket, AF_INET, SOCK_STREAM, 0));
}

static long p_socket_raw(void)
{
	return ret(syscall(SYS_socket, AF_INET, SOCK_RAW, IPPROTO_ICMP));
}

static long p_socket_inet_sctp(void)
{
	return ret(syscall(SYS_socket, AF_INET, SOCK_STREAM, IPPROTO_SCTP));
}

static long p_socketpair(void)
{
	int sv[2];

	return ret(syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, sv));
}

static long p_bind(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return ret(syscall(SYS_bind, g_sock_udp, &a, sizeof(a)));
}

static long p_listen(void)
{
	return ret(syscall(SYS_listen, g_sock_tcp, 1));
}

static long p_connect(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(9) };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return ret(syscall(SYS_connect, g_sock_tcp, &a, sizeof(a)));
}

#ifdef SYS_accept
static long p_accept_old(void)
{
	return ret(syscall(SYS_accept, g_listener, NULL, NULL));
}
#endif

static long p_execve(void)
{
	char *argv[] = { (char *)"true", NULL };
	char *envp[] = { NULL };

	return ret(syscall(SYS_execve, "/bin/true", argv, envp));
}

#ifdef SYS_fork
static long p_fork(void)
{
	long r = syscall(SYS_fork);

	if (r == 0)
		_exit(0);
	return ret(r);
}
#endif

static long p_clone(void)
{
	long r = syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);

	if (r == 0)
		_exit(0);
	return ret(r);
}

static long p_clone3(void)
{
	uint64_t args[11] = { 0 };

	args[4] = SIGCHLD; /* exit_signal */
	long r = syscall(SYS_clone3, args, sizeof(args));

	if (r == 0)
		_exit(0);
	return ret(r);
}

static long p_ptrace(void)
{
	return ret(syscall(SYS_ptrace, PTRACE_TRACEME, 0, NULL, NULL));
}

static long p_kill_parent(void)
{
	return ret(syscall(SYS_kill, g_ppid, 0));
}

static long p_kill_self_term(void)
{
	return ret(syscall(SYS_tgkill, getpid(), gettid(), SIGTERM));
}

static long p_mmap_exec(void)
{
	return ret(syscall(SYS_mmap, NULL, 4096, PROT_READ | PROT_EXEC,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
}

static long p_mmap_wx(void)
{
	return ret(syscall(SYS_mmap, NULL, 4096,
			   PROT_READ | PROT_WRITE | PROT_EXEC,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
}

static long p_mprotect_exec(void)
{
	long m = syscall(SYS_mmap, NULL, 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m < 0)
		return -1000 - errno;
	return ret(syscall(SYS_mprotect, m, 4096, PROT_READ | PROT_EXEC));
}

static long p_chroot(void)
{
	return ret(syscall(SYS_chroot, "/"));
}

static long p_unshare(void)
{
	return ret(syscall(SYS_unshare, CLONE_NEWNET));
}

static long p_unshare_user(void)
{
	return ret(syscall(SYS_unshare, CLONE_NEWUSER));
}

static long p_setns(void)
{
	return ret(syscall(SYS_setns, 0, CLONE_NEWNET));
}

static long p_bpf(void)
{
	return ret(syscall(SYS_bpf, 0, NULL, 0));
}

static long p_io_uring(void)
{
	struct io_uring_params prm;

	memset(&prm, 0, sizeof(prm));
	return ret(syscall(SYS_io_uring_setup, 1, &prm));
}

static long p_mount(void)
{
	return ret(syscall(SYS_mount, "none", "/", "tmpfs", 0, NULL));
}

static long p_userfaultfd(void)
{
	return ret(syscall(SYS_userfaultfd, 0));
}

static long p_perf(void)
{
	return ret(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
}

static long p_keyctl(void)
{
	return ret(syscall(SYS_keyctl, 0, 0, 0, 0, 0));
}

static long p_process_vm_readv(void)
{
	char buf[8];
	struct iovec l = { buf, sizeof(buf) }, rv = { buf, sizeof(buf) };

	return ret(syscall(SYS_process_vm_readv, g_ppid, &l, 1, &rv, 1, 0));
}

static long p_setuid0(void)
{
	return ret(syscall(SYS_setresuid, 0, 0, 0));
}

static long p_dumpable(void)
{
	return ret(syscall(SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0));
}

static long p_tiocsti(void)
{
	char c = 'x';

	return ret(syscall(SYS_ioctl, 0, TIOCSTI, &c));
}

static long p_attach_filter(void)
{
	char prog[16] = { 0 };

	return ret(syscall(SYS_setsockopt, g_sock_udp, SOL_SOCKET,
			   SO_ATTACH_FILTER, prog, sizeof(prog)));
}

static long p_fcntl_setown(void)
{
	return ret(syscall(SYS_fcntl, g_sock_tcp, F_SETOWN, g_ppid));
}

static long p_prlimit(void)
{
	struct rlimit rl = { 1, 1 };

	return ret(syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &rl, NULL));
}

static long p_getdents(void)
{
	char buf[256];

	return ret(syscall(SYS_getdents64, g_epfd, buf, sizeof(buf)));
}

static long p_memfd(void)
{
	return ret(syscall(SYS_memfd_create, "x", 0));
}

static long p_pipe2(void)
{
	int p[2];

	return ret(syscall(SYS_pipe2, p, 0));
}

static long p_splice(void)
{
	return ret(syscall(SYS_splice, g_sv[0], NULL, g_sv[1], NULL, 1, 0));
}

/* ---- probes: allowed calls (return 0 when they worked) ---- */

static long a_epoll_wait(void)
{
	struct epoll_event ev;
	struct pollfd pfd = { .fd = g_sv[0], .events = POLLOUT };

	if (epoll_wait(g_epfd, &ev, 1, 0) != 0)
		return -errno;
	/* chanev_drain() at exit */
	return poll(&pfd, 1, 0) == 1 ? 0 : -1;
}

static long a_clocks(void)
{
	struct timespec ts;

	/* raw syscalls: the vDSO would serve some of these without one */
	if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) < 0 ||
	    syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts) < 0 ||
	    syscall(SYS_clock_gettime, CLOCK_PROCESS_CPUTIME_ID, &ts) < 0 ||
	    syscall(SYS_clock_gettime, CLOCK_THREAD_CPUTIME_ID, &ts) < 0 ||
	    syscall(SYS_clock_getres, CLOCK_MONOTONIC, &ts) < 0)
		return -errno;
	/* Lua's os.clock() */
	return clock() == (clock_t)-1 ? -1 : 0;
}

static long a_getrandom(void)
{
	char buf[16];

	return getrandom(buf, sizeof(buf), 0) == (ssize_t)sizeof(buf) ? 0
								       : -errno;
}

static long a_pipe_splice(void)
{
	int p[2];
	char buf[8];

	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	if (fcntl(p[1], F_SETPIPE_SZ, 65536) < 0 ||
	    fcntl(p[1], F_GETPIPE_SZ) < 0)
		return -2;
	if (write(g_sv[0], "hello", 5) != 5)
		return -3;
	if (splice(g_sv[1], NULL, p[1], NULL, 5, SPLICE_F_NONBLOCK) != 5)
		return -4;
	if (splice(p[0], NULL, g_sv[1], NULL, 5, SPLICE_F_NONBLOCK) != 5)
		return -5;
	if (read(g_sv[0], buf, sizeof(buf)) != 5 || memcmp(buf, "hello", 5))
		return -6;
	return close(p[0]) == 0 && close(p[1]) == 0 ? 0 : -7;
}

static long a_socket_connect(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(9) };
	int one = 1, err = 0;
	socklen_t len = sizeof(err);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			IPPROTO_TCP);
	int fd6 = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || fd6 < 0)
		return -1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) < 0)
		return -2;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 &&
	    errno != EINPROGRESS && errno != ECONNREFUSED)
		return -3;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -4;
	return close(fd) == 0 && close(fd6) == 0 ? 0 : -5;
}

static long a_scm_rights(void)
{
	char byte = 'x', cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &byte, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	int fd = g_epfd, got;

	memset(cbuf, 0, sizeof(cbuf));
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (sendmsg(g_sv[0], &mh, MSG_NOSIGNAL) != 1)
		return -1;
	memset(cbuf, 0, sizeof(cbuf));
	mh.msg_controllen = sizeof(cbuf);
	if (recvmsg(g_sv[1], &mh, MSG_CMSG_CLOEXEC) != 1)
		return -2;
	cm = CMSG_FIRSTHDR(&mh);
	if (cm == NULL || cm->cmsg_type != SCM_RIGHTS)
		return -3;
	memcpy(&got, CMSG_DATA(cm), sizeof(int));
	return fcntl(got, F_GETFD) >= 0 && close(got) == 0 ? 0 : -4;
}

static long a_malloc(void)
{
	size_t n = 100u << 20;
	char *p = malloc(n), *q;

	if (p == NULL)
		return -1;
	memset(p, 1, n);
	free(p);
	p = malloc(1 << 20);
	if (p == NULL)
		return -2;
	q = realloc(p, 64u << 20);
	if (q == NULL) {
		free(p);
		return -3;
	}
	free(q);
	return 0;
}

/* what glibc malloc does with big blocks, as raw calls (in this ASan
 * binary malloc() is the sanitizer's, which needs the sanitizer rows) */
static long a_memory(void)
{
	size_t n = 100u << 20;
	long m = syscall(SYS_mmap, NULL, n, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	long m2;

	if (m < 0)
		return -1;
	memset((void *)m, 1, n);
	if (syscall(SYS_madvise, m, n / 2, MADV_DONTNEED) < 0)
		return -2;
	m2 = syscall(SYS_mremap, m, n, 2 * n, MREMAP_MAYMOVE);
	if (m2 < 0)
		return -3;
	if (syscall(SYS_mprotect, m2, 4096, PROT_READ) < 0)
		return -4;
	if (syscall(SYS_munmap, m2, 2 * n) < 0)
		return -5;
	return syscall(SYS_brk, 0) > 0 ? 0 : -6;
}

static long a_accept4(void)
{
	int fd = accept4(g_listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int one = 1;

	if (fd < 0)
		return -errno;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
	    getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return -2;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		return -3;
	if (shutdown(fd, SHUT_WR) < 0)
		return -4;
	return close(fd) == 0 ? 0 : -5;
}

static long a_fionread(void)
{
	int n = -1;

	char buf[3];

	if (write(g_sv[0], "abc", 3) != 3)
		return -1;
	if (ioctl(g_sv[1], FIONREAD, &n) != 0 || n != 3)
		return -2;
	return read(g_sv[1], buf, sizeof(buf)) == 3 ? 0 : -3;
}

static long a_fcntl(void)
{
	int fl = fcntl(g_sv[0], F_GETFL), dup;

	if (fl < 0 || fcntl(g_sv[0], F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(g_sv[0], F_SETFD, FD_CLOEXEC) < 0 ||
	    fcntl(g_sv[0], F_GETFD) != FD_CLOEXEC)
		return -1;
	dup = fcntl(g_sv[0], F_DUPFD_CLOEXEC, 0);
	return dup >= 0 && close(dup) == 0 ? 0 : -2;
}

static long a_misc(void)
{
	struct timespec ts = { 0, 1000 };

	if (nanosleep(&ts, NULL) < 0 || sched_yield() < 0)
		return -1;
	if (getpid() <= 0 || gettid() <= 0)
		return -2;
	return write(2, "", 0) == 0 ? 0 : -3;
}

static long a_abort(void)
{
	abort();
}

/* the table: every child probe, per role */
#define FORBID(n, r, pre_, fn_)                                           \
	{ .name = n, .role = r, .expect = SIGSYS_, .pre = pre_, .fn = fn_ }
#define ALLOW(n, r, pre_, fn_)                                            \
	{ .name = n, .role = r, .expect = EXIT0, .pre = pre_, .fn = fn_ }
#define BOTH_FORBID(n, pre, fn)                                           \
	FORBID(n, ROLE_FRONT, pre, fn), FORBID(n, ROLE_RULESET, pre, fn)
#define BOTH_ALLOW(n, pre, fn)                                            \
	ALLOW(n, ROLE_FRONT, pre, fn), ALLOW(n, ROLE_RULESET, pre, fn)

static const struct probe child_probes[] = {
#ifdef SYS_open
	BOTH_FORBID("open(/etc/passwd)", NULL, p_open),
#endif
	BOTH_FORBID("openat(/etc/passwd)", NULL, p_openat),
	BOTH_FORBID("socket(AF_PACKET)", NULL, p_socket_packet),
	BOTH_FORBID("socket(AF_NETLINK)", NULL, p_socket_netlink),
	BOTH_FORBID("socket(AF_UNIX)", NULL, p_socket_unix),
	FORBID("socket(AF_INET)", ROLE_RULESET, NULL, p_socket_inet),
	FORBID("socket(AF_INET, SOCK_RAW)", ROLE_FRONT, NULL, p_socket_raw),
	FORBID("socket(AF_INET, IPPROTO_SCTP)", ROLE_FRONT, NULL,
	       p_socket_inet_sctp),
	BOTH_FORBID("socketpair", NULL, p_socketpair),
	BOTH_FORBID("bind", pre_sockets, p_bind),
	BOTH_FORBID("listen", pre_sockets, p_listen),
	FORBID("connect", ROLE_RULESET, pre_sockets, p_connect),
#ifdef SYS_accept
	BOTH_FORBID("accept (not accept4)", pre_sockets, p_accept_old),
#endif
	BOTH_FORBID("execve(/bin/true)", NULL, p_execve),
#ifdef SYS_fork
	BOTH_FORBID("fork", NULL, p_fork),
#endif
	BOTH_FORBID("clone", NULL, p_clone),
	BOTH_FORBID("clone3", NULL, p_clone3),
	BOTH_FORBID("ptrace(PTRACE_TRACEME)", NULL, p_ptrace),
	BOTH_FORBID("kill(getppid(), 0)", NULL, p_kill_parent),
	BOTH_FORBID("tgkill(self, SIGTERM)", NULL, p_kill_self_term),
	BOTH_FORBID("mmap(PROT_EXEC)", NULL, p_mmap_exec),
	BOTH_FORBID("mmap(PROT_WRITE|PROT_EXEC)", NULL, p_mmap_wx),
	BOTH_FORBID("mprotect(PROT_EXEC)", NULL, p_mprotect_exec),
	BOTH_FORBID("chroot", NULL, p_chroot),
	BOTH_FORBID("unshare(CLONE_NEWNET)", NULL, p_unshare),
	BOTH_FORBID("setns", NULL, p_setns),
	BOTH_FORBID("bpf", NULL, p_bpf),
	BOTH_FORBID("io_uring_setup", NULL, p_io_uring),
	BOTH_FORBID("mount", NULL, p_mount),
	BOTH_FORBID("userfaultfd", NULL, p_userfaultfd),
	BOTH_FORBID("perf_event_open", NULL, p_perf),
	BOTH_FORBID("keyctl", NULL, p_keyctl),
	BOTH_FORBID("process_vm_readv", NULL, p_process_vm_readv),
	BOTH_FORBID("setresuid(0)", NULL, p_setuid0),
	BOTH_FORBID("prctl(PR_SET_DUMPABLE, 1)", NULL, p_dumpable),
	BOTH_FORBID("ioctl(TIOCSTI)", NULL, p_tiocsti),
	BOTH_FORBID("setsockopt(SO_ATTACH_FILTER)", pre_sockets,
		    p_attach_filter),
	BOTH_FORBID("fcntl(F_SETOWN)", pre_sockets, p_fcntl_setown),
	BOTH_FORBID("prlimit64", NULL, p_prlimit),
	BOTH_FORBID("getdents64", pre_sockets, p_getdents),
	BOTH_FORBID("memfd_create", NULL, p_memfd),
	FORBID("pipe2", ROLE_RULESET, NULL, p_pipe2),
	FORBID("splice", ROLE_RULESET, pre_sockets, p_splice),

	BOTH_ALLOW("epoll_wait, poll", pre_sockets, a_epoll_wait),
	BOTH_ALLOW("clock_gettime, clock()", NULL, a_clocks),
	BOTH_ALLOW("getrandom", NULL, a_getrandom),
	ALLOW("pipe2 + splice", ROLE_FRONT, pre_sockets, a_pipe_splice),
	ALLOW("socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK) + connect",
	      ROLE_FRONT, NULL, a_socket_connect),
	BOTH_ALLOW("recvmsg with SCM_RIGHTS", pre_sockets, a_scm_rights),
	BOTH_ALLOW("mmap 100 MB, madvise, mremap, munmap", NULL, a_memory),
	{ .name = "malloc 100 MB, realloc, free (as built)",
	  .role = ROLE_FRONT, .expect = EXIT0, .fn = a_malloc, .asbuilt = true },
	{ .name = "malloc 100 MB, realloc, free (as built)",
	  .role = ROLE_RULESET, .expect = EXIT0, .fn = a_malloc,
	  .asbuilt = true },
	BOTH_ALLOW("accept4 + getsockname/setsockopt/shutdown", pre_sockets,
		   a_accept4),
	ALLOW("ioctl(FIONREAD)", ROLE_RULESET, pre_sockets, a_fionread),
	BOTH_ALLOW("fcntl GETFL/SETFL/SETFD/DUPFD_CLOEXEC", pre_sockets,
		   a_fcntl),
	BOTH_ALLOW("nanosleep, sched_yield, getpid, write", NULL, a_misc),
	{ .name = "abort() ends in SIGABRT", .role = ROLE_FRONT,
	  .expect = SIGABRT_, .fn = a_abort },
	{ .name = "abort() ends in SIGABRT", .role = ROLE_RULESET,
	  .expect = SIGABRT_, .fn = a_abort },
};

#define NPROBES(t) (sizeof(t) / sizeof(t[0]))

/* In one process already sandboxed for role (after pre_sockets): make
 * every allowed call of the role. 0, or the first failing row + 1 (its
 * name and result on stderr). asbuilt: include the rows that need the
 * sanitizer rows. */
static int run_allowed(enum role role, bool asbuilt)
{
	for (size_t i = 0; i < NPROBES(child_probes); i++) {
		const struct probe *p = &child_probes[i];
		long v;

		if (p->role != role || p->expect != EXIT0 ||
		    (p->asbuilt && !asbuilt))
			continue;
		v = p->fn();
		if (v != 0) {
			fprintf(stderr, "%s: %s returned %ld\n",
				role == ROLE_FRONT ? "front" : "ruleset",
				p->name, v);
			return (int)i + 1;
		}
	}
	return 0;
}

/* ---- the parent's filter ---- */

/* fork + exec + wait; the exit code, or 500 + signal. With out, the
 * child's stderr is captured there (NUL-terminated). */
static int spawn_wait(const char *path, char *const argv[], char *out,
		      size_t cap)
{
	int st, ep[2] = { -1, -1 };
	pid_t pid;

	if (out != NULL && pipe2(ep, O_CLOEXEC) < 0)
		return -3000 - errno;
	pid = fork();
	if (pid < 0)
		return -1000 - errno;
	if (pid == 0) {
		if (out != NULL && dup2(ep[1], 2) < 0)
			_exit(126);
		execv(path, argv);
		_exit(127);
	}
	if (out != NULL) {
		size_t n;

		close(ep[1]);
		n = read_full(ep[0], out, cap - 1);
		out[n] = '\0';
		close(ep[0]);
	}
	if (waitpid(pid, &st, 0) != pid)
		return -2000 - errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 500 + WTERMSIG(st);
}

static long pa_exec_true(void)
{
	char *argv[] = { (char *)"true", NULL };

	return spawn_wait("/bin/true", argv, NULL, 0);
}

static long pa_read_file(void)
{
	char buf[64];
	int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0 || read(fd, buf, sizeof(buf)) <= 0)
		return -errno;
	return close(fd);
}

static long pa_write_file(void)
{
	return ret(syscall(SYS_openat, AT_FDCWD, "/tmp/sbx-should-not-exist",
			   O_WRONLY | O_CREAT, 0600));
}

static int pa_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static long pa_clone3_enosys(void)
{
	long r = p_clone3();

	return r == -ENOSYS ? 0 : r == 0 ? -1 : r;
}

/* A ruleset process respawned under the parent's filter sets OpenSSL up:
 * glibc's qsort() asks sysinfo() for the memory size on its first large
 * sort. It fails (and qsort() carries on), instead of killing. */
static long pa_sysinfo_enosys(void)
{
	long r = ret(syscall(SYS_sysinfo, NULL));

	return r == -ENOSYS ? 0 : r == 0 ? -1 : r;
}

static long pa_qsort_large(void)
{
	static uint32_t v[4096];

	for (size_t i = 0; i < 4096; i++)
		v[i] = (uint32_t)(4096 - i);
	qsort(v, 4096, sizeof(v[0]), pa_cmp_u32);
	return v[0] == 1 && v[4095] == 4096 ? 0 : -1;
}

static long pa_kill_all(void)
{
	return ret(syscall(SYS_kill, -1, 0));
}

static long pa_unix(void)
{
	int sv[2], fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return -errno;
	return close(fd) | close(sv[0]) | close(sv[1]);
}

static long pa_kexec(void)
{
	return ret(syscall(SYS_kexec_load, 0, 0, NULL, 0));
}

static long pa_init_module(void)
{
	return ret(syscall(SYS_init_module, NULL, 0, ""));
}

static const struct probe parent_probes[] = {
	ALLOW("fork + execve(/bin/true)", ROLE_PARENT, NULL, pa_exec_true),
	ALLOW("open(O_RDONLY) + fstat + read", ROLE_PARENT, NULL,
	      pa_read_file),
	ALLOW("clone3 fails with ENOSYS", ROLE_PARENT, NULL, pa_clone3_enosys),
	ALLOW("sysinfo fails with ENOSYS", ROLE_PARENT, NULL,
	      pa_sysinfo_enosys),
	ALLOW("a first large qsort() (it asks sysinfo)", ROLE_PARENT, NULL,
	      pa_qsort_large),
	ALLOW("socket(AF_UNIX, SOCK_DGRAM), socketpair", ROLE_PARENT, NULL,
	      pa_unix),
	FORBID("ptrace(PTRACE_TRACEME)", ROLE_PARENT, NULL, p_ptrace),
	FORBID("mount", ROLE_PARENT, NULL, p_mount),
	FORBID("openat(O_WRONLY|O_CREAT)", ROLE_PARENT, NULL, pa_write_file),
	FORBID("kill(-1, 0)", ROLE_PARENT, NULL, pa_kill_all),
	FORBID("socket(AF_NETLINK)", ROLE_PARENT, NULL, p_socket_netlink),
	FORBID("socket(AF_PACKET)", ROLE_PARENT, NULL, p_socket_packet),
	FORBID("mmap(PROT_WRITE|PROT_EXEC)", ROLE_PARENT, NULL, p_mmap_wx),
	FORBID("mprotect(PROT_EXEC)", ROLE_PARENT, NULL, p_mprotect_exec),
	FORBID("unshare(CLONE_NEWUSER)", ROLE_PARENT, NULL, p_unshare_user),
	FORBID("unshare(CLONE_NEWNET)", ROLE_PARENT, NULL, p_unshare),
	FORBID("setns", ROLE_PARENT, NULL, p_setns),
	FORBID("bpf", ROLE_PARENT, NULL, p_bpf),
	FORBID("io_uring_setup", ROLE_PARENT, NULL, p_io_uring),
	FORBID("userfaultfd", ROLE_PARENT, NULL, p_userfaultfd),
	FORBID("perf_event_open", ROLE_PARENT, NULL, p_perf),
	FORBID("process_vm_readv", ROLE_PARENT, NULL, p_process_vm_readv),
	FORBID("kexec_load", ROLE_PARENT, NULL, pa_kexec),
	FORBID("init_module", ROLE_PARENT, NULL, pa_init_module),
	FORBID("clone(SIGCHLD) without fork's flags", ROLE_PARENT, NULL,
	       p_clone),
};
