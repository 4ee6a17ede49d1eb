/* Unit tests of readfile (how the parent reads every file it is named):
 * never blocks, regular files only, bounded. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "privsep/readfile.h"

static char dir[] = "/tmp/test_readfile.XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[64];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *at(const char *name)
{
	static char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

static void put(const char *name, const char *text)
{
	FILE *f = fopen(at(name), "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_regular(void **state)
{
	struct blob b = { 0 };
	struct stat st;
	int dfd;

	(void)state;
	put("a.lua", "return 1\n");
	assert_int_equal(readfile_at(AT_FDCWD, at("a.lua"), 64, &b, &st), 0);
	assert_string_equal(b.data, "return 1\n");
	assert_int_equal(b.len, 9);
	assert_true(S_ISREG(st.st_mode));
	/* relative to a directory fd; the previous contents are freed */
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	put("b", "");
	assert_int_equal(readfile_at(dfd, "b", 64, &b, NULL), 0);
	assert_non_null(b.data);
	assert_int_equal(b.len, 0);
	close(dfd);
	free(b.data);
}

static void test_absent(void **state)
{
	struct blob b = { 0 };

	(void)state;
	assert_int_equal(readfile_at(AT_FDCWD, at("none"), 64, &b, NULL), 0);
	assert_null(b.data);
	assert_int_equal(errno, ENOENT);
}

/* a FIFO without a writer: refused at once (this test would hang) */
static void test_fifo(void **state)
{
	struct blob b = { 0 };

	(void)state;
	assert_int_equal(mkfifo(at("fifo"), 0600), 0);
	assert_int_equal(readfile_at(AT_FDCWD, at("fifo"), 64, &b, NULL), -1);
	assert_int_equal(errno, EINVAL);
	assert_string_equal(readfile_strerror(errno), "not a regular file");
	assert_null(b.data);
}

static void test_directory_device_socket(void **state)
{
	struct blob b = { 0 };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int s;

	(void)state;
	assert_int_equal(readfile_at(AT_FDCWD, dir, 64, &b, NULL), -1);
	assert_int_equal(errno, EISDIR);
	assert_int_equal(readfile_at(AT_FDCWD, "/dev/null", 64, &b, NULL), -1);
	assert_int_equal(errno, EINVAL);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(s >= 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", at("sock"));
	assert_int_equal(bind(s, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(readfile_at(AT_FDCWD, at("sock"), 64, &b, NULL), -1);
	assert_int_equal(errno, ENXIO);
	close(s);
	assert_null(b.data);
}

static void test_bounds(void **state)
{
	struct blob b = { 0 };

	(void)state;
	put("ten", "0123456789");
	assert_int_equal(readfile_at(AT_FDCWD, at("ten"), 10, &b, NULL), 0);
	assert_int_equal(b.len, 10);
	assert_int_equal(readfile_at(AT_FDCWD, at("ten"), 9, &b, NULL), -1);
	assert_int_equal(errno, EFBIG);
	assert_null(b.data);
	/* a file whose size says 0 (procfs) is read to its end, bounded */
	assert_int_equal(readfile_at(AT_FDCWD, "/proc/self/status", 1 << 16, &b,
				     NULL),
			 0);
	assert_non_null(strstr(b.data, "Pid:"));
	assert_int_equal(readfile_at(AT_FDCWD, "/proc/self/status", 16, &b,
				     NULL),
			 -1);
	assert_int_equal(errno, EFBIG);
}

/* -r - / -c -: standard input is a pipe (or a terminal): read to its end,
 * waiting for it, even when set non-blocking; bounded; the fd stays open */
static void test_stream(void **state)
{
	struct blob b = { 0 };
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	assert_int_equal(write(p[1], "return {}\n", 10), 10);
	close(p[1]);
	assert_int_equal(readfile_stream(p[0], 64, &b), 0);
	assert_int_equal(b.len, 10);
	assert_string_equal(b.data, "return {}\n");
	assert_int_not_equal(fcntl(p[0], F_GETFD), -1);
	close(p[0]);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "0123456789", 10), 10);
	close(p[1]);
	assert_int_equal(readfile_stream(p[0], 9, &b), -1);
	assert_int_equal(errno, EFBIG);
	assert_null(b.data);
	close(p[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_regular),
		cmocka_unit_test(test_absent),
		cmocka_unit_test(test_fifo),
		cmocka_unit_test(test_directory_device_socket),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_stream),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
