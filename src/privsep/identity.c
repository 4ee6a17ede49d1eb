#include "privsep/identity.h"

#include <errno.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include "privsep/cli.h"

static int identity_fail(char *err, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int identity_fail(char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, cap, fmt, ap);
	va_end(ap);
	return -1;
}

/* "user[:group]": the group defaults to the user's primary group. */
static int identity_user(const char *spec, const char *opt, uint32_t *uid,
			 uint32_t *gid, char *err, size_t cap)
{
	unsigned u, g;
	char why[256];
	struct passwd *pw;

	if (cli_parse_user(spec, &u, &g, why, sizeof(why)) < 0)
		return identity_fail(err, cap, "%s: %s", opt, why);
	if (u == (unsigned)-1)
		return identity_fail(err, cap, "%s: '%s' names no user", opt,
				     spec);
	if (g == (unsigned)-1) {
		pw = getpwuid(u);
		if (pw == NULL)
			return identity_fail(err, cap,
					     "%s: no passwd entry for uid %u",
					     opt, u);
		g = pw->pw_gid;
	}
	if (u == 0 || g == 0)
		return identity_fail(err, cap,
				     "%s: '%s' is root; a child never runs "
				     "as root",
				     opt, spec);
	*uid = u;
	*gid = g;
	return 0;
}

/* A default user: it must exist (no fallback to 'nobody'). */
static int identity_default(const char *name, const char *who,
			    const char *opt, uint32_t *uid, uint32_t *gid,
			    char *err, size_t cap)
{
	struct passwd *pw = getpwnam(name);

	if (pw == NULL)
		return identity_fail(err, cap,
				     "no user '%s' to run the %s as: create "
				     "it (systemd-sysusers with "
				     "sandbox/neosocksd.sysusers) or name "
				     "another with %s",
				     name, who, opt);
	if (pw->pw_uid == 0 || pw->pw_gid == 0)
		return identity_fail(err, cap,
				     "user '%s' is root; a child never runs "
				     "as root",
				     name);
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

static void identity_warn(char *warn, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Append one warning ("; " between two). */
static void identity_warn(char *warn, size_t cap, const char *fmt, ...)
{
	size_t n = strlen(warn);
	va_list ap;

	if (n > 0 && n + 2 < cap) {
		memcpy(warn + n, "; ", 3);
		n += 2;
	}
	if (n + 1 >= cap)
		return;
	va_start(ap, fmt);
	vsnprintf(warn + n, cap - n, fmt, ap);
	va_end(ap);
}

/* 'nobody' only when named: it is shared with other services, which
 * could then signal the child. */
static void identity_warn_nobody(uint32_t uid, const char *opt, char *warn,
				 size_t cap)
{
	struct passwd *pw = getpwnam("nobody");

	if (pw != NULL && pw->pw_uid == uid)
		identity_warn(warn, cap,
			      "%s: 'nobody' is shared with other services, "
			      "which can signal this process",
			      opt);
}

/* The front and the ruleset process must not be able to signal each
 * other: different uids, unless both were named on purpose. */
static int identity_separate(const struct config *c,
			     const struct msg_sandbox *front,
			     const struct msg_sandbox *ruleset, char *err,
			     size_t errcap, char *warn, size_t warncap)
{
	if (front->uid != ruleset->uid)
		return 0;
	if (!c->user_name[0] || !c->ruleset_user[0])
		return identity_fail(err, errcap,
				     "the front and the ruleset process would "
				     "both run as uid %u and could signal "
				     "each other: give --ruleset-user another "
				     "user (or name both -u and "
				     "--ruleset-user to accept it)",
				     (unsigned)front->uid);
	identity_warn(warn, warncap,
		      "the front and the ruleset process both run as uid %u "
		      "(-u and --ruleset-user): they can signal each other",
		      (unsigned)front->uid);
	return 0;
}

static bool dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	bool empty = true;

	if (d == NULL)
		return false;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			empty = false;
	closedir(d);
	return empty;
}

/* mkdir -p for the jail, then check it is a safe chroot. */
static int identity_jail(const char *path, char *err, size_t cap)
{
	char tmp[sizeof(((struct config *)0)->jail_dir)];
	struct stat st;

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return identity_fail(err, cap, "--jail: mkdir %s: %s",
					     tmp, strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return identity_fail(err, cap, "--jail: mkdir %s: %s", tmp,
				     strerror(errno));
	if (lstat(path, &st) < 0)
		return identity_fail(err, cap, "--jail: %s: %s", path,
				     strerror(errno));
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		return identity_fail(err, cap,
				     "--jail: %s must be a directory owned by "
				     "root and writable only by root",
				     path);
	if (!dir_is_empty(path))
		return identity_fail(err, cap, "--jail: %s is not empty", path);
	return 0;
}

int identity_resolve(const struct config *c, struct msg_sandbox *front,
		     struct msg_sandbox *ruleset, char *err, size_t errcap,
		     char *warn, size_t warncap)
{
	const char *dbg = getenv("NEOSOCKSD_SANDBOX_DEBUG");
	uint8_t debug = c->sandbox_debug || (dbg != NULL && strcmp(dbg, "1") == 0);

	memset(front, 0, sizeof(*front));
	memset(ruleset, 0, sizeof(*ruleset));
	if (warncap > 0)
		warn[0] = '\0';
	front->debug = ruleset->debug = debug;
	if (geteuid() != 0) {
		front->uid = ruleset->uid = (uint32_t)getuid();
		front->gid = ruleset->gid = (uint32_t)getgid();
		if (c->user_name[0] || c->ruleset_user[0])
			return identity_fail(err, errcap,
					     "-u and --ruleset-user need root");
		return 0;
	}
	front->drop_user = ruleset->drop_user = 1;
	if (c->user_name[0]) {
		if (identity_user(c->user_name, "-u", &front->uid, &front->gid,
				  err, errcap) < 0)
			return -1;
		identity_warn_nobody(front->uid, "-u", warn, warncap);
	} else if (identity_default(IDENTITY_FRONT_USER, "front", "-u",
				    &front->uid, &front->gid, err,
				    errcap) < 0) {
		return -1;
	}
	if (c->ruleset_user[0]) {
		if (identity_user(c->ruleset_user, "--ruleset-user",
				  &ruleset->uid, &ruleset->gid, err,
				  errcap) < 0)
			return -1;
		identity_warn_nobody(ruleset->uid, "--ruleset-user", warn,
				     warncap);
	} else if (identity_default(IDENTITY_RULESET_USER, "ruleset process",
				    "--ruleset-user", &ruleset->uid,
				    &ruleset->gid, err, errcap) < 0) {
		return -1;
	}
	if (identity_separate(c, front, ruleset, err, errcap, warn, warncap) <
	    0)
		return -1;
	if (identity_jail(c->jail_dir, err, errcap) < 0)
		return -1;
	snprintf(ruleset->jail, sizeof(ruleset->jail), "%s", c->jail_dir);
	ruleset->netns = 1;
	return 0;
}

uint64_t identity_respawn_caps(const struct msg_sandbox *front,
			       const struct msg_sandbox *ruleset)
{
	uint64_t caps = 0;

	if (front->drop_user || ruleset->drop_user)
		caps |= (1ull << CAP_SETUID) | (1ull << CAP_SETGID) |
			(1ull << CAP_SETPCAP);
	if (ruleset->jail[0])
		caps |= 1ull << CAP_SYS_CHROOT;
	if (ruleset->netns)
		caps |= 1ull << CAP_SYS_ADMIN;
	return caps;
}
