/* modules: the parent's answers to require(), loadfile() and dofile() from
 * the ruleset process.
 *
 * Names are checked again here (a jailed process may be compromised). A
 * module "a.b" is looked up as a/b.lua, then a/b/init.lua, in the
 * directory of the -r (or -c) file, then in each --lua-path directory; a
 * loadfile() name is a relative path looked up in the same directories.
 * Beneath a directory, the path is opened one component at a time with
 * O_NOFOLLOW (modules_open_beneath): no symlink is followed, so nothing
 * leads out of the directory the operator named; the file is opened
 * without blocking and read only if it is a regular file (readfile.c).
 * What was served is cached so a respawned ruleset process gets the same
 * sources; SIGHUP clears the cache. */
#include "privsep/modules.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "privsep/parent.h"

#define MODULES_REASON_MAX 200

struct module {
	struct module *next;
	char key[MSG_FILE_NAME_MAX + 2]; /* 'm' or 'f', then the name */
	int32_t found;                   /* MODULE_FILE or MODULE_INIT */
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

/* After a failed openat(dfd, comp, ... O_NOFOLLOW): was comp a symlink? */
static bool modules_is_link(int dfd, const char *comp)
{
	struct stat st;

	return fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISLNK(st.st_mode);
}

/* Open rel (checked by msg_file_name_ok: relative, no "..") beneath dir
 * without following any symlink below dir and without blocking. fd, or -1
 * with errno: ENOENT (or ENOTDIR) absent, ELOOP a symlink. */
static int modules_open_beneath(const char *dir, const char *rel)
{
	char buf[MSG_FILE_NAME_MAX + 1];
	char *save = NULL, *comp, *next;
	int dfd, fd;

	if (snprintf(buf, sizeof(buf), "%s", rel) >= (int)sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* the directory itself was named by the operator: it may be (or
	 * pass through) a symlink */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	comp = strtok_r(buf, "/", &save);
	while (comp != NULL) {
		int e;

		next = strtok_r(NULL, "/", &save);
		if (strcmp(comp, ".") == 0 && next != NULL) {
			comp = next;
			continue;
		}
		fd = openat(dfd, comp,
			    next != NULL ? O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
						   O_NONBLOCK | O_CLOEXEC
					 : O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
						   O_NOCTTY | O_CLOEXEC);
		e = errno;
		if (fd < 0 && (e == ENOTDIR || e == ELOOP))
			e = modules_is_link(dfd, comp) ? ELOOP : ENOENT;
		close(dfd);
		if (fd < 0) {
			errno = e;
			return -1;
		}
		if (next == NULL)
			return fd;
		dfd = fd;
		comp = next;
	}
	close(dfd);
	errno = ENOENT;
	return -1;
}

struct module_search {
	const char *name; /* module name or file name */
	bool module;
	struct blob *out;
	char why[MODULES_REASON_MAX];
};

/* Try dir/rel: MODULE_FILE when read (s->out set), MODULE_ABSENT, or
 * MODULE_REFUSED / MODULE_ERROR with the reason in s->why (and logged). */
static int module_try(const char *dir, const char *rel,
		      struct module_search *s)
{
	int fd;

	if (dir[0] == '\0')
		return MODULE_ABSENT;
	fd = modules_open_beneath(dir, rel);
	if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
		return MODULE_ABSENT;
	if (fd >= 0 && readfile_fd(fd, MSG_LUA_SRC_MAX, s->out, NULL) == 0)
		return MODULE_FILE;
	snprintf(s->why, sizeof(s->why), "%s: %s", rel,
		 errno == ELOOP ? "a symbolic link (not followed)"
				: readfile_strerror(errno));
	LOG_RL(LOGL_ERROR, 10, "%s '%s': %s/%s",
	       s->module ? "require" : "loadfile", s->name, dir, s->why);
	return errno == ELOOP || errno == EINVAL || errno == EISDIR
		       ? MODULE_REFUSED
		       : MODULE_ERROR;
}

/* The directories searched, in order: the -r file's, the -c file's, then
 * --lua-path's (colon-separated). fn returns non-zero to stop. */
static int modules_each_dir(int (*fn)(const char *dir, void *arg), void *arg)
{
	const char *files[2] = { parent.conf.ruleset, parent.conf.config_file };
	char buf[CONF_PATH_MAX];
	int r;

	for (int i = 0; i < 2; i++) {
		if (files[i][0] == '\0')
			continue;
		/* "-" (standard input) gives ".": the working directory */
		snprintf(buf, sizeof(buf), "%s", files[i]);
		r = fn(dirname(buf), arg);
		if (r != 0)
			return r;
	}
	snprintf(buf, sizeof(buf), "%s", parent.conf.lua_path);
	for (char *save = NULL, *d = strtok_r(buf, ":", &save); d != NULL;
	     d = strtok_r(NULL, ":", &save)) {
		r = fn(d, arg);
		if (r != 0)
			return r;
	}
	return 0;
}

static int module_search_dir(const char *dir, void *arg)
{
	struct module_search *s = arg;
	char rel[MSG_FILE_NAME_MAX + 1];
	size_t n;
	int r;

	if (!s->module)
		return module_try(dir, s->name, s);
	/* a.b.c: a/b/c.lua, then a/b/c/init.lua */
	n = strlen(s->name);
	memcpy(rel, s->name, n + 1);
	for (size_t i = 0; i < n; i++)
		if (rel[i] == '.')
			rel[i] = '/';
	memcpy(rel + n, ".lua", 5);
	r = module_try(dir, rel, s);
	if (r != MODULE_ABSENT)
		return r;
	memcpy(rel + n, "/init.lua", 10);
	r = module_try(dir, rel, s);
	return r == MODULE_FILE ? MODULE_INIT : r;
}

static struct module *modules_find(const char *key)
{
	for (struct module *mod = modules; mod != NULL; mod = mod->next)
		if (strcmp(mod->key, key) == 0)
			return mod;
	return NULL;
}

/* R_MODULE_REQ (a module name) or R_FILE_REQ (a file name). */
int modules_request(struct child *c, const struct msg *m)
{
	bool module = m->type == MSG_R_MODULE_REQ;
	char key[MSG_FILE_NAME_MAX + 2];
	struct msg_module mm = { .found = MODULE_ABSENT };
	struct blob src = { 0 };
	struct module_search s = { .name = key + 1, .module = module,
				   .out = &src };
	struct module *mod;
	struct iovec iov[2];
	int niov = 1;

	if (module ? !msg_module_name_ok((const char *)m->data, m->len, true)
		   : !msg_file_name_ok((const char *)m->data, m->len)) {
		LOGE("the ruleset process asked for a %s with a bad name",
		     module ? "module" : "file");
		return -1;
	}
	key[0] = module ? 'm' : 'f';
	memcpy(key + 1, m->data, m->len);
	key[m->len + 1] = '\0';
	mod = modules_find(key);
	if (mod == NULL) {
		mm.found = modules_each_dir(module_search_dir, &s);
		if ((mm.found == MODULE_FILE || mm.found == MODULE_INIT) &&
		    (mod = calloc(1, sizeof(*mod))) != NULL) {
			memcpy(mod->key, key, sizeof(key));
			mod->found = mm.found;
			mod->src = src;
			mod->next = modules;
			modules = mod;
		} else if (mm.found == MODULE_FILE || mm.found == MODULE_INIT) {
			mm.found = MODULE_ERROR;
			snprintf(s.why, sizeof(s.why), "out of memory");
			free(src.data);
		}
	} else {
		mm.found = mod->found;
	}
	iov[0] = (struct iovec){ &mm, sizeof(mm) };
	if (mod != NULL)
		iov[niov++] = (struct iovec){ mod->src.data, mod->src.len };
	else if (mm.found != MODULE_ABSENT)
		iov[niov++] = (struct iovec){ s.why, strlen(s.why) };
	LOGD("%s '%s': %s", module ? "require" : "loadfile", key + 1,
	     mod != NULL ? "served"
	     : mm.found == MODULE_ABSENT ? "not found"
	     : mm.found == MODULE_REFUSED ? "refused"
					  : "error");
	if (chanev_sendv(&c->ch, MSG_R_MODULE, m->id, iov, niov, -1) < 0)
		LOG_RL(LOGL_ERROR, 10, "cannot answer for '%s': %s", key + 1,
		       strerror(errno));
	return 0;
}
