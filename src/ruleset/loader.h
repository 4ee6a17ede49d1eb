/* loader: require() with package.searchers, package.loaded,
 * package.preload and a read-only package.path; loadfile() and dofile().
 * The sources come from the parent (see loader.c). */
#ifndef NEOSOCKSD_LOADER_H
#define NEOSOCKSD_LOADER_H

#include <stdbool.h>
#include <stddef.h>

#include <lua.h>

/* Ask the parent for a module (module: a dotted name) or a file (a
 * relative name) and wait. Returns an enum module_found value; *data
 * (malloc'd, *len bytes) holds the source when found, the reason when
 * refused or in error, NULL when absent; -1 with *data NULL when no
 * answer came. */
typedef int (*loader_fetch_fn)(bool module, const char *name, char **data,
			       size_t *len);
void loader_set_fetch(loader_fetch_fn f);

/* Install package, require, loadfile and dofile; path is what
 * package.path shows (the directories searched). */
void loader_open(lua_State *L, const char *path);

#endif
