/* daemon: -d (run in the background) and --pidfile.
 *
 * -d forks twice with a setsid() between, so the daemon is no session
 * leader and can never get a controlling terminal; it changes to /, and
 * its standard streams go to /dev/null. The process that was started
 * stays until the daemon is serving (both children READY) and exits 0,
 * or exits 1 when the daemon ends before that: a script that starts it
 * learns whether it runs. Paths given relative to the directory it was
 * started in are made absolute first, since SIGHUP and require() read
 * them again later.
 *
 * --pidfile is opened (never through a symlink) and locked before the
 * parent's sandbox, written when serving, and removed at exit if it is
 * still the file written. A pidfile locked by a running daemon stops the
 * start. */
#include "privsep/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"

static int daemon_ready_fd = -1; /* to the process that was started */
static int pid_dirfd = -1, pid_fd = -1;
static char pid_base[NAME_MAX + 1];
static struct stat pid_st;

/* dir/rel into path (cap bytes), when rel is relative. 0 or -1. */
static int daemon_abs(char *path, size_t cap, const char *cwd)
{
	char buf[PATH_MAX * 2];
	int n;

	if (path[0] == '\0' || path[0] == '/' || strcmp(path, "-") == 0)
		return 0;
	n = snprintf(buf, sizeof(buf), "%s/%s", cwd, path);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	memcpy(path, buf, (size_t)n + 1);
	return 0;
}

/* Each ':'-separated directory of --lua-path. */
static int daemon_abs_list(char *list, size_t cap, const char *cwd)
{
	char out[CONF_PATH_MAX] = "", item[CONF_PATH_MAX];
	const char *p = list;
	size_t off = 0;

	while (*p != '\0') {
		const char *colon = strchr(p, ':');
		size_t len = colon ? (size_t)(colon - p) : strlen(p);
		int n;

		if (len >= sizeof(item))
			return -1;
		memcpy(item, p, len);
		item[len] = '\0';
		if (daemon_abs(item, sizeof(item), cwd) < 0)
			return -1;
		n = snprintf(out + off, sizeof(out) - off, "%s%s",
			     off > 0 ? ":" : "", item);
		if (n < 0 || (size_t)n >= sizeof(out) - off)
			return -1;
		off += (size_t)n;
		p += len + (colon ? 1 : 0);
	}
	if (off >= cap)
		return -1;
	memcpy(list, out, off + 1);
	return 0;
}

int daemon_abs_paths(struct config *c, char *err, size_t errcap)
{
	char cwd[PATH_MAX];
	struct {
		char *p;
		size_t cap;
		const char *opt;
	} paths[] = {
		{ c->ruleset, sizeof(c->ruleset), "-r" },
		{ c->config_file, sizeof(c->config_file), "-c" },
		{ c->api_token_file, sizeof(c->api_token_file),
		  "--api-token-file" },
		{ c->api_ro_token_file, sizeof(c->api_ro_token_file),
		  "--api-readonly-token-file" },
		{ c->pidfile, sizeof(c->pidfile), "--pidfile" },
	};

	if (getcwd(cwd, sizeof(cwd)) == NULL) {
		snprintf(err, errcap, "-d: getcwd: %s", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (daemon_abs(paths[i].p, paths[i].cap, cwd) < 0) {
			snprintf(err, errcap,
				 "-d: %s: the path made absolute is too long",
				 paths[i].opt);
			return -1;
		}
	}
	if (daemon_abs_list(c->lua_path, sizeof(c->lua_path), cwd) < 0) {
		snprintf(err, errcap,
			 "-d: --lua-path: the paths made absolute are too long");
		return -1;
	}
	return 0;
}

static void daemon_stdio_null(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return;
	(void)dup2(fd, STDIN_FILENO);
	(void)dup2(fd, STDOUT_FILENO);
	(void)dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
}

/* The process that was started: wait for the daemon's word. */
static void daemon_wait_ready(pid_t first, int rfd)
{
	char b = 0;
	ssize_t n;

	(void)waitpid(first, NULL, 0);
	do {
		n = read(rfd, &b, 1);
	} while (n < 0 && errno == EINTR);
	if (n == 1 && b == 'R')
		_exit(0);
	fprintf(stderr, "neosocksd: the daemon stopped before it was "
			"serving (see its log)\n");
	_exit(1);
}

int daemon_start(bool use_syslog, pid_t kill_in_original)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		LOGF("-d: pipe: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		LOGF("-d: fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid > 0) {
		close(p[1]);
		/* a child of the original (the ruleset process that read a
		 * config file saying daemonize): the daemon starts its own */
		if (kill_in_original > 0)
			kill(kill_in_original, SIGKILL);
		daemon_wait_ready(pid, p[0]);
	}
	close(p[0]);
	if (setsid() < 0)
		_exit(1);
	pid = fork();
	if (pid < 0)
		_exit(1);
	if (pid > 0)
		_exit(0); /* the daemon is not a session leader */
	if (chdir("/") < 0)
		_exit(1);
	daemon_stdio_null();
	log_fd_replaced(); /* --log stderr: to /dev/null now */
	if (use_syslog)
		log_use_syslog();
	daemon_ready_fd = p[1];
	LOGN("running in the background (pid %d)", (int)getpid());
	return 0;
}

void daemon_ready(void)
{
	if (daemon_ready_fd < 0)
		return;
	(void)!write(daemon_ready_fd, "R", 1);
	close(daemon_ready_fd);
	daemon_ready_fd = -1;
}

int daemon_pidfile_open(const char *path)
{
	char dir[CONF_PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t dlen = slash == NULL ? 1 : (size_t)(slash - path);

	if (path[0] == '\0')
		return 0;
	if (slash == NULL) {
		strcpy(dir, ".");
	} else if (dlen == 0) {
		strcpy(dir, "/");
	} else {
		if (dlen >= sizeof(dir))
			return -1;
		memcpy(dir, path, dlen);
		dir[dlen] = '\0';
	}
	if (snprintf(pid_base, sizeof(pid_base), "%s",
		     slash ? slash + 1 : path) >= (int)sizeof(pid_base) ||
	    pid_base[0] == '\0') {
		LOGF("--pidfile %s: not a file name", path);
		return -1;
	}
	pid_dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pid_dirfd < 0) {
		LOGF("--pidfile %s: %s: %s", path, dir, strerror(errno));
		return -1;
	}
	pid_fd = openat(pid_dirfd, pid_base,
			O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
				O_CLOEXEC,
			0644);
	if (pid_fd < 0 || fstat(pid_fd, &pid_st) < 0 ||
	    !S_ISREG(pid_st.st_mode)) {
		LOGF("--pidfile %s: %s", path,
		     pid_fd < 0 ? strerror(errno) : "not a regular file");
		if (pid_fd >= 0)
			close(pid_fd);
		pid_fd = -1; /* not ours: never removed */
		return -1;
	}
	if (flock(pid_fd, LOCK_EX | LOCK_NB) < 0) {
		LOGF("--pidfile %s: %s", path,
		     errno == EWOULDBLOCK ? "locked by another running daemon"
					  : strerror(errno));
		close(pid_fd);
		pid_fd = -1; /* not ours: never removed */
		return -1;
	}
	if (ftruncate(pid_fd, 0) < 0) {
		LOGF("--pidfile %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int daemon_pidfile_dirfd(void)
{
	return pid_fd >= 0 ? pid_dirfd : -1;
}

void daemon_pidfile_write(void)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());

	if (pid_fd >= 0 && pwrite(pid_fd, buf, (size_t)n, 0) != n)
		LOGE("--pidfile: write: %s", strerror(errno));
}

void daemon_pidfile_remove(void)
{
	struct stat st;

	if (pid_fd < 0)
		return;
	/* only the file this daemon wrote, not one put there since */
	if (fstatat(pid_dirfd, pid_base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    st.st_dev == pid_st.st_dev && st.st_ino == pid_st.st_ino &&
	    unlinkat(pid_dirfd, pid_base, 0) < 0)
		LOGE("--pidfile: remove: %s", strerror(errno));
	close(pid_fd);
	pid_fd = -1;
}
