/* loader: how Lua code in the ruleset process finds more code.
 *
 * require() works as in Lua 5.4: package.loaded, then each function of
 * package.searchers in turn (package.preload, then the files, then the
 * modules built into the binary). The files are read by the parent
 * (privsep/modules.c) beneath the ruleset's directory and the --lua-path
 * directories: this process has no files. package.path describes that
 * search and is read-only (assigning it raises: it could not change where
 * the parent looks). loadfile() and dofile() read a relative file name the
 * same way. Every source is text (vm_prepare_source refuses bytecode). */
#include "ruleset/loader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "common/msg.h"
#include "ruleset/codeinfo.h"
#include "ruleset/hostapi.h"
#include "ruleset/vm.h"

#define LOADER_PACKAGE "neosocksd.package" /* registry: the package table */

static loader_fetch_fn loader_fetch;

void loader_set_fetch(loader_fetch_fn f)
{
	loader_fetch = f;
}

/* Ask the parent for a module or a file. Pushes the source (found) or the
 * reason (refused, error) as a string, nothing when absent. */
static int loader_get(lua_State *L, bool module, const char *name)
{
	char *data = NULL;
	size_t len = 0;
	int found = loader_fetch != NULL
			    ? loader_fetch(module, name, &data, &len)
			    : MODULE_ABSENT;

	if (found < MODULE_ABSENT && data == NULL) {
		lua_pushliteral(L, "no answer from the daemon");
		return MODULE_ERROR;
	}
	if (data != NULL) {
		lua_pushlstring(L, data, len); /* on failure data leaks once */
		free(data);
	} else if (found != MODULE_ABSENT) {
		lua_pushliteral(L, "(no reason given)");
	}
	return found;
}

/* The string at the top becomes a text chunk named chunkname (gunzipped,
 * BOM and "#!" skipped, bytecode refused). Replaces it with the function,
 * or with the error message and returns non-zero. */
static int loader_compile(lua_State *L, const char *chunkname)
{
	size_t len, n;
	const char *code = lua_tolstring(L, -1, &len), *src;
	char *buf = NULL, err[256];
	int r;

	if (vm_prepare_source(code, len, &src, &n, &buf, err, sizeof(err)) <
	    0) {
		lua_pop(L, 1);
		lua_pushstring(L, err);
		return LUA_ERRSYNTAX;
	}
	if (buf != NULL) {
		/* gunzipped: into Lua's heap first, so an error frees it */
		size_t off = (size_t)(src - buf);

		lua_pushlstring(L, buf, off + n);
		free(buf);
		src = lua_tostring(L, -1) + off;
	}
	r = luaL_loadbufferx(L, src, n, chunkname, "t");
	lua_replace(L, buf != NULL ? -3 : -2);
	if (buf != NULL)
		lua_pop(L, 1);
	return r;
}

/* ---- package.searchers ---- */

static int loader_search_preload(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);

	if (lua_getfield(L, LUA_REGISTRYINDEX, LOADER_PACKAGE) != LUA_TTABLE ||
	    lua_getfield(L, -1, "preload") != LUA_TTABLE)
		return luaL_error(L, "'package.preload' must be a table");
	if (lua_getfield(L, -1, name) == LUA_TNIL) {
		lua_pushfstring(L, "no field package.preload['%s']", name);
		return 1;
	}
	lua_pushliteral(L, ":preload:");
	return 2;
}

/* a.b.c: the parent tries a/b/c.lua, then a/b/c/init.lua, in each
 * directory; then a module built into the binary (libruleset). */
static int loader_search_files(lua_State *L)
{
	size_t nlen, blen;
	const char *name = luaL_checklstring(L, 1, &nlen), *code;
	char path[MSG_MODULE_NAME_MAX + 16], chunk[sizeof(path) + 1];
	char sha[SHA256_HEX];
	int found;

	if (!msg_module_name_ok(name, nlen, true))
		return luaL_error(L, "module '%s': invalid name (letters, "
				     "digits, '_' and '-', with single dots "
				     "between levels)", name);
	snprintf(path, sizeof(path), "%s", name);
	for (char *p = path; *p != '\0'; p++)
		if (*p == '.')
			*p = '/';
	found = loader_get(L, true, name);
	if (found == MODULE_ABSENT) {
		code = hostapi_builtin_module(name, &blen);
		if (code == NULL) {
			lua_pushfstring(L,
					"no file '%s.lua' or '%s/init.lua' "
					"beneath the ruleset's directory or "
					"--lua-path",
					path, path);
			return 1;
		}
		lua_pushlstring(L, code, blen);
		strcat(path, ".lua"); /* nlen <= MSG_MODULE_NAME_MAX */
	} else if (found == MODULE_FILE || found == MODULE_INIT) {
		strcat(path, found == MODULE_INIT ? "/init.lua" : ".lua");
	} else {
		return luaL_error(L, "module '%s': cannot be read: %s", name,
				  lua_tostring(L, -1));
	}
	snprintf(chunk, sizeof(chunk), "@%s", path);
	code = lua_tolstring(L, -1, &blen);
	sha256_hex(code != NULL ? code : "", code != NULL ? blen : 0, sha);
	if (loader_compile(L, chunk) != LUA_OK)
		return luaL_error(L, "error loading module '%s' from file "
				     "'%s':\n\t%s",
				  name, path, lua_tostring(L, -1));
	codeinfo_set(name, sha);
	lua_pushstring(L, path);
	return 2;
}

/* ---- require ---- */

static void loader_find(lua_State *L, const char *name)
{
	luaL_Buffer msg;

	if (lua_getfield(L, LUA_REGISTRYINDEX, LOADER_PACKAGE) != LUA_TTABLE ||
	    lua_getfield(L, -1, "searchers") != LUA_TTABLE)
		luaL_error(L, "'package.searchers' must be a table");
	lua_remove(L, -2);
	luaL_buffinit(L, &msg);
	for (int i = 1;; i++) {
		luaL_addstring(&msg, "\n\t");
		if (lua_rawgeti(L, 3, i) == LUA_TNIL) {
			lua_pop(L, 1);
			luaL_buffsub(&msg, 2);
			luaL_pushresult(&msg);
			luaL_error(L, "module '%s' not found:%s", name,
				   lua_tostring(L, -1));
		}
		lua_pushstring(L, name);
		lua_call(L, 1, 2);
		if (lua_isfunction(L, -2))
			return; /* the loader and its data */
		if (lua_isstring(L, -2)) {
			lua_pop(L, 1);
			luaL_addvalue(&msg);
		} else {
			lua_pop(L, 2);
			luaL_buffsub(&msg, 2);
		}
	}
}

static int loader_require(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);

	lua_settop(L, 1);
	lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE); /* 2 */
	lua_getfield(L, 2, name);
	if (lua_toboolean(L, -1))
		return 1;
	lua_pop(L, 1);
	/* 3 searchers, 4 the message buffer, 5 the loader, 6 its data */
	loader_find(L, name);
	lua_copy(L, 5, 3);
	lua_copy(L, 6, 4);
	lua_settop(L, 4);
	lua_pushvalue(L, 3);
	lua_pushvalue(L, 1);
	lua_pushvalue(L, 4);
	lua_call(L, 2, 1); /* loader(name, data) */
	if (!lua_isnil(L, -1))
		lua_setfield(L, 2, name);
	else
		lua_pop(L, 1);
	if (lua_getfield(L, 2, name) == LUA_TNIL) {
		lua_pop(L, 1);
		lua_pushboolean(L, 1);
		lua_pushvalue(L, -1);
		lua_setfield(L, 2, name);
	}
	vm_mark_module(L, name);
	lua_pushvalue(L, 4);
	return 2; /* the module and its data */
}

/* ---- loadfile, dofile ---- */

/* Pushes the function, or nil and a message. */
static int loader_loadfile_impl(lua_State *L, const char *fname,
				size_t flen, const char *mode, int env)
{
	char chunk[MSG_FILE_NAME_MAX + 2];
	int found;

	if (fname == NULL) {
		luaL_pushfail(L);
		lua_pushliteral(L, "cannot read standard input here (name a "
				   "file beneath the ruleset's directory or "
				   "--lua-path)");
		return 2;
	}
	if (!msg_file_name_ok(fname, flen) || strlen(fname) != flen) {
		luaL_pushfail(L);
		lua_pushfstring(L, "cannot open %s (a relative name beneath "
				   "the ruleset's directory or --lua-path, "
				   "without '..')", fname);
		return 2;
	}
	if (strchr(mode, 't') == NULL) {
		luaL_pushfail(L);
		lua_pushfstring(L, "attempt to load a text chunk (mode is "
				   "'%s')", mode);
		return 2;
	}
	found = loader_get(L, false, fname);
	if (found != MODULE_FILE) {
		if (found == MODULE_ABSENT)
			lua_pushfstring(L, "cannot open %s", fname);
		else
			lua_pushfstring(L, "cannot open %s: %s", fname,
					lua_tostring(L, -1));
		luaL_pushfail(L);
		lua_insert(L, -2);
		return 2;
	}
	snprintf(chunk, sizeof(chunk), "@%s", fname);
	if (loader_compile(L, chunk) != LUA_OK) {
		luaL_pushfail(L);
		lua_insert(L, -2);
		return 2;
	}
	if (env != 0) {
		lua_pushvalue(L, env);
		if (!lua_setupvalue(L, -2, 1))
			lua_pop(L, 1);
	}
	return 1;
}

/* loadfile([filename [, mode [, env]]]) */
static int loader_loadfile(lua_State *L)
{
	size_t flen = 0;
	const char *fname = luaL_optlstring(L, 1, NULL, &flen);
	const char *mode = luaL_optstring(L, 2, "bt");

	return loader_loadfile_impl(L, fname, flen, mode,
				    lua_isnone(L, 3) ? 0 : 3);
}

/* dofile([filename]) */
static int loader_dofile(lua_State *L)
{
	size_t flen = 0;
	const char *fname = luaL_optlstring(L, 1, NULL, &flen);

	lua_settop(L, 1);
	if (loader_loadfile_impl(L, fname, flen, "t", 0) != 1)
		return lua_error(L);
	lua_call(L, 0, LUA_MULTRET);
	return lua_gettop(L) - 1;
}

/* ---- the package table ---- */

static int loader_package_newindex(lua_State *L)
{
	const char *k = lua_tostring(L, 2);

	if (lua_type(L, 2) == LUA_TSTRING &&
	    (strcmp(k, "path") == 0 || strcmp(k, "cpath") == 0))
		return luaL_error(L, "package.%s is read-only: the daemon "
				     "reads modules from the ruleset's "
				     "directory and --lua-path",
				  k);
	lua_rawset(L, 1);
	return 0;
}

void loader_open(lua_State *L, const char *path)
{
	static const lua_CFunction searchers[] = { loader_search_preload,
						   loader_search_files };

	lua_createtable(L, 0, 5); /* package */
	lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
	lua_pushvalue(L, -2);
	lua_setfield(L, -2, "package");
	lua_setfield(L, -2, "loaded");
	lua_newtable(L);
	lua_setfield(L, -2, "preload");
	lua_createtable(L, 2, 0);
	for (int i = 0; i < 2; i++) {
		lua_pushcfunction(L, searchers[i]);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, "searchers");
	lua_pushliteral(L, "/\n;\n?\n!\n-\n");
	lua_setfield(L, -2, "config");
	/* path is read through __index so that assigning it meets
	 * __newindex */
	lua_createtable(L, 0, 3);
	lua_createtable(L, 0, 1);
	lua_pushstring(L, path != NULL ? path : "");
	lua_setfield(L, -2, "path");
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, loader_package_newindex);
	lua_setfield(L, -2, "__newindex");
	lua_pushliteral(L, "package");
	lua_setfield(L, -2, "__metatable");
	lua_setmetatable(L, -2);
	lua_pushvalue(L, -1);
	lua_setfield(L, LUA_REGISTRYINDEX, LOADER_PACKAGE);
	lua_setglobal(L, "package");
	lua_pushcfunction(L, loader_require);
	lua_setglobal(L, "require");
	lua_pushcfunction(L, loader_loadfile);
	lua_setglobal(L, "loadfile");
	lua_pushcfunction(L, loader_dofile);
	lua_setglobal(L, "dofile");
}
