/* builtin: Lua modules compiled into the binary (libruleset), generated at
 * build time from the .lua files in src/ruleset by mk/embed.sh. */
#ifndef NEOSOCKSD_BUILTIN_H
#define NEOSOCKSD_BUILTIN_H

#include <stddef.h>

struct builtin_module {
	const char *name;
	const char *src;
	size_t len;
};

/* Ends with a { NULL } entry. */
extern const struct builtin_module builtin_modules[];

#endif
