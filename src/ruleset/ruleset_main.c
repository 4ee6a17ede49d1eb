/* ruleset_main: the jailed process that hosts the Lua VM and the REST
 * API: its life (configuration, start and sandbox, readiness, exit). It
 * opens no files and has no network of its own: everything arrives over
 * its channels, the parent's on fd 3 (ruleset_parent.c) and the front's
 * (ruleset_front.c: handed over by the parent, replaced whenever the front
 * restarts). */
#include "ruleset/ruleset_main.h"

#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include <event2/event.h>

#include "common/chanev.h"
#include "common/log.h"
#include "common/tlsconf.h"
#include "privsep/sandbox.h"
#include "ruleset/lib_os.h"
#include "ruleset/ruleset_parent.h"
#include "ruleset/vm.h"

static struct {
	struct event_base *base;
	struct config conf;
	bool ready; /* R_READY sent */
} ruleset;

struct event_base *ruleset_base(void)
{
	return ruleset.base;
}

const struct config *ruleset_conf(void)
{
	return &ruleset.conf;
}

int ruleset_set_config(const void *data, size_t len)
{
	if (config_validate_wire(data, len) < 0)
		return -1;
	memcpy(&ruleset.conf, data, sizeof(ruleset.conf));
	log_level = ruleset.conf.loglevel;
	return 0;
}

/* A -c file evaluated at the daemon's start: its settings count. */
void ruleset_apply_config(const struct config *c)
{
	struct vm_conf vc = {
		.memlimit = (size_t)c->memlimit << 20,
		.traceback = c->traceback,
	};

	ruleset.conf = *c;
	log_level = ruleset.conf.loglevel;
	vm_reconf(&vc);
}

void ruleset_exit(int code)
{
	chanev_drain(ruleset_parent(), 1000);
	exit(code);
}

void ruleset_ready(void)
{
	if (ruleset.ready)
		return;
	ruleset.ready = true;
	chanev_send(ruleset_parent(), MSG_R_READY, 0, NULL, 0, -1);
}

/* What package.path shows: the directories the parent searches, in its
 * order (privsep/modules.c), as Lua templates. */
static const char *ruleset_package_path(char *out, size_t cap)
{
	const char *files[2] = { ruleset.conf.ruleset,
				 ruleset.conf.config_file };
	char buf[CONF_PATH_MAX];
	size_t off = 0;

	out[0] = '\0';
	for (int i = 0; i < 3; i++) {
		char *save = NULL, *d;

		if (i < 2 && files[i][0] == '\0')
			continue;
		snprintf(buf, sizeof(buf), "%s",
			 i < 2 ? files[i] : ruleset.conf.lua_path);
		d = i < 2 ? dirname(buf) : strtok_r(buf, ":", &save);
		for (; d != NULL; d = i < 2 ? NULL : strtok_r(NULL, ":", &save)) {
			int n = snprintf(out + off, cap - off,
					 "%s%s/?.lua;%s/?/init.lua",
					 off > 0 ? ";" : "", d, d);

			if (n < 0 || (size_t)n >= cap - off) {
				out[off] = '\0';
				return out;
			}
			off += (size_t)n;
		}
	}
	return out;
}

/* Jail ourselves before any input is looked at. */
void ruleset_start(const struct msg_sandbox *m)
{
	struct msg_sandbox sb = *m;
	struct sandbox_conf sc = { .role = ROLE_RULESET };
	char skipped[256] = "", err[256] = "";

	sb.jail[sizeof(sb.jail) - 1] = '\0';
	sc.drop_user = sb.drop_user != 0;
	sc.uid = sb.uid;
	sc.gid = sb.gid;
	sc.jail = sb.jail[0] ? sb.jail : NULL;
	sc.netns = sb.netns != 0;
	sc.debug = sb.debug != 0;
	char path[2 * CONF_PATH_MAX + 64];
	struct vm_conf vc = {
		.memlimit = (size_t)ruleset.conf.memlimit << 20,
		.budget_ms = 0,
		.traceback = ruleset.conf.traceback,
		.package_path = ruleset_package_path(path, sizeof(path)),
	};

	if (vm_init(&vc) < 0) {
		LOGE("cannot create the Lua state");
		ruleset_exit(1);
	}
	/* OpenSSL's lazy set-up happens now, unconfined (it sorts tables
	 * with qsort(), whose first large sort calls sysinfo(), which the
	 * filter refuses), when TLS is configured or may be: a -c file is
	 * evaluated later, inside the sandbox. Without either, the library
	 * is never set up. */
	if ((ruleset.conf.api_tls_cert[0] || ruleset.conf.rpc_tls_ca[0] ||
	     ruleset.conf.config_file[0]) &&
	    tlsconf_init() < 0) {
		LOGE("cannot initialise OpenSSL");
		ruleset_exit(1);
	}
	if (sandbox_apply(&sc, skipped, sizeof(skipped), err, sizeof(err)) <
	    0) {
		LOGE("sandbox: %s", err);
		ruleset_exit(1);
	}
	if (skipped[0])
		LOGN("sandbox: not applied: %s", skipped);
	if (!ruleset.conf.ruleset[0] && !ruleset.conf.config_file[0])
		ruleset_ready(); /* nothing to load: serve "no ruleset" */
}

int ruleset_main(void)
{
	lib_os_snapshot_env(); /* before anything reads the environment */
	log_init("ruleset", 2, true);
	chanev_log_setup();
	prctl(PR_SET_NAME, "neosocksd-rules");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	ruleset.base = event_base_new();
	if (ruleset.base == NULL || ruleset_parent_init(ruleset.base) < 0) {
		LOGE("cannot set up the parent channel");
		return 1;
	}
	event_base_dispatch(ruleset.base);
	return 0;
}
