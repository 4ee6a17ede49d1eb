#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common/monotime.h"

int log_level = LOGL_NOTICE;

static int log_fd = 2;
/* the parent's own non-blocking open of the pipe or terminal log_fd is
 * (a file description of its own, so the flag is not the shell's), or -1 */
static int log_wfd = -1;
static bool log_cut; /* a line went out in part: its '\n' is owed */
static bool log_nonblock;
static bool log_is_socket;
static char log_role[16] = "main";
static bool log_syslog;
static int log_syslog_fd = -1; /* to /dev/log, non-blocking */
static bool log_journal; /* the fd is journald's stream: "<P>", no time */
static bool log_verdict; /* -C: fatal lines only, as "neosocksd: ..." */
static uint64_t log_ndropped;
static uint64_t log_ndropped_reported;

static const char log_letters[] = "-FEWNIDVV";

/* Is fd the stream systemd connected to journald ($JOURNAL_STREAM is
 * "device:inode" of it)? */
static bool log_fd_is_journal(int fd)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	if (js == NULL || fd < 0 ||
	    sscanf(js, "%llu:%llu%c", &dev, &ino, &tail) != 2 ||
	    fstat(fd, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

/* A pipe or terminal that fd writes to, opened again without blocking
 * (through /proc/self/fd: a file description of this process's own, so
 * the shell or supervisor sharing fd's keeps its flags); -1 for anything
 * else (a regular file, /dev/null, a socket) or when it cannot be. */
static int log_open_nonblocking(int fd)
{
	char path[32];
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0 ||
	    !(S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)))
		return -1;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
}

void log_fd_replaced(void)
{
	if (log_wfd >= 0)
		close(log_wfd);
	log_wfd = -1;
	log_cut = false;
}

void log_set_fd(int fd, bool nonblock)
{
	int type;
	socklen_t len = sizeof(type);

	log_fd_replaced();
	log_fd = fd;
	log_nonblock = nonblock;
	log_is_socket = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
	/* only the parent writes to the real stderr; a child's fd 2 is its
	 * pipe to the parent, which adds the prefixes */
	log_journal = strcmp(log_role, "main") == 0 && log_fd_is_journal(fd);
	if (nonblock) {
		int fl = fcntl(fd, F_GETFL);
		if (fl != -1)
			(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	} else if (!log_is_socket) {
		/* a full pipe (a stalled `| logger`, svlogd, s6-log) or a
		 * stopped terminal must not stop the parent either */
		log_wfd = log_open_nonblocking(fd);
	}
}

void log_init(const char *role, int fd, bool nonblock)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
	tzset();
	log_set_fd(fd, nonblock);
}

int log_get_fd(void)
{
	return log_fd;
}

uint64_t log_dropped(void)
{
	return log_ndropped;
}

static size_t log_timestamp(char *buf, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, cap, "%FT%T%z", &tm);
	/* +hhmm -> +hh:mm as RFC 3339 wants */
	if (n >= 5 && n + 1 < cap) {
		memmove(buf + n - 1, buf + n - 2, 3);
		buf[n - 2] = ':';
		n++;
	}
	return n;
}

bool log_to_journal(void)
{
	return log_journal && !log_syslog;
}

void log_set_verdict(bool on)
{
	log_verdict = on;
}

/* Our own /dev/log client, not syslog(3): glibc's send() blocks when the
 * syslog daemon does not read, and a log line must never stop the parent
 * (a line that does not fit is dropped and counted, as on a pipe). */
static void log_syslog_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX,
				  .sun_path = "/dev/log" };

	if (log_syslog_fd < 0)
		log_syslog_fd = socket(AF_UNIX,
				       SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
				       0);
	if (log_syslog_fd >= 0)
		(void)connect(log_syslog_fd, (struct sockaddr *)&sa,
			      sizeof(sa));
}

void log_use_syslog(void)
{
	log_syslog_connect();
	log_syslog = true;
}

static int log_syslog_prio(char letter)
{
	switch (letter) {
	case 'F':
		return LOG_CRIT;
	case 'E':
		return LOG_ERR;
	case 'W':
		return LOG_WARNING;
	case 'N':
		return LOG_NOTICE;
	case 'I':
		return LOG_INFO;
	default:
		return LOG_DEBUG;
	}
}

size_t log_fit_escaped(const char *msg, size_t len, size_t room)
{
	size_t i = 0;

	if (len <= room)
		return len;
	while (i < room) {
		size_t tok = 1;

		if (msg[i] == '\\')
			tok = i + 1 < len && msg[i + 1] == 'x' ? 4 : 2;
		if (i + tok > room)
			break;
		i += tok;
	}
	return i;
}

/* "<PRI>Mmm dd hh:mm:ss neosocksd[PID]: message" (what syslog(3) sends
 * to /dev/log), without waiting; once more after a reconnect when the
 * syslog daemon was restarted. */
static bool log_emit_syslog(int prio, const char *msg, size_t mlen)
{
	char line[2200];
	char ts[32];
	struct tm tm;
	time_t now = time(NULL);
	int n;

	localtime_r(&now, &tm);
	if (strftime(ts, sizeof(ts), "%b %e %T", &tm) == 0)
		ts[0] = '\0';
	n = snprintf(line, sizeof(line), "<%d>%s neosocksd[%d]: ",
		     LOG_DAEMON | prio, ts, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(line))
		return false;
	/* cut, as syslog(3) does, but never inside an escape */
	mlen = log_fit_escaped(msg, mlen, sizeof(line) - (size_t)n);
	memcpy(line + n, msg, mlen);
	n += (int)mlen;
	for (int attempt = 0; attempt < 2; attempt++) {
		ssize_t r = send(log_syslog_fd, line, (size_t)n,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (r == n)
			return true;
		if (r < 0 && errno != ECONNREFUSED && errno != ENOTCONN &&
		    errno != ECONNRESET)
			return false; /* EAGAIN: full; dropped and counted */
		log_syslog_connect();
	}
	return false;
}

/* One write per line: lines up to PIPE_BUF never interleave. Nothing
 * waits: sockets get MSG_DONTWAIT (a stalled journal), pipes and
 * terminals are written through log_wfd; a line that does not fit is
 * dropped, one that fits in part is ended by the next write's '\n'. */
static ssize_t log_write_fd(int fd, const char *buf, size_t len)
{
	ssize_t n;

	do {
		if (log_is_socket)
			n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		else
			n = write(fd, buf, len);
	} while (n < 0 && errno == EINTR);
	return n;
}

static bool log_emit(const char *buf, size_t len)
{
	int fd = log_wfd >= 0 ? log_wfd : log_fd;
	ssize_t n;

	if (log_syslog) {
		/* "<L> <time> " is syslog's own business */
		const char *msg = memchr(buf, ' ', len);
		if (msg != NULL)
			msg = memchr(msg + 1, ' ', len - (size_t)(msg + 1 - buf));
		if (msg == NULL || len == 0)
			return true;
		msg++;
		return log_emit_syslog(log_syslog_prio(buf[0]), msg,
				       len - (size_t)(msg - buf) -
					       (buf[len - 1] == '\n' ? 1 : 0));
	}
	if (log_fd < 0)
		return true; /* --log discard */
	if (log_cut) {
		if (log_write_fd(fd, "\n", 1) != 1)
			return false;
		log_cut = false;
	}
	n = log_write_fd(fd, buf, len);
	if (n > 0 && (size_t)n < len)
		log_cut = true;
	return n == (ssize_t)len;
}

/* "<L> <time>", or "<P><L>" for journald (it keeps its own time and reads
 * the priority P). The length written. */
static size_t log_head(char letter, char *buf, size_t cap)
{
	if (log_journal && !log_syslog) {
		int n = snprintf(buf, cap, "<%d>%c", log_syslog_prio(letter),
				 letter);
		return n > 0 && (size_t)n < cap ? (size_t)n : 0;
	}
	buf[0] = letter;
	buf[1] = ' ';
	return 2 + log_timestamp(buf + 2, cap - 2);
}

/* Before a line goes out (this process's own or one it forwards): the
 * lines dropped since the last report, if any, as a line of their own
 * at the same level. */
static void log_report_dropped(char letter)
{
	char buf[160];
	size_t n;
	int r;

	if (log_ndropped == log_ndropped_reported)
		return;
	n = log_head(letter, buf, 64);
	r = snprintf(buf + n, sizeof(buf) - n,
		     " %s[%d] log.c:0 (%llu log lines dropped)\n", log_role,
		     (int)getpid(),
		     (unsigned long long)(log_ndropped - log_ndropped_reported));
	if (r > 0 && (size_t)r < sizeof(buf) - n && log_emit(buf, n + (size_t)r))
		log_ndropped_reported = log_ndropped;
}

/* No control characters from messages reach the log stream or the
 * terminal: a tab becomes a space, any other one '?'. */
static void log_sanitize(char *buf, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c == '\t')
			buf[i] = ' ';
		else if (c < 0x20 || c == 0x7f)
			buf[i] = '?';
	}
}

/* -C: a fatal line is the verdict, "neosocksd: <message>", on stderr;
 * nothing else is written. */
static void __attribute__((format(printf, 2, 0)))
log_write_verdict(int level, const char *fmt, va_list ap)
{
	char buf[1024];
	int n;

	if (level > LOGL_FATAL)
		return;
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;
	log_sanitize(buf, 0, strlen(buf));
	fprintf(stderr, "neosocksd: %s\n", buf);
}

void log_write(int level, const char *file, int line, const char *fmt, ...)
{
	char buf[2048];
	size_t n, head;
	int r;
	va_list ap;
	int saved = errno;

	if (level < 0 || level > LOGL_VVERBOSE)
		level = LOGL_VVERBOSE;
	if (log_verdict) {
		va_start(ap, fmt);
		log_write_verdict(level, fmt, ap);
		va_end(ap);
		goto out;
	}
	log_report_dropped(log_letters[level]);
	n = head = log_head(log_letters[level], buf, 64);
	r = snprintf(buf + n, sizeof(buf) - n, " %s[%d] %s:%d ", log_role,
		     (int)getpid(), file, line);
	if (r < 0 || (size_t)r >= sizeof(buf) - n)
		goto out;
	n += (size_t)r;
	va_start(ap, fmt);
	r = vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	va_end(ap);
	if (r < 0)
		goto out;
	n += (size_t)r < sizeof(buf) - n - 1 ? (size_t)r : sizeof(buf) - n - 2;
	log_sanitize(buf, head, n);
	buf[n++] = '\n';
	if (!log_emit(buf, n))
		log_ndropped++;
out:
	errno = saved;
}

/* Append src escaped: printable ASCII as is, '\\' doubled, any other
 * byte as \xNN. Returns the new length (out has room for 4 x len). */
static size_t log_escape(char *out, size_t n, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c == '\\') {
			out[n++] = '\\';
			out[n++] = '\\';
		} else if (c >= 0x20 && c < 0x7f) {
			out[n++] = (char)c;
		} else {
			out[n++] = '\\';
			out[n++] = 'x';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		}
	}
	return n;
}

/* The length of "<L> <time> <role>[<pid>] " at the start of line when it
 * names this role and pid, else 0. */
static size_t log_child_prefix(const char *line, size_t len, const char *role,
			       int pid)
{
	char want[48];
	const char *sp;
	int w;

	if (len < 3 || memchr(log_letters + 1, line[0],
			      sizeof(log_letters) - 2) == NULL ||
	    line[1] != ' ')
		return 0;
	sp = memchr(line + 2, ' ', len - 2);
	if (sp == NULL || sp == line + 2)
		return 0;
	w = snprintf(want, sizeof(want), "%s[%d] ", role, pid);
	if (w <= 0 || (size_t)w >= sizeof(want))
		return 0;
	sp++;
	if ((size_t)(line + len - sp) < (size_t)w || memcmp(sp, want, (size_t)w))
		return 0;
	return (size_t)(sp - line) + (size_t)w;
}

void log_forward_child(const char *role, int pid, const char *line,
		       size_t len)
{
	char buf[64 + 48 + 4 * LOG_FORWARD_MAX + 1];
	size_t n, skip;
	char letter = 'E';
	int r;

	if (log_verdict)
		return; /* -C: the children's lines are not the verdict */
	if (len > LOG_FORWARD_MAX)
		len = LOG_FORWARD_MAX;
	skip = log_child_prefix(line, len, role, pid);
	if (skip > 0)
		letter = line[0];
	log_report_dropped(letter);
	n = log_head(letter, buf, 64);
	r = snprintf(buf + n, sizeof(buf) - n, " %s[%d] ", role, pid);
	if (r < 0 || (size_t)r >= 48)
		return;
	n += (size_t)r;
	n = log_escape(buf, n, line + skip, len - skip);
	buf[n++] = '\n';
	if (!log_emit(buf, n))
		log_ndropped++;
}

bool log_bucket_take(struct log_bucket *b, unsigned rate, unsigned burst)
{
	int64_t now = monotime_ms(), cap = (int64_t)burst * 1000;

	if (!b->primed) {
		b->primed = true;
		b->milli = cap;
	} else if (now > b->last_ms) {
		b->milli += (now - b->last_ms) * (int64_t)rate;
		if (b->milli > cap)
			b->milli = cap;
	}
	b->last_ms = now;
	if (b->milli < 1000)
		return false;
	b->milli -= 1000;
	return true;
}

bool log_ratelimit_pass(struct log_ratelimit *rl, int interval_s,
			uint32_t *suppressed)
{
	int64_t now = monotime_ms();
	if (rl->last_ms != 0 && now - rl->last_ms < (int64_t)interval_s * 1000) {
		rl->suppressed++;
		return false;
	}
	rl->last_ms = now;
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	return true;
}
