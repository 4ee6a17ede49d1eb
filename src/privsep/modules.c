/* modules: the parent's answers to require() from the ruleset process.
 * Names are checked again here (a jailed process may be compromised), the
 * file name.lua is looked up in the ruleset's directory, then in each
 * --lua-path directory; what was served is cached so a respawned ruleset
 * process gets the same sources; SIGHUP clears the cache. */
#include "privsep/parent.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "common/log.h"

struct module {
	struct module *next;
	char name[MSG_MODULE_NAME_MAX + 1];
	struct blob src;
};

static struct module *modules;

void modules_clear(void)
{
	while (modules != NULL) {
		struct module *m = modules;
		modules = m->next;
		free(m->src.data);
		free(m);
	}
}

/* Try dir/name.lua. 1 found, 0 absent, -1 error (logged). */
static int module_try(const char *dir, const char *name, struct blob *out)
{
	char path[CONF_PATH_MAX + MSG_MODULE_NAME_MAX + 8];

	if (dir[0] == '\0')
		return 0;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s.lua", dir, name) >=
	    sizeof(path))
		return 0;
	if (readfile_at(AT_FDCWD, path, MSG_LUA_SRC_MAX, out, NULL) < 0) {
		LOG_RL(LOGL_ERROR, 10, "require '%s': %s: %s", name, path,
		       readfile_strerror(errno));
		return -1;
	}
	return out->data != NULL ? 1 : 0;
}

static int module_search(const char *name, struct blob *out)
{
	const char *files[2] = { P.conf.ruleset, P.conf.config_file };
	char buf[CONF_PATH_MAX];
	int r;

	/* the directory of the ruleset (or config) file first */
	for (int i = 0; i < 2; i++) {
		if (files[i][0] == '\0')
			continue;
		snprintf(buf, sizeof(buf), "%s", files[i]);
		r = module_try(dirname(buf), name, out);
		if (r != 0)
			return r;
	}
	/* then --lua-path, colon-separated */
	snprintf(buf, sizeof(buf), "%s", P.conf.lua_path);
	for (char *save = NULL, *d = strtok_r(buf, ":", &save); d != NULL;
	     d = strtok_r(NULL, ":", &save)) {
		r = module_try(d, name, out);
		if (r != 0)
			return r;
	}
	return 0;
}

int modules_request(struct child *c, const struct msg *m)
{
	char name[MSG_MODULE_NAME_MAX + 1];
	struct msg_module mm = { .found = 0 };
	struct module *mod;
	struct blob src = { 0 };
	struct iovec iov[2];

	if (!msg_module_name_ok((const char *)m->data, m->len, false)) {
		LOGE("the ruleset process asked for a module with a bad name");
		return -1;
	}
	memcpy(name, m->data, m->len);
	name[m->len] = '\0';
	for (mod = modules; mod != NULL; mod = mod->next)
		if (strcmp(mod->name, name) == 0)
			break;
	if (mod == NULL) {
		int r = module_search(name, &src);

		mm.found = r;
		if (r == 1 && (mod = calloc(1, sizeof(*mod))) != NULL) {
			snprintf(mod->name, sizeof(mod->name), "%s", name);
			mod->src = src;
			mod->next = modules;
			modules = mod;
		} else if (r == 1) {
			mm.found = -1;
			free(src.data);
		}
	} else {
		mm.found = 1;
	}
	iov[0] = (struct iovec){ &mm, sizeof(mm) };
	if (mm.found == 1)
		iov[1] = (struct iovec){ mod->src.data, mod->src.len };
	LOGD("require '%s': %s", name,
	     mm.found == 1 ? "served" : mm.found == 0 ? "not found" : "error");
	if (chanev_sendv(&c->ch, MSG_R_MODULE, m->id, iov,
			 mm.found == 1 ? 2 : 1, -1) < 0)
		LOG_RL(LOGL_ERROR, 10, "cannot answer require '%s': %s", name,
		       strerror(errno));
	return 0;
}
