/* log: levelled log lines on a file descriptor, never blocking a child.
 *
 * Line format: "<L> <time> <role>[<pid>] <file>:<line> <message>\n", with
 * L one of F E W N I D V V (levels 1..8). When the descriptor is the
 * journal's stream ($JOURNAL_STREAM names it: systemd's StandardError=
 * journal), "<P><L> <role>[<pid>] ...": P is the syslog priority that
 * journald reads (2 crit for F, 3 err, 4 warning, 5 notice, 6 info, 7
 * debug) and the time is journald's own. Children log into a pipe whose
 * write end is non-blocking: when it is full the line is dropped and
 * counted; the count is reported on the next line that gets through. The
 * parent never waits on its sink either: a socket gets MSG_DONTWAIT, a
 * pipe or terminal is written through a non-blocking open of its own, and
 * syslog through a non-blocking socket. */
#ifndef NEOSOCKSD_LOG_H
#define NEOSOCKSD_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level {
	LOGL_SILENT = 0,
	LOGL_FATAL = 1,
	LOGL_ERROR = 2,
	LOGL_WARN = 3,
	LOGL_NOTICE = 4,
	LOGL_INFO = 5,
	LOGL_DEBUG = 6,
	LOGL_VERBOSE = 7,
	LOGL_VVERBOSE = 8,
};

extern int log_level;

/* role: "main", "front", "ruleset"; fd: where lines go. nonblock: set
 * O_NONBLOCK on fd (only for a pipe owned by this process). */
void log_init(const char *role, int fd, bool nonblock);
void log_set_fd(int fd, bool nonblock);
/* The file behind the log's descriptor was replaced (-d: dup2 of
 * /dev/null): write to it as it is now. Makes no system call but close,
 * so it is safe under the parent's seccomp filter. */
void log_fd_replaced(void);
int log_get_fd(void);
void log_write(int level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The parent forwards one line a child wrote into its log pipe (len bytes
 * without the '\n', at most LOG_FORWARD_MAX) as "<L> <time> <role>[<pid>]
 * <text>": the prefix is the parent's own (its clock, the child's role and
 * pid as the parent knows them). When the line starts with the child's own
 * well-formed prefix naming that same role and pid, its level letter is
 * kept and the rest of that prefix replaced; any other line (a sanitizer
 * report, a forged prefix) is level E and kept whole, as text. Bytes
 * outside printable ASCII, and '\\', are written as \xNN (\\). */
#define LOG_FORWARD_MAX 4096
void log_forward_child(const char *role, int pid, const char *line,
		       size_t len);
/* How many of an escaped line's first len bytes fit in room without
 * cutting an escape (\xNN, \\) in two: room, or up to 3 bytes less.
 * Lines longer than syslog's 2,200 bytes are cut here. */
size_t log_fit_escaped(const char *msg, size_t len, size_t room);
/* Send this process's lines (and forwarded ones) to syslog instead. */
void log_use_syslog(void);
/* Lines go to journald's stream (with priority prefixes). */
bool log_to_journal(void);
/* -C: write only fatal lines, each as "neosocksd: <message>" on stderr
 * (the check's verdict); drop every other line and the children's. */
void log_set_verdict(bool on);
/* Lines dropped because the sink was full, since start. */
uint64_t log_dropped(void);

#define LOG_AT(lvl, ...)                                                 \
	do {                                                             \
		if (log_level >= (lvl))                                  \
			log_write((lvl), __FILE_NAME__, __LINE__,         \
				  __VA_ARGS__);                          \
	} while (0)

#define LOGF(...) LOG_AT(LOGL_FATAL, __VA_ARGS__)
#define LOGE(...) LOG_AT(LOGL_ERROR, __VA_ARGS__)
#define LOGW(...) LOG_AT(LOGL_WARN, __VA_ARGS__)
#define LOGN(...) LOG_AT(LOGL_NOTICE, __VA_ARGS__)
#define LOGI(...) LOG_AT(LOGL_INFO, __VA_ARGS__)
#define LOGD(...) LOG_AT(LOGL_DEBUG, __VA_ARGS__)
#define LOGV(...) LOG_AT(LOGL_VERBOSE, __VA_ARGS__)

/* Rate-limited logging: at most one line per `interval` seconds per call
 * site; the number suppressed meanwhile is appended to the next line. */
struct log_ratelimit {
	int64_t last_ms;
	uint32_t suppressed;
};
bool log_ratelimit_pass(struct log_ratelimit *rl, int interval_s,
			uint32_t *suppressed);

/* A token bucket: up to burst events at once, rate a second on average.
 * true: take one; false: over the rate (nothing taken). */
struct log_bucket {
	int64_t last_ms;
	int64_t milli; /* tokens x 1000 */
	bool primed;
};
bool log_bucket_take(struct log_bucket *b, unsigned rate, unsigned burst);

#define LOG_RL(lvl, interval, ...)                                       \
	do {                                                             \
		static struct log_ratelimit rl_;                         \
		uint32_t sup_;                                           \
		if (log_level >= (lvl) &&                                \
		    log_ratelimit_pass(&rl_, (interval), &sup_)) {       \
			log_write((lvl), __FILE_NAME__, __LINE__,         \
				  __VA_ARGS__);                          \
			if (sup_)                                        \
				log_write((lvl), __FILE_NAME__, __LINE__, \
					  "(%u similar lines suppressed)", \
					  sup_);                         \
		}                                                        \
	} while (0)

#endif
