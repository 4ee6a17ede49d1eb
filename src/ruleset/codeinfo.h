/* codeinfo: which code this daemon runs: for the ruleset and each module
 * loaded (require, /ruleset/update?module=), the sha256 of the source as
 * it was given and when it was applied. /stats, /metrics and /healthy
 * show it (neosocksd_ruleset_info), so that an admin can check that every
 * daemon of a fleet runs the same code (docs/fleet.md). */
#ifndef NEOSOCKSD_CODEINFO_H
#define NEOSOCKSD_CODEINFO_H

#include <stdbool.h>
#include <stddef.h>

#include "ruleset/sha256.h"

#define CODEINFO_MAX 64      /* entries kept; more modules are not listed */
#define CODEINFO_NAME_MAX 64 /* MSG_MODULE_NAME_MAX */
#define CODEINFO_RULESET "(ruleset)" /* the ruleset's entry's name */

struct codeinfo {
	char name[CODEINFO_NAME_MAX + 1];
	char sha256[SHA256_HEX];
	double applied; /* seconds since the epoch */
};

/* The ruleset (name NULL) or module name now runs src[0..len). */
void codeinfo_note(const char *name, const void *src, size_t len);
/* The same with the digest computed already (SHA256_HEX bytes). */
void codeinfo_set(const char *name, const char *sha256);
/* A reload is tried: keep the current entries aside; after it, restore
 * them (it failed) or drop them (it worked: the new ones stand). */
void codeinfo_stash(void);
void codeinfo_unstash(bool restore);
/* The entries, the ruleset first, then modules by name. */
size_t codeinfo_list(const struct codeinfo **list);

#endif
