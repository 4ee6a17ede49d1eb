/* execute: await.execute's commands (with --enable-execute). */
#ifndef NEOSOCKSD_EXECUTE_H
#define NEOSOCKSD_EXECUTE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/msg.h"
#include "privsep/proc.h"

/* An R_EXECUTE; -1 refuses (the caller kills the child). */
int execute_request(struct child *c, const struct msg *m);
/* The routine waiting for command id is gone: kill the command. */
void execute_cancel(uint32_t id, pid_t ruleset);
/* Kill the commands of that ruleset process (0: every command). */
void execute_kill_all(pid_t ruleset);
/* A child that is not the front or the ruleset was reaped: a command? */
bool execute_reaped(pid_t pid, int status);

#endif
