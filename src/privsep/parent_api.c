/* parent_api: the parent's part of the REST API.
 *
 * The parent binds the API listener (TCP, or a unix socket given a mode
 * and an owner), reads the bearer token files (their contents go to the
 * ruleset process only, never to a log), tells the ruleset process the
 * daemon's status, and hands each new ruleset process the updates kept by
 * state.c. */
#include "privsep/parent_api.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/log.h"
#include "common/monotime.h"
#include "privsep/parent.h"
#include "privsep/parent_tls.h"
#include "privsep/parent_front.h"
#include "privsep/sandbox.h"
#include "privsep/state.h"

static struct {
	int fd; /* the listener; -1 when there is no API */
	char admin[MSG_TOKEN_MAX + 1], readonly[MSG_TOKEN_MAX + 1];
	bool listener_sent; /* to the current ruleset process */
	uint64_t started_ns;
} parent_api = { .fd = -1 };

/* ---- tokens ---- */

/* A token file holds one line: printable ASCII without spaces, 16..256
 * characters; a trailing newline is allowed. The file's contents are never
 * logged, only why it was refused. */
const char *parent_api_credential_path(const char *path, char *buf,
				       size_t cap)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	int n;

	if (strchr(path, '/') != NULL || dir == NULL || dir[0] != '/')
		return path;
	n = snprintf(buf, cap, "%s/%s", dir, path);
	return n > 0 && (size_t)n < cap ? buf : path;
}

static int parent_read_token(const char *given, char *out, const char *opt)
{
	struct blob b = { 0 };
	size_t n;
	struct stat st;
	char full[CONF_PATH_MAX + 256];
	const char *path;

	out[0] = '\0';
	if (!given[0])
		return 0;
	path = parent_api_credential_path(given, full, sizeof(full));
	if (readfile_at(AT_FDCWD, path, MSG_TOKEN_MAX + 2, &b, &st) < 0 ||
	    b.data == NULL) {
		/* absent: readfile_at() left ENOENT in errno */
		LOGE("%s %s: %s", opt, path, readfile_strerror(errno));
		free(b.data);
		return -1;
	}
	n = b.len;
	while (n > 0 && (b.data[n - 1] == '\n' || b.data[n - 1] == '\r'))
		n--;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)b.data[i];

		if (ch <= ' ' || ch >= 0x7f) {
			n = 0; /* refused below without echoing anything */
			break;
		}
	}
	if (n < 16 || n > MSG_TOKEN_MAX) {
		LOGE("%s %s: the token must be one line of 16 to %d printable "
		     "characters without spaces",
		     opt, path, MSG_TOKEN_MAX);
		explicit_bzero(b.data, b.len);
		free(b.data);
		return -1;
	}
	memcpy(out, b.data, n);
	out[n] = '\0';
	explicit_bzero(b.data, b.len);
	free(b.data);
	if ((st.st_mode & 0077) != 0)
		LOGW("%s %s: readable by group or others (mode %04o)", opt,
		     path, (unsigned)(st.st_mode & 07777));
	return 0;
}

int parent_api_read_tokens(void)
{
	char admin[MSG_TOKEN_MAX + 1], ro[MSG_TOKEN_MAX + 1];
	int rc = 0;

	if (parent_read_token(parent.conf.api_token_file, admin,
			      "--api-token-file") < 0 ||
	    parent_read_token(parent.conf.api_ro_token_file, ro,
			      "--api-readonly-token-file") < 0)
		rc = -1;
	else if (admin[0] && strcmp(admin, ro) == 0) {
		LOGE("--api-readonly-token-file holds the admin token");
		rc = -1;
	}
	if (rc == 0) {
		memcpy(parent_api.admin, admin, sizeof(admin));
		memcpy(parent_api.readonly, ro, sizeof(ro));
	}
	explicit_bzero(admin, sizeof(admin));
	explicit_bzero(ro, sizeof(ro));
	return rc;
}

static void parent_api_send_tokens(void)
{
	struct msg_tokens t;

	if (parent_api.fd < 0 || !parent.ruleset.running ||
	    !parent.ruleset.ch.open)
		return;
	memset(&t, 0, sizeof(t));
	memcpy(t.admin, parent_api.admin, sizeof(t.admin));
	memcpy(t.readonly, parent_api.readonly, sizeof(t.readonly));
	if (chanev_send(&parent.ruleset.ch, MSG_R_TOKENS, 0, &t, sizeof(t),
			-1) < 0)
		LOGE("cannot hand the API tokens over");
	explicit_bzero(&t, sizeof(t));
}

/* SIGHUP: token files are read again (rotation without a restart). */
void parent_api_reload(void)
{
	if (parent_api.fd < 0)
		return;
	if (parent_api_read_tokens() < 0) {
		LOGE("reload: the previous API tokens stay");
		return;
	}
	parent_api_send_tokens();
}

/* ---- the listener ---- */

static int parent_api_bind_unix(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	unsigned uid = (unsigned)-1, gid = (unsigned)-1;
	char why[256];
	mode_t old_mask;
	int fd, rc;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		LOGF("--api %s: path too long for a unix socket", path);
		return -1;
	}
	if (parent.conf.api_owner[0] &&
	    cli_parse_user(parent.conf.api_owner, &uid, &gid, why,
			   sizeof(why)) < 0) {
		LOGF("--api-owner: %s", why);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	/* a socket left by an earlier run; never remove anything else */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			LOGF("--api %s: exists and is not a socket", path);
			return -1;
		}
		(void)unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		LOGF("socket: %s", strerror(errno));
		return -1;
	}
	/* created owner-only, then given its mode and owner: nobody else
	 * can connect in between */
	old_mask = umask(0177);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	(void)umask(old_mask);
	if (rc < 0 || chmod(path, (mode_t)parent.conf.api_mode) < 0 ||
	    ((uid != (unsigned)-1 || gid != (unsigned)-1) &&
	     chown(path, uid, gid) < 0) ||
	    listen(fd, SOMAXCONN) < 0) {
		LOGF("listen on %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	LOGN("listen: %s (api, mode %04o)", path,
	     (unsigned)parent.conf.api_mode);
	return fd;
}

/* "--api 127.0.0.1:0": the address the front is told (it refuses to dial
 * the API for proxy clients) names the port the kernel chose. */
static void parent_api_bound_port(void)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char buf[sizeof(
		parent.conf.restapi)]; /* an IP literal and a port fit */
	size_t n = strlen(parent.conf.restapi);

	if (n < 2 || strcmp(parent.conf.restapi + n - 2, ":0") != 0)
		return;
	if (getsockname(parent_api.fd, (struct sockaddr *)&ss, &len) == 0 &&
	    addr_format_sockaddr((struct sockaddr *)&ss, buf, sizeof(buf)) > 0)
		snprintf(parent.conf.restapi, sizeof(parent.conf.restapi), "%s",
			 buf);
}

int parent_api_bind(void)
{
	if (!parent.conf.restapi[0])
		return 0;
	if (parent_api_read_tokens() < 0)
		return -1;
	if (parent.conf.restapi[0] == '/') {
		parent_api.fd = parent_api_bind_unix(parent.conf.restapi);
	} else {
		if (parent_bind(parent.conf.restapi, LISTENER_API) < 0)
			return -1;
		/* the ruleset process owns it; the front never gets it */
		parent_api.fd = parent.ls[--parent.nls].fd[0];
		parent_api_bound_port();
	}
	if (parent_api.fd < 0)
		return -1;
	if (!parent_api.admin[0] && !parent.conf.api_tls_client_ca[0])
		LOGW("--api %s: no --api-token-file; anyone who can connect "
		     "may replace the ruleset",
		     parent.conf.restapi);
	else if (parent_api.admin[0] && !parent.conf.api_tls_cert[0] &&
		 !config_api_local(parent.conf.restapi))
		LOGW("--api %s: plain HTTP on an address that is not "
		     "loopback: the bearer token crosses the network in the "
		     "clear (serve the API over TLS: --api-tls-cert, "
		     "--api-tls-key)",
		     parent.conf.restapi);
	parent_api_send_listener();
	return 0;
}

void parent_api_send_listener(void)
{
	struct msg_listener ml = { .kind = LISTENER_API };
	int fd;

	if (parent_api.fd < 0 || parent_api.listener_sent ||
	    !parent.ruleset.running || !parent.ruleset.ch.open)
		return;
	parent_api_send_tokens();
	/* the channel owns the copy from here, sent or not */
	fd = fcntl(parent_api.fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0 || chanev_send(&parent.ruleset.ch, MSG_R_LISTENER, 0, &ml,
				  sizeof(ml), fd) < 0) {
		LOGE("cannot hand the API listener over: %s", strerror(errno));
		return;
	}
	parent_api.listener_sent = true;
}

void parent_api_close(void)
{
	if (parent_api.fd >= 0)
		close(parent_api.fd);
	parent_api.fd = -1;
}

/* ---- status ---- */

void parent_api_status(void)
{
	struct msg_status st = {
		.started_ns = parent_api.started_ns,
		.restarts_front = parent_fronts_restarts(),
		.restarts_ruleset = parent.ruleset.restarts,
		.sandbox_parent = sandbox_state(),
		.workers = (uint32_t)parent.nfronts,
	};

	for (int i = 0; i < parent.nfronts; i++)
		st.restarts_worker[i] = parent.fronts[i].restarts;

	if (parent.ruleset.running && parent.ruleset.ch.open)
		chanev_send(&parent.ruleset.ch, MSG_R_STATUS, 0, &st,
			    sizeof(st), -1);
}

/* A new ruleset process: its status, the saved updates, then the
 * listener and tokens. */
void parent_api_ruleset_spawned(void)
{
	parent_api.listener_sent = false;
	parent_api_status();
	parent_tls_send(); /* before the listener: no plain-text window */
	state_replay(&parent.ruleset.ch);
	parent_api_send_listener();
}

void parent_api_init(void)
{
	parent_api.started_ns = (uint64_t)monotime_ns();
}
