/* readfile: the parent's one way of reading a file (see readfile.h). */
#include "privsep/readfile.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int readfile_open(int dirfd, const char *path)
{
	return openat(dirfd, path,
		      O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
}

/* Read until EOF into a buffer that grows up to max + 1 bytes (one more
 * than allowed tells a file that grew past max). */
static int readfile_slurp(int fd, size_t max, size_t hint, struct blob *out)
{
	size_t cap = (hint < max ? hint : max) + 1, n = 0;
	char *buf = malloc(cap + 1);

	if (buf == NULL)
		return -1;
	for (;;) {
		ssize_t r;

		if (n == cap) {
			size_t ncap = cap > (max + 1) / 2 ? max + 1 : cap * 2;
			char *nb;

			if (ncap == cap) {
				free(buf);
				errno = EFBIG;
				return -1;
			}
			nb = realloc(buf, ncap + 1);
			if (nb == NULL) {
				free(buf);
				return -1;
			}
			buf = nb;
			cap = ncap;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			/* a stream (standard input) set non-blocking */
			struct pollfd p = { fd, POLLIN, 0 };

			if (poll(&p, 1, -1) >= 0 || errno == EINTR)
				continue;
		}
		if (r < 0) {
			int e = errno;

			free(buf);
			errno = e;
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		free(buf);
		errno = EFBIG;
		return -1;
	}
	buf[n] = '\0';
	out->data = buf;
	out->len = n;
	return 0;
}

int readfile_fd(int fd, size_t max, struct blob *out, struct stat *st)
{
	struct stat s;
	int rc = -1, e;

	free(out->data);
	out->data = NULL;
	out->len = 0;
	if (fstat(fd, &s) < 0)
		goto out;
	if (!S_ISREG(s.st_mode)) {
		errno = S_ISDIR(s.st_mode) ? EISDIR : EINVAL;
		goto out;
	}
	if ((unsigned long long)s.st_size > max) {
		errno = EFBIG;
		goto out;
	}
	if (st != NULL)
		*st = s;
	rc = readfile_slurp(fd, max, (size_t)s.st_size, out);
out:
	e = errno;
	close(fd);
	errno = e;
	return rc;
}

int readfile_stream(int fd, size_t max, struct blob *out)
{
	free(out->data);
	out->data = NULL;
	out->len = 0;
	return readfile_slurp(fd, max, 64u << 10, out);
}

int readfile_at(int dirfd, const char *path, size_t max, struct blob *out,
		struct stat *st)
{
	int fd = readfile_open(dirfd, path);

	if (fd < 0) {
		free(out->data);
		out->data = NULL;
		out->len = 0;
		return errno == ENOENT ? 0 : -1;
	}
	return readfile_fd(fd, max, out, st);
}

const char *readfile_strerror(int err)
{
	switch (err) {
	case EINVAL:
		return "not a regular file";
	case EFBIG:
		return "larger than the limit";
	default:
		return strerror(err);
	}
}
