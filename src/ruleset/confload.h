/* confload: evaluate a -c config file in the ruleset's VM. */
#ifndef NEOSOCKSD_CONFLOAD_H
#define NEOSOCKSD_CONFLOAD_H

#include <stddef.h>

#include "common/config.h"

/* Merge the file's settings over *c (only if all are valid). A "ruleset"
 * table field becomes _G.ruleset. 0 or -1 with err ("file:line: ..."). */
int confload_eval(const char *src, size_t len, const char *chunkname,
		  struct config *c, char *err, size_t errcap);

#endif
