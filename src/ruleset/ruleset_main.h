/* ruleset_main: the jailed Lua process: its life, driven by the parent's
 * messages (ruleset_parent.c). */
#ifndef NEOSOCKSD_RULESET_MAIN_H
#define NEOSOCKSD_RULESET_MAIN_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "common/config.h"
#include "common/msg.h"

int ruleset_main(void);

struct event_base *ruleset_base(void);
const struct config *ruleset_conf(void);

/* R_CONFIG: the settings (once, before R_START). 0 or -1. */
int ruleset_set_config(const void *data, size_t len);
/* A -c file evaluated at the daemon's start: its settings count. */
void ruleset_apply_config(const struct config *c);
/* R_START: create the Lua state and apply the sandbox (or exit). */
void ruleset_start(const struct msg_sandbox *sb);
/* Send R_READY (once). */
void ruleset_ready(void);
/* Flush what is queued for the parent, then exit. */
void ruleset_exit(int code) __attribute__((noreturn));

#endif
