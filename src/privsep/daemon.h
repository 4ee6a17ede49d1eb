/* daemon: -d (daemonize) and --pidfile, for the parent. */
#ifndef NEOSOCKSD_DAEMON_H
#define NEOSOCKSD_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/config.h"

/* Make the relative paths of c absolute (-d changes to /). 0, or -1 with
 * a message. */
int daemon_abs_paths(struct config *c, char *err, size_t errcap);
/* Fork into the background. Returns 0 in the daemon; the process that was
 * started waits for daemon_ready() (exit 0) or the daemon's end (exit 1)
 * and never returns. -1: nothing forked (logged). */
int daemon_start(bool use_syslog, pid_t kill_in_original);
/* Serving: the process that was started may exit 0. */
void daemon_ready(void);

/* Open and lock the pidfile (before the sandbox); "" does nothing. 0 or
 * -1 (logged). */
int daemon_pidfile_open(const char *path);
/* Its directory, for the sandbox's unlinkat row, or -1. */
int daemon_pidfile_dirfd(void);
void daemon_pidfile_write(void);
/* At exit: remove it if it is still the file written. */
void daemon_pidfile_remove(void);

#endif
