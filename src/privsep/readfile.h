/* readfile: how the parent reads every file it is named (the ruleset, the
 * -c file, modules, token files, /etc/resolv.conf and /etc/hosts, the
 * --state-dir log). A name may point at anything: a FIFO with no writer,
 * a device, a directory. So a file is opened without blocking (O_NONBLOCK,
 * O_NOCTTY, O_CLOEXEC), checked with fstat() to be a regular file, and only
 * then read, up to a bound. Opening and reading are separate steps so that
 * a caller can open in its own way (openat2 with RESOLVE_BENEATH, say) and
 * still read through readfile_fd(). */
#ifndef NEOSOCKSD_READFILE_H
#define NEOSOCKSD_READFILE_H

#include <stddef.h>
#include <sys/stat.h>

struct blob {
	char *data; /* NUL-terminated (data[len] == '\0'); NULL: absent */
	size_t len;
};

/* Open path (relative to dirfd; AT_FDCWD for the working directory) for
 * reading: never waits, whatever the path names. fd or -1 with errno. */
int readfile_open(int dirfd, const char *path);

/* Read the open fd whole and close it. It must be a regular file (else -1
 * with EISDIR for a directory, EINVAL for a FIFO, socket or device) of at
 * most max bytes (else EFBIG). st, when not NULL, gets its fstat(). Any
 * previous out->data is freed first. 0 or -1 with errno. */
int readfile_fd(int fd, size_t max, struct blob *out, struct stat *st);

/* Read a stream the operator handed us (standard input for -r - and
 * -c -: a pipe, a terminal or a file) until EOF, waiting for it, up to max
 * bytes (else EFBIG). The fd stays open. 0 or -1 with errno. */
int readfile_stream(int fd, size_t max, struct blob *out);

/* readfile_open() then readfile_fd(). A path that does not exist (ENOENT)
 * is not an error: 0 with out->data NULL. */
int readfile_at(int dirfd, const char *path, size_t max, struct blob *out,
		struct stat *st);

/* strerror() for the errno values above ("not a regular file" for
 * EINVAL, "larger than the limit" for EFBIG). */
const char *readfile_strerror(int err);

#endif
