/* parent_api: the parent's part of the REST API.
 *
 * The parent binds the API listener (TCP, or a unix socket given a mode
 * and an owner), reads the bearer token files (their contents go to the
 * ruleset process only, never to a log), tells the ruleset process the
 * daemon's status, and keeps every /ruleset/update the ruleset process
 * reports: replayed, in order, to each new ruleset process (a respawn keeps
 * them) and, with --state-dir, saved to a file (the parent is the only
 * process that writes files) so that a restart keeps them too. */
#include "privsep/parent.h"

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
#include "privsep/sandbox.h"

#define STATE_FILE "updates"
#define STATE_TMP "updates.tmp"
#define STATE_MAGIC "neosocksd-state 1\n"
#define STATE_MAX_ENTRIES 256
#define STATE_MAX_BYTES (64u << 20)

/* One saved update, as on disk: this header, then len bytes of source. */
struct state_rec {
	uint32_t kind; /* enum update_kind */
	uint32_t len;
	char name[MSG_MODULE_NAME_MAX + 1];
	char chunkname[128];
	char pad[3];
};

struct state_entry {
	struct state_rec rec;
	char *src;
};

static struct {
	int fd; /* the listener; -1 when there is no API */
	int state_dfd; /* --state-dir, opened at start; -1 without */
	char admin[MSG_TOKEN_MAX + 1], readonly[MSG_TOKEN_MAX + 1];
	bool listener_sent; /* to the current ruleset process */
	uint64_t started_ns;
	struct state_entry state[STATE_MAX_ENTRIES];
	int nstate;
	size_t state_bytes;
} PA = { .fd = -1, .state_dfd = -1 };

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- tokens ---- */

/* A token file holds one line: printable ASCII without spaces, 16..256
 * characters; a trailing newline is allowed. The file's contents are never
 * logged, only why it was refused. */
static int parent_read_token(const char *path, char *out, const char *opt)
{
	struct blob b = { 0 };
	size_t n;
	struct stat st;

	out[0] = '\0';
	if (!path[0])
		return 0;
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

	if (parent_read_token(P.conf.api_token_file, admin,
			      "--api-token-file") < 0 ||
	    parent_read_token(P.conf.api_ro_token_file, ro,
			      "--api-readonly-token-file") < 0)
		rc = -1;
	else if (admin[0] && strcmp(admin, ro) == 0) {
		LOGE("--api-readonly-token-file holds the admin token");
		rc = -1;
	}
	if (rc == 0) {
		memcpy(PA.admin, admin, sizeof(admin));
		memcpy(PA.readonly, ro, sizeof(ro));
	}
	explicit_bzero(admin, sizeof(admin));
	explicit_bzero(ro, sizeof(ro));
	return rc;
}

static void parent_api_send_tokens(void)
{
	struct msg_tokens t;

	if (PA.fd < 0 || !P.ruleset.running || !P.ruleset.ch.open)
		return;
	memset(&t, 0, sizeof(t));
	memcpy(t.admin, PA.admin, sizeof(t.admin));
	memcpy(t.readonly, PA.readonly, sizeof(t.readonly));
	if (chanev_send(&P.ruleset.ch, MSG_R_TOKENS, 0, &t, sizeof(t), -1) < 0)
		LOGE("cannot hand the API tokens over");
	explicit_bzero(&t, sizeof(t));
}

/* SIGHUP: token files are read again (rotation without a restart). */
void parent_api_reload(void)
{
	if (PA.fd < 0)
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
	if (P.conf.api_owner[0] &&
	    cli_parse_user(P.conf.api_owner, &uid, &gid, why, sizeof(why)) <
		    0) {
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
	if (rc < 0 || chmod(path, (mode_t)P.conf.api_mode) < 0 ||
	    ((uid != (unsigned)-1 || gid != (unsigned)-1) &&
	     chown(path, uid, gid) < 0) ||
	    listen(fd, SOMAXCONN) < 0) {
		LOGF("listen on %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	LOGN("listen: %s (api, mode %04o)", path, (unsigned)P.conf.api_mode);
	return fd;
}

/* "--api 127.0.0.1:0": the address the front is told (it refuses to dial
 * the API for proxy clients) names the port the kernel chose. */
static void parent_api_bound_port(void)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char buf[sizeof(P.conf.restapi)]; /* an IP literal and a port fit */
	size_t n = strlen(P.conf.restapi);

	if (n < 2 || strcmp(P.conf.restapi + n - 2, ":0") != 0)
		return;
	if (getsockname(PA.fd, (struct sockaddr *)&ss, &len) == 0 &&
	    addr_format_sockaddr((struct sockaddr *)&ss, buf, sizeof(buf)) > 0)
		snprintf(P.conf.restapi, sizeof(P.conf.restapi), "%s", buf);
}

int parent_api_bind(void)
{
	if (!P.conf.restapi[0])
		return 0;
	if (parent_api_read_tokens() < 0)
		return -1;
	if (P.conf.restapi[0] == '/') {
		PA.fd = parent_api_bind_unix(P.conf.restapi);
	} else {
		if (parent_bind(P.conf.restapi, LISTENER_API) < 0)
			return -1;
		/* the ruleset process owns it; the front never gets it */
		PA.fd = P.ls[--P.nls].fd;
		parent_api_bound_port();
	}
	if (PA.fd < 0)
		return -1;
	if (!PA.admin[0])
		LOGW("--api %s: no --api-token-file; anyone who can connect "
		     "may replace the ruleset",
		     P.conf.restapi);
	parent_api_send_listener();
	return 0;
}

void parent_api_send_listener(void)
{
	struct msg_listener ml = { .kind = LISTENER_API };
	int fd;

	if (PA.fd < 0 || PA.listener_sent || !P.ruleset.running ||
	    !P.ruleset.ch.open)
		return;
	parent_api_send_tokens();
	/* the channel owns the copy from here, sent or not */
	fd = fcntl(PA.fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0 || chanev_send(&P.ruleset.ch, MSG_R_LISTENER, 0, &ml,
				  sizeof(ml), fd) < 0) {
		LOGE("cannot hand the API listener over: %s", strerror(errno));
		return;
	}
	PA.listener_sent = true;
}

void parent_api_close(void)
{
	if (PA.fd >= 0)
		close(PA.fd);
	PA.fd = -1;
}

/* ---- status ---- */

void parent_api_status(void)
{
	struct msg_status st = {
		.started_ns = PA.started_ns,
		.restarts_front = P.front.restarts,
		.restarts_ruleset = P.ruleset.restarts,
		.sandbox_parent = sandbox_state(),
	};

	if (P.ruleset.running && P.ruleset.ch.open)
		chanev_send(&P.ruleset.ch, MSG_R_STATUS, 0, &st, sizeof(st),
			    -1);
}

/* ---- --state-dir ---- */

/* A NUL-terminated string within cap; for a module, a valid name. */
static bool state_name_ok(const char *s, size_t cap, bool module)
{
	const char *end = memchr(s, '\0', cap);

	if (end == NULL)
		return false;
	return !module || msg_module_name_ok(s, (size_t)(end - s), true);
}

static bool state_rec_ok(const struct state_rec *r)
{
	if (r->kind == UPDATE_RULESET)
		return r->name[0] == '\0' &&
		       state_name_ok(r->chunkname, sizeof(r->chunkname),
				     false) &&
		       r->len <= MSG_LUA_SRC_MAX;
	if (r->kind == UPDATE_MODULE)
		return state_name_ok(r->name, sizeof(r->name), true) &&
		       state_name_ok(r->chunkname, sizeof(r->chunkname),
				     false) &&
		       r->len <= MSG_LUA_SRC_MAX;
	return false;
}

static void state_free_all(void)
{
	for (int i = 0; i < PA.nstate; i++)
		free(PA.state[i].src);
	PA.nstate = 0;
	PA.state_bytes = 0;
}

int parent_api_state_dfd(void)
{
	return PA.state_dfd;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Write the whole list to a new file and rename it over the old one. Only
 * calls relative to the directory opened at start (the parent's seccomp
 * filter allows writing there and nowhere else). */
static int state_save(void)
{
	int fd, rc = 0;

	fd = openat(PA.state_dfd, STATE_TMP,
		    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	rc |= write_all(fd, STATE_MAGIC, sizeof(STATE_MAGIC) - 1);
	for (int i = 0; i < PA.nstate && rc == 0; i++) {
		rc |= write_all(fd, &PA.state[i].rec, sizeof(PA.state[i].rec));
		rc |= write_all(fd, PA.state[i].src, PA.state[i].rec.len);
	}
	if (rc == 0)
		rc = fsync(fd);
	if (close(fd) < 0)
		rc = -1;
	if (rc == 0)
		rc = renameat(PA.state_dfd, STATE_TMP, PA.state_dfd, STATE_FILE);
	if (rc < 0) {
		int e = errno;

		(void)unlinkat(PA.state_dfd, STATE_TMP, 0);
		errno = e;
		return -1;
	}
	(void)fsync(PA.state_dfd);
	return 0;
}

/* Parse a state file's contents into the list; -1 if malformed. */
static int state_parse(const char *p, size_t len)
{
	size_t off = sizeof(STATE_MAGIC) - 1;

	if (len < off || memcmp(p, STATE_MAGIC, off) != 0)
		return -1;
	while (off < len) {
		struct state_entry *e;
		struct state_rec r;

		if (len - off < sizeof(r) || PA.nstate == STATE_MAX_ENTRIES)
			return -1;
		memcpy(&r, p + off, sizeof(r));
		off += sizeof(r);
		if (!state_rec_ok(&r) || len - off < r.len)
			return -1;
		e = &PA.state[PA.nstate];
		e->rec = r;
		e->src = malloc(r.len + 1u);
		if (e->src == NULL)
			return -1;
		memcpy(e->src, p + off, r.len);
		e->src[r.len] = '\0';
		PA.nstate++;
		PA.state_bytes += r.len;
		off += r.len;
	}
	return 0;
}

int parent_api_state_load(void)
{
	char path[CONF_PATH_MAX + 32];
	struct blob b = { 0 };
	struct stat st;
	int n;

	PA.started_ns = mono_ns();
	if (!P.conf.state_dir[0])
		return 0;
	if (mkdir(P.conf.state_dir, 0700) < 0 && errno != EEXIST) {
		LOGF("--state-dir %s: %s", P.conf.state_dir, strerror(errno));
		return -1;
	}
	PA.state_dfd = open(P.conf.state_dir, O_RDONLY | O_DIRECTORY |
						      O_NONBLOCK | O_CLOEXEC |
						      O_NOFOLLOW);
	if (PA.state_dfd < 0 || fstat(PA.state_dfd, &st) < 0) {
		LOGF("--state-dir %s: %s", P.conf.state_dir, strerror(errno));
		return -1;
	}
	if ((st.st_mode & 0022) != 0 || st.st_uid != geteuid()) {
		LOGF("--state-dir %s: must be owned by this user and not "
		     "writable by group or others",
		     P.conf.state_dir);
		return -1;
	}
	n = snprintf(path, sizeof(path), "%s/%s", P.conf.state_dir,
		     STATE_FILE);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		LOGF("--state-dir: path too long");
		return -1;
	}
	if (readfile_at(PA.state_dfd, STATE_FILE, STATE_MAX_BYTES + 64u * 1024,
			&b, NULL) < 0) {
		LOGF("%s: %s", path, readfile_strerror(errno));
		return -1;
	}
	if (b.data == NULL)
		return 0; /* nothing saved yet */
	if (state_parse(b.data, b.len) < 0) {
		state_free_all();
		if (renameat(PA.state_dfd, STATE_FILE, PA.state_dfd,
			     "updates.bad") == 0)
			LOGE("%s is damaged; moved to updates.bad, starting "
			     "without saved updates",
			     path);
		else
			LOGE("%s is damaged; starting without saved updates",
			     path);
	} else if (PA.nstate > 0) {
		LOGN("%s: %d saved update%s to apply", path, PA.nstate,
		     PA.nstate == 1 ? "" : "s");
	}
	free(b.data);
	return 0;
}

/* After the ruleset process got its base ruleset: the saved updates, in
 * the order they were applied. */
static void parent_api_replay(void)
{
	for (int i = 0; i < PA.nstate; i++) {
		const struct state_rec *r = &PA.state[i].rec;
		struct msg_update u = { .kind = r->kind, .seq = (uint32_t)i };
		struct iovec iov[2] = { { &u, sizeof(u) },
					{ PA.state[i].src, r->len } };

		memcpy(u.name, r->name, sizeof(u.name));
		memcpy(u.chunkname, r->chunkname, sizeof(u.chunkname));
		if (chanev_sendv(&P.ruleset.ch, MSG_R_UPDATE, 0, iov, 2, -1) <
		    0) {
			LOGE("cannot replay the saved updates");
			return;
		}
	}
}

static bool state_same_key(const struct state_rec *a, const struct state_rec *b)
{
	return a->kind == b->kind && strcmp(a->name, b->name) == 0;
}

static void state_remove(int i)
{
	PA.state_bytes -= PA.state[i].rec.len;
	free(PA.state[i].src);
	memmove(&PA.state[i], &PA.state[i + 1],
		(size_t)(PA.nstate - i - 1) * sizeof(PA.state[0]));
	PA.nstate--;
}

/* Make room for an entry of len bytes by dropping the oldest updates that a
 * later update of the same ruleset or module replaced. */
static bool state_make_room(size_t len)
{
	for (int i = 0; i < PA.nstate &&
			(PA.nstate == STATE_MAX_ENTRIES ||
			 PA.state_bytes + len > STATE_MAX_BYTES);) {
		bool superseded = false;

		for (int k = i + 1; k < PA.nstate && !superseded; k++)
			superseded = state_same_key(&PA.state[i].rec,
						    &PA.state[k].rec);
		if (superseded)
			state_remove(i);
		else
			i++;
	}
	return PA.nstate < STATE_MAX_ENTRIES &&
	       PA.state_bytes + len <= STATE_MAX_BYTES;
}

/* The ruleset process applied an update: keep it (for a respawned ruleset
 * process) and, with --state-dir, save it (for a restart). The log replays
 * exactly what was applied, in order, so a module that used another one
 * while loading sees the same version again. An update of the same ruleset
 * or module as the one just before it replaces that one; when the log is
 * full, the oldest updates that a later one replaced are dropped. */
int parent_api_persist(const struct msg *m)
{
	struct msg_update u;
	struct state_entry e;
	size_t len = m->len - sizeof(u);

	memcpy(&u, m->data, sizeof(u));
	memset(&e, 0, sizeof(e));
	e.rec.kind = u.kind;
	e.rec.len = (uint32_t)len;
	memcpy(e.rec.name, u.name, sizeof(e.rec.name));
	memcpy(e.rec.chunkname, u.chunkname, sizeof(e.rec.chunkname));
	if (!state_rec_ok(&e.rec))
		return -1;
	e.src = malloc(len + 1);
	if (e.src == NULL) {
		LOG_RL(LOGL_ERROR, 10,
		       "--state-dir: out of memory; the update is not saved");
		return 0;
	}
	memcpy(e.src, (const char *)m->data + sizeof(u), len);
	e.src[len] = '\0';
	if (PA.nstate > 0 &&
	    state_same_key(&PA.state[PA.nstate - 1].rec, &e.rec))
		state_remove(PA.nstate - 1);
	if (!state_make_room(len)) {
		LOG_RL(LOGL_ERROR, 10,
		       "--state-dir: more than %d updates or %u MiB saved; "
		       "this one is applied but not saved",
		       STATE_MAX_ENTRIES, STATE_MAX_BYTES >> 20);
		free(e.src);
	} else {
		PA.state[PA.nstate++] = e;
		PA.state_bytes += len;
	}
	if (PA.state_dfd >= 0 && state_save() < 0)
		LOG_RL(LOGL_ERROR, 10, "--state-dir %s: cannot save: %s",
		       P.conf.state_dir, strerror(errno));
	return 0;
}

/* SIGHUP loaded the files again: they are the truth now. */
void parent_api_state_clear(void)
{
	if (PA.nstate == 0)
		return;
	state_free_all();
	if (PA.state_dfd < 0)
		LOGN("reload: updates made through the API dropped");
	else if (state_save() < 0)
		LOGE("--state-dir %s: cannot save: %s", P.conf.state_dir,
		     strerror(errno));
	else
		LOGN("reload: saved updates dropped");
}

/* A new ruleset process: its status, then the listener and tokens. */
void parent_api_ruleset_spawned(void)
{
	PA.listener_sent = false;
	parent_api_status();
	parent_api_replay();
	parent_api_send_listener();
}
