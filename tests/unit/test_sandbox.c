/* Sandbox tests (run as root; skipped with a reason otherwise).
 *
 * Each case forks a child, applies the role's real sandbox there exactly
 * as the daemon does (uid/gid 65534, a fresh empty root-owned jail and a
 * network namespace for the ruleset), then makes one probe call. The test
 * asserts how the child ended: killed by SIGSYS for a forbidden call, a
 * normal exit 0 for an allowed one. The child reports the result of
 * sandbox_apply() before the probe, so a death is known to come from the
 * probe and not from the set-up.
 *
 * This binary is built with ASan/UBSan like every unit test. The forbidden
 * rows run with the release allowlists (sandbox_set_sanitizer_extras(false))
 * and use raw syscall(2) so the sanitizer runtime is not involved; the
 * rows that exec this binary again (--child) use the sanitizer rows, as the
 * ASan daemon will, and let LeakSanitizer run at exit.
 *
 *   test_sandbox                    run the tests
 *   test_sandbox --policy-markdown  print the allowlists (docs/sandbox.md)
 *   test_sandbox --dump ROLE        print the role's filter as PFC text
 *   TEST_SANDBOX_REPORT=1 test_sandbox   run the probes in debug mode:
 *       forbidden calls are printed, not fatal (SIGSYS rows then fail)
 *
 * With TEST_SANDBOX_REPORT, pipe the output (| cat) rather than redirect
 * it to a file: the sandboxed children have RLIMIT_FSIZE 0, and their
 * report lines written to a file would kill them with SIGXFSZ.
 * The probes and their tables are in sandbox_probe.c, included below. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

/* the probes and their tables; it includes the system headers used here */
#include "sandbox_probe.c"

static bool g_root;
static char g_jail[64];
static char g_self[PATH_MAX];

/* ---- the child runner ---- */

struct report {
	int rc;
	unsigned state;
	char skipped[256];
	char err[256];
};

struct run {
	enum role role;
	bool unpriv;   /* become uid/gid 65534 before applying (no caps) */
	bool extras;   /* keep the sanitizer rows (sanitizer builds) */
	bool debug;
	bool env_debug;
	int stderr_fd; /* dup2'd onto 2 in the child, or -1 */
};


static void sbx_conf(struct sandbox_conf *c, const struct run *r)
{
	memset(c, 0, sizeof(*c));
	c->role = r->role;
	c->debug = r->debug;
	if (r->role == ROLE_PARENT) {
		c->parent_keep_eff = CAPBIT(C_NET_BIND_SERVICE);
		c->parent_keep_prm = CAPBIT(C_NET_BIND_SERVICE) |
				     CAPBIT(C_SETUID) | CAPBIT(C_SETGID) |
				     CAPBIT(C_SYS_CHROOT) | CAPBIT(C_SETPCAP) |
				     CAPBIT(C_SYS_ADMIN);
		return;
	}
	c->drop_user = !r->unpriv;
	c->uid = NOBODY;
	c->gid = NOBODY;
	if (r->role == ROLE_RULESET) {
		c->jail = g_jail;
		c->netns = true;
	}
}

static void become_nobody(void)
{
	if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
	    setresuid(NOBODY, NOBODY, NOBODY) < 0)
		_exit(101);
}

static void write_all(int fd, const void *buf, size_t len)
{
	if (write(fd, buf, len) != (ssize_t)len)
		_exit(102);
}

/* In the child: set up, apply, report, probe, exit. Never returns. */
static void child_main(const struct run *r, const struct probe *p, int rep)
{
	struct sandbox_conf conf;
	struct report out;
	long v;
	int e;

	memset(&out, 0, sizeof(out));
	g_ppid = getppid();
	if (r->stderr_fd >= 0 && dup2(r->stderr_fd, 2) < 0)
		_exit(103);
	if (r->env_debug)
		setenv("NEOSOCKSD_SANDBOX_DEBUG", "1", 1);
	else
		unsetenv("NEOSOCKSD_SANDBOX_DEBUG");
#ifdef NEOSOCKSD_SANITIZE
	sandbox_set_sanitizer_extras(r->extras || p->asbuilt);
#endif
	if (r->unpriv)
		become_nobody();
	if (p->pre != NULL)
		p->pre();
	sbx_conf(&conf, r);
	/* diagnosis: report forbidden calls instead of dying (the rows that
	 * expect SIGSYS then fail, by design) */
	if (getenv("TEST_SANDBOX_REPORT") != NULL)
		conf.debug = true;
	out.rc = sandbox_apply(&conf, out.skipped, sizeof(out.skipped), out.err,
			       sizeof(out.err));
	out.state = sandbox_state();
	write_all(rep, &out, sizeof(out));
	if (out.rc < 0)
		_exit(104);
	errno = 0;
	v = p->fn();
	e = errno;
	write_all(rep, &v, sizeof(v));
	write_all(rep, &e, sizeof(e));
	_exit(v == 0 ? 0 : 3);
}

struct outcome {
	int status;
	bool have_report, have_value;
	struct report rep;
	long value;
	int err;
};

static void run_probe(const struct run *r, const struct probe *p,
		      struct outcome *o)
{
	int pp[2];
	pid_t pid;

	memset(o, 0, sizeof(*o));
	assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pp[0]);
		child_main(r, p, pp[1]);
	}
	close(pp[1]);
	o->have_report = read_full(pp[0], &o->rep, sizeof(o->rep)) ==
			 sizeof(o->rep);
	o->have_value = read_full(pp[0], &o->value, sizeof(o->value)) ==
				sizeof(o->value) &&
			read_full(pp[0], &o->err, sizeof(o->err)) ==
				sizeof(o->err);
	close(pp[0]);
	assert_int_equal(waitpid(pid, &o->status, 0), pid);
}

static const char *role_str(enum role r)
{
	return r == ROLE_FRONT ? "front" : r == ROLE_RULESET ? "ruleset"
							     : "parent";
}

/* Check one probe; print a diagnosis and return false on a mismatch. */
static bool check_probe(const struct run *r, const struct probe *p)
{
	struct outcome o;
	bool ok;
	int want_sig = p->expect == SIGSYS_ ? SIGSYS : SIGABRT;

	run_probe(r, p, &o);
	if (!o.have_report || o.rep.rc != 0) {
		print_error("%s/%s: sandbox_apply failed: %s (status %#x)\n",
			    role_str(p->role), p->name,
			    o.have_report ? o.rep.err : "no report", o.status);
		return false;
	}
	if (p->expect == EXIT0)
		ok = WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0;
	else
		ok = WIFSIGNALED(o.status) && WTERMSIG(o.status) == want_sig &&
		     !o.have_value;
	if (!ok)
		print_error("%s/%s: expected %s, got %s %d (probe %s %ld, "
			    "errno %d)\n",
			    role_str(p->role), p->name,
			    p->expect == EXIT0 ? "exit 0"
			    : p->expect == SIGSYS_ ? "SIGSYS"
						  : "SIGABRT",
			    WIFSIGNALED(o.status) ? "signal" : "exit",
			    WIFSIGNALED(o.status) ? WTERMSIG(o.status)
						  : WEXITSTATUS(o.status),
			    o.have_value ? "returned" : "did not return",
			    o.value, o.err);
	return ok;
}

static void run_table(const struct probe *t, size_t n, const struct run *base,
		      const char *label)
{
	unsigned bad = 0, ran = 0;

	if (!g_root)
		skip();
	for (size_t i = 0; i < n; i++) {
		struct run r = *base;

		if (t[i].role != base->role)
			continue;
		ran++;
		if (!check_probe(&r, &t[i]))
			bad++;
	}
	print_message("  %s %s: %u probes, %u failed\n", label,
		      role_str(base->role), ran, bad);
	assert_true(ran > 0);
	assert_int_equal(bad, 0);
}


/* 1: forbidden and allowed calls, release allowlists */
static void test_table_front(void **state)
{
	struct run r = { .role = ROLE_FRONT, .stderr_fd = -1 };

	(void)state;
	run_table(child_probes, NPROBES(child_probes), &r, "release policy");
}

static void test_table_ruleset(void **state)
{
	struct run r = { .role = ROLE_RULESET, .stderr_fd = -1 };

	(void)state;
	run_table(child_probes, NPROBES(child_probes), &r, "release policy");
}

/* 5: not root: the same forbidden calls still die */
static void test_unpriv_front(void **state)
{
	struct run r = { .role = ROLE_FRONT, .unpriv = true, .stderr_fd = -1 };

	(void)state;
	run_table(child_probes, NPROBES(child_probes), &r, "unprivileged");
}

static void test_unpriv_ruleset(void **state)
{
	struct run r = { .role = ROLE_RULESET, .unpriv = true,
			 .stderr_fd = -1 };

	(void)state;
	run_table(child_probes, NPROBES(child_probes), &r, "unprivileged");
}

static long a_nothing(void)
{
	return 0;
}

static void test_unpriv_skipped(void **state)
{
	static const struct probe p = { .name = "nothing", .role = ROLE_FRONT,
					.expect = EXIT0, .fn = a_nothing };
	struct run r = { .role = ROLE_FRONT, .unpriv = true, .stderr_fd = -1 };
	struct outcome o;

	(void)state;
	if (!g_root)
		skip();
	run_probe(&r, &p, &o);
	assert_true(o.have_report);
	assert_int_equal(o.rep.rc, 0);
	print_message("  front, not root: skipped: %s\n", o.rep.skipped);
	assert_non_null(strstr(o.rep.skipped, "user switch"));
	assert_non_null(strstr(o.rep.skipped, "bounding set"));
	assert_false(o.rep.state & SANDBOX_USER);
	assert_true(o.rep.state & SANDBOX_SECCOMP);
	assert_true(o.rep.state & SANDBOX_NNP);
	assert_true(o.rep.state & SANDBOX_CAPS);
	assert_true(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);

	r.role = ROLE_RULESET;
	run_probe(&r, &p, &o);
	assert_true(o.have_report);
	assert_int_equal(o.rep.rc, 0);
	print_message("  ruleset, not root: skipped: %s\n", o.rep.skipped);
	assert_non_null(strstr(o.rep.skipped, "netns (no CAP_SYS_ADMIN)"));
	assert_non_null(strstr(o.rep.skipped, "chroot (no CAP_SYS_CHROOT)"));
	assert_false(o.rep.state & (SANDBOX_CHROOT | SANDBOX_NETNS));
	assert_true(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);
}

/* ---- 2: the child's state as the kernel shows it ---- */

static bool status_field(const char *status, const char *key, char *out,
			 size_t cap)
{
	const char *p = status;
	size_t klen = strlen(key);

	while (p != NULL && *p != '\0') {
		if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
			const char *v = p + klen + 1, *e;

			while (*v == ' ' || *v == '\t')
				v++;
			e = strchr(v, '\n');
			if (e == NULL)
				e = v + strlen(v);
			size_t len = (size_t)(e - v);

			if (len >= cap)
				len = cap - 1;
			memcpy(out, v, len);
			out[len] = '\0';
			return true;
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return false;
}

static void read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n;

	assert_true(fd >= 0);
	n = read_full(fd, buf, cap - 1);
	buf[n] = '\0';
	close(fd);
}

static void expect_field(const char *status, const char *key,
			 const char *want)
{
	char v[128];

	assert_true(status_field(status, key, v, sizeof(v)));
	if (strcmp(v, want) != 0)
		print_error("%s: '%s', want '%s'\n", key, v, want);
	assert_string_equal(v, want);
}

static void check_state(enum role role)
{
	int rep[2], go[2];
	pid_t pid;
	struct report out;
	char path[64], buf[4096], link[PATH_MAX];
	struct stat mine, theirs;
	ssize_t n;
	int st;
	unsigned want;

	assert_int_equal(pipe2(rep, O_CLOEXEC), 0);
	assert_int_equal(pipe2(go, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sandbox_conf c;
		struct run r = { .role = role, .stderr_fd = -1 };
		char b;

		close(rep[0]);
		close(go[1]);
#ifdef NEOSOCKSD_SANITIZE
		sandbox_set_sanitizer_extras(false);
#endif
		sbx_conf(&c, &r);
		memset(&out, 0, sizeof(out));
		out.rc = sandbox_apply(&c, out.skipped, sizeof(out.skipped),
				       out.err, sizeof(out.err));
		out.state = sandbox_state();
		write_all(rep[1], &out, sizeof(out));
		/* wait for the test to look at us, then go */
		_exit(read(go[0], &b, 1) == 0 ? 0 : 1);
	}
	close(rep[1]);
	close(go[0]);
	assert_int_equal(read_full(rep[0], &out, sizeof(out)), sizeof(out));
	if (out.rc != 0)
		print_error("sandbox_apply: %s\n", out.err);
	assert_int_equal(out.rc, 0);
	print_message("  %s: skipped: '%s'\n", role_str(role), out.skipped);

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	read_file(path, buf, sizeof(buf));
	expect_field(buf, "Uid", "65534\t65534\t65534\t65534");
	expect_field(buf, "Gid", "65534\t65534\t65534\t65534");
	expect_field(buf, "Groups", "");
	expect_field(buf, "CapInh", "0000000000000000");
	expect_field(buf, "CapPrm", "0000000000000000");
	expect_field(buf, "CapEff", "0000000000000000");
	expect_field(buf, "CapBnd", "0000000000000000");
	expect_field(buf, "CapAmb", "0000000000000000");
	expect_field(buf, "NoNewPrivs", "1");
	expect_field(buf, "Seccomp", "2");
	/* one more than the test itself runs under (0 outside containers) */
	{
		char own[4096], nf[32], want_n[32];

		read_file("/proc/self/status", own, sizeof(own));
		assert_true(status_field(own, "Seccomp_filters", nf, sizeof(nf)));
		snprintf(want_n, sizeof(want_n), "%d", atoi(nf) + 1);
		expect_field(buf, "Seccomp_filters", want_n);
	}

	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	read_file(path, buf, sizeof(buf));
	assert_non_null(strstr(buf, "Max processes             0"));
	assert_non_null(strstr(buf, "Max file size             0"));
	assert_non_null(strstr(buf, "Max core file size        0"));

	snprintf(path, sizeof(path), "/proc/%d/root", (int)pid);
	n = readlink(path, link, sizeof(link) - 1);
	assert_true(n > 0);
	link[n] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	assert_int_equal(stat(path, &theirs), 0);
	assert_int_equal(stat("/proc/self/ns/net", &mine), 0);

	want = SANDBOX_SECCOMP | SANDBOX_NNP | SANDBOX_CAPS | SANDBOX_USER |
	       SANDBOX_BOUNDING | SANDBOX_RLIMITS;
	if (syscall(SYS_landlock_create_ruleset, NULL, 0, 1) >= 1)
		want |= SANDBOX_LANDLOCK;
	if (role == ROLE_RULESET) {
		want |= SANDBOX_CHROOT | SANDBOX_NETNS;
		assert_string_equal(link, g_jail);
		assert_true(theirs.st_ino != mine.st_ino);
	} else {
		assert_string_equal(link, "/");
		assert_true(theirs.st_ino == mine.st_ino);
	}
	assert_int_equal(out.state & ~SANDBOX_DEBUG, want);
	assert_string_equal(out.skipped, "");

	close(go[1]); /* EOF: the child exits */
	close(rep[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_state_front(void **state)
{
	(void)state;
	if (!g_root)
		skip();
	check_state(ROLE_FRONT);
}

static void test_state_ruleset(void **state)
{
	(void)state;
	if (!g_root)
		skip();
	check_state(ROLE_RULESET);
}

/* ---- 3: debug mode reports and returns ENOSYS ---- */

static long d_open_twice(void)
{
	long a = syscall(SYS_openat, AT_FDCWD, "/etc/passwd", O_RDONLY);
	int ea = errno;
	long b = syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
	int eb = errno;

	if (!(sandbox_state() & SANDBOX_DEBUG))
		return -100;
	return a == -1 && ea == ENOSYS && b == -1 && eb == ENOSYS ? 0 : -1;
}

static void check_debug(bool via_env)
{
	static const struct probe p = { .name = "debug", .role = ROLE_FRONT,
					.expect = EXIT0, .fn = d_open_twice };
	struct run r = { .role = ROLE_FRONT, .debug = !via_env,
			 .env_debug = via_env };
	struct outcome o;
	char text[1024];
	int ep[2];
	size_t n;

	assert_int_equal(pipe2(ep, O_CLOEXEC), 0);
	r.stderr_fd = ep[1];
	run_probe(&r, &p, &o);
	close(ep[1]);
	n = read_full(ep[0], text, sizeof(text) - 1);
	text[n] = '\0';
	close(ep[0]);
	print_message("  debug output%s:\n%s", via_env ? " (env)" : "", text);
	assert_true(o.have_report && o.rep.rc == 0);
	assert_true(o.have_value);
	assert_int_equal(o.value, 0);
	assert_true(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);
	assert_non_null(strstr(text, "sandbox: front: forbidden syscall 257 "
				     "(openat)\n"));
	assert_non_null(strstr(text, "sandbox: front: forbidden syscall 41 "
				     "(socket)\n"));
}

static void test_debug(void **state)
{
	(void)state;
	if (!g_root)
		skip();
	check_debug(false);
	check_debug(true);
}

/* ---- 4: the parent's filter ---- */


static void test_parent(void **state)
{
	struct run r = { .role = ROLE_PARENT, .stderr_fd = -1 };

	(void)state;
	run_table(parent_probes, NPROBES(parent_probes), &r, "release policy");
}

static void test_parent_fork_children(void **state);

/* A child exec'd under the parent's filter (as the daemon's children are)
 * sets up its own sandbox and exits normally, letting LeakSanitizer run in
 * sanitizer builds. "leak" makes it leak on purpose: LSan must find it
 * (exit 23), which proves the leak check worked inside the sandbox. */
static long pa_exec_child(const char *role, const char *leak)
{
	char lfd[16];
	char *argv[] = { (char *)"test_sandbox", (char *)"--child", (char *)role,
			 g_jail, (char *)leak, lfd, NULL };

	snprintf(lfd, sizeof(lfd), "%d", g_listener);
	return spawn_wait(g_self, argv, NULL, 0);
}

static long pa_exec_front(void)
{
	return pa_exec_child("front", "noleak");
}

static long pa_exec_ruleset(void)
{
	return pa_exec_child("ruleset", "noleak");
}

static long pa_exec_front_leak(void)
{
#ifdef NEOSOCKSD_SANITIZE
	static char text[16384];
	char lfd[16];
	char *argv[] = { (char *)"test_sandbox", (char *)"--child",
			 (char *)"front", g_jail, (char *)"leak", lfd, NULL };
	int r;

	snprintf(lfd, sizeof(lfd), "%d", g_listener);
	r = spawn_wait(g_self, argv, text, sizeof(text));

	if (strstr(text, "LeakSanitizer: detected memory leaks") == NULL ||
	    strstr(text, "1048576 byte(s) leaked") == NULL ||
	    strstr(text, "fatal error") != NULL) {
		(void)!write(2, text, strlen(text));
		return r == 0 ? -1 : r;
	}
	return 0;
#else
	return 0;
#endif
}

/* The same without exec, with the release tables: a forked child of the
 * sandboxed parent raises its effective set from the permitted one (as
 * exec would as root), applies its role and makes every allowed call. */
static void raise_effective(void)
{
	cap_t c = cap_get_proc();

	for (int i = 0; c != NULL && i < (int)cap_max_bits(); i++) {
		cap_value_t v = i;
		cap_flag_value_t f = CAP_CLEAR;

		if (cap_get_flag(c, v, CAP_PERMITTED, &f) == 0 && f == CAP_SET)
			cap_set_flag(c, CAP_EFFECTIVE, 1, &v, CAP_SET);
	}
	if (c == NULL || cap_set_proc(c) < 0)
		_exit(110);
	cap_free(c);
}

static long pa_fork_child(enum role role)
{
	struct run r = { .role = role, .stderr_fd = -1 };
	struct sandbox_conf c;
	char skipped[256], err[256];
	int st;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		raise_effective();
		pre_sockets();
		sbx_conf(&c, &r);
		if (sandbox_apply(&c, skipped, sizeof(skipped), err,
				  sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			_exit(111);
		}
		_exit(run_allowed(role, false) == 0 ? 0 : 112);
	}
	if (waitpid(pid, &st, 0) != pid)
		return -2;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 500 + WTERMSIG(st);
}

static long pa_fork_front(void)
{
	return pa_fork_child(ROLE_FRONT);
}

static long pa_fork_ruleset(void)
{
	return pa_fork_child(ROLE_RULESET);
}

static const struct probe fork_probes[] = {
	ALLOW("front's allowed calls under the parent filter (fork)",
	      ROLE_PARENT, pre_listener, pa_fork_front),
	ALLOW("ruleset's allowed calls under the parent filter (fork)",
	      ROLE_PARENT, pre_listener, pa_fork_ruleset),
};

static const struct probe exec_probes[] = {
	ALLOW("exec front under the parent filter", ROLE_PARENT, pre_listener,
	      pa_exec_front),
	ALLOW("exec ruleset under the parent filter", ROLE_PARENT,
	      pre_listener, pa_exec_ruleset),
	ALLOW("exec front, leak found by LSan", ROLE_PARENT, pre_listener,
	      pa_exec_front_leak),
};

static void test_parent_fork_children(void **state)
{
	struct run r = { .role = ROLE_PARENT, .stderr_fd = -1 };

	(void)state;
	run_table(fork_probes, NPROBES(fork_probes), &r, "release policy");
}

static void test_parent_exec_children(void **state)
{
	struct run r = { .role = ROLE_PARENT, .extras = true,
			 .stderr_fd = -1 };

	(void)state;
	run_table(exec_probes, NPROBES(exec_probes), &r, "as built");
}

/* The exec'd child (see pa_exec_child): it sets up like the daemon's
 * child, then makes every allowed call of its role. Exit 0: all good. */
static int child_mode(int argc, char **argv)
{
	struct sandbox_conf c = { .uid = NOBODY, .gid = NOBODY,
				  .drop_user = true };
	char skipped[256], err[256];
	char *p;
	int bad;

	if (argc < 6)
		return 10;
	g_listener = atoi(argv[5]); /* the test parent's, kept across exec */
	c.role = strcmp(argv[2], "ruleset") == 0 ? ROLE_RULESET : ROLE_FRONT;
	if (c.role == ROLE_RULESET) {
		c.jail = argv[3];
		c.netns = true;
	}
	pre_sockets();
	if (sandbox_apply(&c, skipped, sizeof(skipped), err, sizeof(err)) < 0) {
		fprintf(stderr, "child %s: %s\n", argv[2], err);
		return 11;
	}
	if (skipped[0] != '\0') {
		fprintf(stderr, "child %s: skipped %s\n", argv[2], skipped);
		return 12;
	}
	bad = run_allowed(c.role, true);
	if (bad != 0)
		return 20 + bad;
	p = malloc(1 << 20);
	if (p == NULL)
		return 13;
	memset(p, 2, 1 << 20);
	if (strcmp(argv[4], "leak") == 0)
		// cppcheck-suppress memleak
		p = NULL; /* LSan must report this block */
	free(p);
	return 0;
}

/* ---- sandbox_dump, bad configurations ---- */

static void test_dump(void **state)
{
	char path[] = "/tmp/sbxdump.XXXXXX";
	int fd = mkstemp(path);
	char *buf = malloc(1 << 20);
	size_t n;

	(void)state;
	assert_true(fd >= 0 && buf != NULL);
#ifdef NEOSOCKSD_SANITIZE
	sandbox_set_sanitizer_extras(false); /* the release filters */
#endif
	unlink(path);
	assert_int_equal(sandbox_dump(ROLE_FRONT, fd), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	n = read_full(fd, buf, (1 << 20) - 1);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "# default action\n  action KILL_PROCESS;"));
	assert_non_null(strstr(buf, "# invalid architecture action\n"
				    "action KILL_PROCESS;"));
	assert_non_null(strstr(buf, "\"socket\""));
	assert_null(strstr(buf, "\"openat\""));
	close(fd);

	snprintf(path, sizeof(path), "/tmp/sbxdump.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(sandbox_dump(ROLE_RULESET, fd), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	n = read_full(fd, buf, (1 << 20) - 1);
	buf[n] = '\0';
	assert_null(strstr(buf, "\"socket\""));
	assert_null(strstr(buf, "\"connect\""));
	assert_non_null(strstr(buf, "\"accept4\""));
	close(fd);
	free(buf);
#ifdef NEOSOCKSD_SANITIZE
	sandbox_set_sanitizer_extras(true);
#endif
	assert_int_equal(sandbox_dump(ROLE_COUNT, -1), -1);
}

static void expect_refused(const struct sandbox_conf *c, const char *what)
{
	int pp[2], st;
	pid_t pid;
	struct report out;

	assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		memset(&out, 0, sizeof(out));
		out.rc = sandbox_apply(c, out.skipped, sizeof(out.skipped),
				       out.err, sizeof(out.err));
		write_all(pp[1], &out, sizeof(out));
		_exit(0);
	}
	close(pp[1]);
	assert_int_equal(read_full(pp[0], &out, sizeof(out)), sizeof(out));
	close(pp[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	print_message("  refused (%s): %s\n", what, out.err);
	assert_int_equal(out.rc, -1);
	assert_non_null(strstr(out.err, what));
}

static void test_bad_conf(void **state)
{
	struct sandbox_conf c;
	char dir[] = "/tmp/sbxbad.XXXXXX", file[PATH_MAX];
	int fd;

	(void)state;
	if (!g_root)
		skip();
	memset(&c, 0, sizeof(c));
	c.role = ROLE_FRONT;
	c.drop_user = true;
	expect_refused(&c, "uid/gid 0");

	c.uid = c.gid = NOBODY;
	c.netns = true;
	expect_refused(&c, "ruleset only");

	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0777), 0);
	c.role = ROLE_RULESET;
	c.jail = dir;
	expect_refused(&c, "not writable by group or others");
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(file, sizeof(file), "%s/x", dir);
	fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	expect_refused(&c, "not empty");
	unlink(file);
	rmdir(dir);

	memset(&c, 0, sizeof(c));
	c.role = ROLE_PARENT;
	c.parent_keep_eff = CAPBIT(C_SETUID);
	expect_refused(&c, "within parent_keep_prm");
}

/* ---- docs: the allowlists as markdown ---- */

static void print_rows(const struct sandbox_rule *r, size_t n, FILE *f)
{
	for (size_t i = 0; i < n;) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE,
							       r[i].nr);
		size_t j = i;

		fprintf(f, "| `%s` | ", name != NULL ? name : "?");
		free(name);
		for (; j < n && r[j].nr == r[i].nr; j++) {
			if (j > i)
				fputs("; ", f);
			if (r[j].errno_ret != 0)
				fprintf(f, "fails with %s: ",
					strerrorname_np(r[j].errno_ret));
			fputs(r[j].note != NULL    ? r[j].note
			      : r[j].ncmp == 0 ? "any arguments"
					       : "filtered",
			      f);
		}
		fputs(" |\n", f);
		i = j;
	}
}

static void policy_markdown(FILE *f)
{
	static const enum role roles[] = { ROLE_FRONT, ROLE_RULESET,
					   ROLE_PARENT };

	for (size_t k = 0; k < sizeof(roles) / sizeof(roles[0]); k++) {
		const struct sandbox_policy *p = sandbox_policy_get(roles[k]);

		fprintf(f, "\n#### %s (%zu rows)\n\n", p->name, p->nrules);
		if (p->includes != 0) {
			const char *sep = "";

			fputs("Plus every row of ", f);
			for (int r = 0; r < ROLE_COUNT; r++)
				if (p->includes & (1u << r)) {
					fprintf(f, "%s%s", sep,
						role_str((enum role)r));
					sep = " and ";
				}
			fputs(" (a child runs under this filter too).\n\n", f);
		}
		fputs("| syscall | allowed when |\n|---|---|\n", f);
		print_rows(p->rules, p->nrules, f);
		if (p->nextras > 0) {
			fprintf(f, "\nSanitizer builds add (%zu rows):\n\n"
				"| syscall | allowed when |\n|---|---|\n",
				p->nextras);
			print_rows(p->extras, p->nextras, f);
		}
	}
}

/* docs/sandbox.md ends with these tables: keep it true (run from the top
 * of the tree, as make does; skipped elsewhere). */
static void test_docs_match(void **state)
{
	char *doc = NULL, *gen = NULL;
	size_t doclen = 0, genlen = 0;
	FILE *f = fopen("docs/sandbox.md", "r");
	FILE *g;

	(void)state;
	if (f == NULL) {
		print_message("  docs/sandbox.md not found from here: "
			      "skipped\n");
		skip();
	}
	g = open_memstream(&gen, &genlen);
	assert_non_null(g);
	policy_markdown(g);
	fclose(g);
	doc = malloc(1 << 20);
	assert_non_null(doc);
	doclen = fread(doc, 1, (1 << 20) - 1, f);
	doc[doclen] = '\0';
	fclose(f);
	if (strstr(doc, gen) == NULL)
		print_error("docs/sandbox.md does not end with the current "
			    "tables: regenerate them with "
			    "build/unit/test_sandbox --policy-markdown\n");
	assert_non_null(strstr(doc, gen));
	free(doc);
	free(gen);
}

static int setup_jail(void)
{
	snprintf(g_jail, sizeof(g_jail), "/tmp/sbxjail.XXXXXX");
	if (mkdtemp(g_jail) == NULL || chmod(g_jail, 0755) < 0)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dump),
		cmocka_unit_test(test_docs_match),
		cmocka_unit_test(test_table_front),
		cmocka_unit_test(test_table_ruleset),
		cmocka_unit_test(test_state_front),
		cmocka_unit_test(test_state_ruleset),
		cmocka_unit_test(test_debug),
		cmocka_unit_test(test_parent),
		cmocka_unit_test(test_parent_fork_children),
		cmocka_unit_test(test_parent_exec_children),
		cmocka_unit_test(test_unpriv_skipped),
		cmocka_unit_test(test_unpriv_front),
		cmocka_unit_test(test_unpriv_ruleset),
		cmocka_unit_test(test_bad_conf),
	};
	ssize_t n;
	int rc;

	if (argc >= 2 && strcmp(argv[1], "--child") == 0)
		return child_mode(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "--policy-markdown") == 0) {
		policy_markdown(stdout);
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "--dump") == 0)
		return sandbox_dump(strcmp(argv[2], "parent") == 0 ? ROLE_PARENT
				    : strcmp(argv[2], "ruleset") == 0
					    ? ROLE_RULESET
					    : ROLE_FRONT,
				    1) == 0
			       ? 0
			       : 1;

	g_root = geteuid() == 0;
	if (!g_root)
		printf("test_sandbox: SKIPPING the sandbox tests: they must run "
		       "as root (uid switch, chroot, network namespace)\n");
	n = readlink("/proc/self/exe", g_self, sizeof(g_self) - 1);
	if (n <= 0) {
		fprintf(stderr, "test_sandbox: /proc/self/exe: %s\n",
			strerror(errno));
		return 1;
	}
	g_self[n] = '\0';
	if (g_root && setup_jail() < 0) {
		fprintf(stderr, "test_sandbox: jail: %s\n", strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	if (g_jail[0] != '\0')
		rmdir(g_jail);
	return rc;
}
