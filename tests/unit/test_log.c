/* Unit tests of the log's parts the parent uses on its children's output:
 * forwarding a child's line (attributed, escaped) and the token bucket. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

static int pipefd[2];

static int setup(void **state)
{
	(void)state;
	if (pipe(pipefd) < 0)
		return -1;
	log_init("main", pipefd[1], false);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	close(pipefd[0]);
	close(pipefd[1]);
	return 0;
}

/* Forward one line and return what reached the sink, after the time. */
static const char *forwarded(const char *role, int pid, const char *line,
			     size_t len)
{
	static char out[32768];
	const char *sp;
	ssize_t n;

	log_forward_child(role, pid, line, len);
	n = read(pipefd[0], out, sizeof(out) - 1);
	assert_true(n > 0);
	out[n] = '\0';
	assert_int_equal(out[n - 1], '\n');
	out[n - 1] = '\0';
	assert_int_equal(out[1], ' ');
	sp = strchr(out + 2, ' '); /* the parent's timestamp */
	assert_non_null(sp);
	/* "<L> " + the rest after the time */
	memmove(out + 2, sp + 1, strlen(sp + 1) + 1);
	return out;
}

static void test_own_prefix_replaced(void **state)
{
	const char *l = "W 2026-01-01T00:00:00+00:00 front[42] x.c:7 hello";

	(void)state;
	assert_string_equal(forwarded("front", 42, l, strlen(l)),
			    "W front[42] x.c:7 hello");
}

static void test_forged_prefix_is_text(void **state)
{
	const char *l = "E 2026-01-01T00:00:00+00:00 main[1] parent.c:1 x";
	const char *other = "I t front[43] y.c:1 z"; /* another pid */
	const char *unformatted = "==1==ERROR: AddressSanitizer: x";

	(void)state;
	assert_string_equal(forwarded("front", 42, l, strlen(l)),
			    "E front[42] E 2026-01-01T00:00:00+00:00 main[1] "
			    "parent.c:1 x");
	assert_string_equal(forwarded("front", 42, other, strlen(other)),
			    "E front[42] I t front[43] y.c:1 z");
	assert_string_equal(forwarded("ruleset", 9, unformatted,
				      strlen(unformatted)),
			    "E ruleset[9] ==1==ERROR: AddressSanitizer: x");
	/* a bad level letter, a missing time */
	assert_string_equal(forwarded("front", 42, "Z t front[42] a", 15),
			    "E front[42] Z t front[42] a");
	assert_string_equal(forwarded("front", 42, "I  front[42] a", 14),
			    "E front[42] I  front[42] a");
}

static void test_bytes_escaped(void **state)
{
	static const char l[] = "I t front[42] a\x1b[2J\x07\tb\\c\xff\x00z";

	(void)state;
	assert_string_equal(forwarded("front", 42, l, sizeof(l) - 1),
			    "I front[42] a\\x1b[2J\\x07\\x09b\\\\c\\xff\\x00z");
}

static void test_long_line_cut(void **state)
{
	static char l[LOG_FORWARD_MAX + 100];

	(void)state;
	memset(l, 'a', sizeof(l));
	assert_int_equal(strlen(forwarded("front", 42, l, sizeof(l))),
			 strlen("E front[42] ") + LOG_FORWARD_MAX);
}

/* Regression: a line cut for syslog (2,200 bytes) could end inside an
 * escape, "\x4" for "\x41"; the cut now falls before the escape. */
static void test_cut_never_splits_an_escape(void **state)
{
	static const char *s = "ab\\x41\\\\c";  /* a b \x41 \\ c */

	(void)state;
	assert_int_equal(log_fit_escaped(s, strlen(s), 64), strlen(s));
	assert_int_equal(log_fit_escaped(s, strlen(s), 2), 2);
	for (size_t room = 3; room < 6; room++) /* inside \x41 */
		assert_int_equal(log_fit_escaped(s, strlen(s), room), 2);
	assert_int_equal(log_fit_escaped(s, strlen(s), 6), 6);
	assert_int_equal(log_fit_escaped(s, strlen(s), 7), 6); /* inside \\ */
	assert_int_equal(log_fit_escaped(s, strlen(s), 8), 8);
	assert_int_equal(log_fit_escaped(s, strlen(s), 0), 0);
}

/* A forwarded line full of escapes, cut for syslog at any room, ends on a
 * whole escape. */
static void test_cut_of_a_forwarded_line_ends_whole(void **state)
{
	static char l[700];
	const char *line;
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(l); i++)
		l[i] = (char)(i % 3 ? 1 : 'a'); /* \x01 \x01 a ... */
	line = forwarded("front", 42, l, sizeof(l));
	len = strlen(line);
	for (size_t room = 0; room < len; room++) {
		size_t k = log_fit_escaped(line, len, room);
		size_t i = 0;

		assert_true(k <= room && k + 3 >= room);
		while (i < k) /* walks whole escapes up to exactly k */
			i += line[i] == '\\' ? (line[i + 1] == 'x' ? 4 : 2) : 1;
		assert_int_equal(i, k);
	}
}

/* Regression: the parent told the count of the lines its sink refused
 * only before a line of its own, never before one it forwarded from a
 * child (access lines: nearly all a busy daemon writes), so a stalled
 * syslog or journal lost lines without a word until the parent's next
 * own line. */
static void test_drop_count_comes_before_a_forwarded_line(void **state)
{
	static char out[1 << 17];
	const char *l = "I t front[42] x.c:1 hello";
	uint64_t before = log_dropped();
	int p[2];
	size_t n = 0;
	ssize_t r;
	char *nl;

	(void)state;
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	log_set_fd(p[1], true); /* a full pipe drops, as a child's does */
	for (int i = 0; i < 100000 && log_dropped() == before; i++)
		log_forward_child("front", 42, l, strlen(l));
	assert_int_equal(log_dropped(), before + 1);
	while (read(p[0], out, sizeof(out)) > 0 && n++ < 1000)
		; /* the sink reads again: all of it, then EAGAIN */
	log_forward_child("front", 42, l, strlen(l));
	r = read(p[0], out, sizeof(out) - 1);
	assert_true(r > 0);
	out[r] = '\0';
	nl = strchr(out, '\n');
	assert_non_null(nl);
	*nl = '\0';
	assert_non_null(strstr(out, " main["));
	assert_non_null(strstr(out, "(1 log lines dropped)"));
	assert_non_null(strstr(nl + 1, "front[42] x.c:1 hello\n"));
	log_set_fd(pipefd[1], false);
	close(p[0]);
	close(p[1]);
}

/* Regression: the parent (log_set_fd(fd, false): a descriptor it shares,
 * its stderr) wrote with a blocking write(), so a pipe whose reader
 * stalled stopped it in the middle of a line. It writes through a
 * non-blocking open of its own: the line is dropped and counted, the
 * shared descriptor keeps its flags. Before the fix the write blocks and
 * the alarm ends the test. */
static void test_parent_never_waits_on_a_full_pipe(void **state)
{
	static char out[1 << 16];
	const char *l = "I t front[42] x.c:1 hello";
	uint64_t before = log_dropped();
	int p[2], fl;
	ssize_t r;

	(void)state;
	assert_int_equal(pipe(p), 0);
	(void)fcntl(p[1], F_SETPIPE_SZ, 4096);
	alarm(30);
	log_set_fd(p[1], false);
	for (int i = 0; i < 100000 && log_dropped() == before; i++)
		log_forward_child("front", 42, l, strlen(l));
	assert_int_equal(log_dropped(), before + 1);
	fl = fcntl(p[1], F_GETFL);
	assert_true(fl != -1 && !(fl & O_NONBLOCK));
	assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	while (read(p[0], out, sizeof(out)) > 0)
		;
	log_forward_child("front", 42, l, strlen(l));
	r = read(p[0], out, sizeof(out) - 1);
	alarm(0);
	assert_true(r > 0);
	out[r] = '\0';
	assert_non_null(strstr(out, "(1 log lines dropped)\n"));
	assert_non_null(strstr(out, "front[42] x.c:1 hello\n"));
	log_set_fd(pipefd[1], false);
	close(p[0]);
	close(p[1]);
}

/* A line longer than the room in a non-blocking pipe goes out in part;
 * the next write ends it with its '\n' first, so the line after it
 * starts a line of its own. */
static void test_line_cut_by_a_full_pipe_is_ended(void **state)
{
	static char big[LOG_FORWARD_MAX], out[1 << 16];
	const char *l = "I t front[42] x.c:1 after";
	int p[2];
	ssize_t r;

	(void)state;
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	(void)fcntl(p[1], F_SETPIPE_SZ, 4096);
	log_set_fd(p[1], false);
	memset(big, '\x01', sizeof(big)); /* escaped: 4 x 4096 bytes */
	log_forward_child("front", 42, big, sizeof(big));
	r = read(p[0], out, sizeof(out));
	assert_true(r > 0 && (size_t)r < 4 * sizeof(big));
	assert_int_not_equal(out[r - 1], '\n'); /* cut */
	log_forward_child("front", 42, l, strlen(l));
	r = read(p[0], out, sizeof(out) - 1);
	assert_true(r > 0);
	out[r] = '\0';
	assert_int_equal(out[0], '\n'); /* the cut line ends; it counts */
	assert_non_null(strstr(out, "(1 log lines dropped)\nI "));
	assert_non_null(strstr(out, "front[42] x.c:1 after\n"));
	log_set_fd(pipefd[1], false);
	close(p[0]);
	close(p[1]);
}

/* The sink's next line, whole, without its '\n'. */
static const char *sink_line(void)
{
	static char out[8192];
	ssize_t n = read(pipefd[0], out, sizeof(out) - 1);

	assert_true(n > 0);
	out[n] = '\0';
	assert_int_equal(out[n - 1], '\n');
	out[n - 1] = '\0';
	return out;
}

/* Issue 15: on journald's stream ($JOURNAL_STREAM names the descriptor)
 * each line starts with its syslog priority, so that journalctl -p
 * filters, and carries no timestamp (journald adds its own). */
static void test_journal_priority_prefix(void **state)
{
	struct stat st;
	char js[64], want[128];
	const char *l;

	(void)state;
	assert_int_equal(fstat(pipefd[1], &st), 0);
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", js, 1);
	log_init("main", pipefd[1], false);
	assert_true(log_to_journal());
	log_level = LOGL_DEBUG;
	LOGW("disk %s", "full");
	l = sink_line();
	snprintf(want, sizeof(want), "<4>W main[%d] test_log.c:", (int)getpid());
	assert_memory_equal(l, want, strlen(want));
	assert_non_null(strstr(l, " disk full"));
	assert_null(strstr(l, "T")); /* no "2026-...T..." */
	LOGN("notice");
	assert_memory_equal(sink_line(), "<5>N main[", 10);
	LOGI("info");
	assert_memory_equal(sink_line(), "<6>I main[", 10);
	LOGE("error");
	assert_memory_equal(sink_line(), "<3>E main[", 10);
	LOGD("debug");
	assert_memory_equal(sink_line(), "<7>D main[", 10);
	/* a child's line keeps its level, as a priority too */
	l = "N 2026-01-01T00:00:00+00:00 front[42] x.c:7 serving";
	log_forward_child("front", 42, l, strlen(l));
	assert_string_equal(sink_line(), "<5>N front[42] x.c:7 serving");
	l = "sanitizer text";
	log_forward_child("front", 42, l, strlen(l));
	assert_string_equal(sink_line(), "<3>E front[42] sanitizer text");

	/* another stream (a terminal, a file): the plain format */
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + 1);
	setenv("JOURNAL_STREAM", js, 1);
	log_init("main", pipefd[1], false);
	assert_false(log_to_journal());
	LOGW("plain");
	l = sink_line();
	assert_true(l[0] == 'W' && l[1] == ' ' && l[2] == '2');
	unsetenv("JOURNAL_STREAM");
	log_level = LOGL_NOTICE;
}

static void test_bucket(void **state)
{
	struct log_bucket b = { 0 };
	int n = 0;

	(void)state;
	/* a full bucket at first: the burst passes, then the rate */
	for (int i = 0; i < 100; i++)
		n += log_bucket_take(&b, 1, 10);
	assert_int_equal(n, 10);
	b.last_ms -= 3000; /* three seconds later: three more */
	n = 0;
	for (int i = 0; i < 100; i++)
		n += log_bucket_take(&b, 1, 10);
	assert_int_equal(n, 3);
	b.last_ms -= 3600 * 1000; /* never more than the burst */
	n = 0;
	for (int i = 0; i < 100; i++)
		n += log_bucket_take(&b, 1, 10);
	assert_int_equal(n, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_own_prefix_replaced),
		cmocka_unit_test(test_forged_prefix_is_text),
		cmocka_unit_test(test_bytes_escaped),
		cmocka_unit_test(test_long_line_cut),
		cmocka_unit_test(test_cut_never_splits_an_escape),
		cmocka_unit_test(test_cut_of_a_forwarded_line_ends_whole),
		cmocka_unit_test(test_journal_priority_prefix),
		cmocka_unit_test(test_bucket),
		cmocka_unit_test(test_drop_count_comes_before_a_forwarded_line),
		cmocka_unit_test(test_parent_never_waits_on_a_full_pipe),
		cmocka_unit_test(test_line_cut_by_a_full_pipe_is_ended),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
