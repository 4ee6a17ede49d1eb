/* state: the saved /ruleset/update records (see state.h).
 *
 * In memory, the list of updates to replay, in the order they were applied,
 * follows one rule (state_apply()): an update of the same ruleset or module
 * as the last entry replaces it (an identical one changes nothing); when
 * the list is full (256 entries, or 64 MiB of sources) the oldest entries
 * that a later one superseded are dropped to make room, and an update that
 * still does not fit is applied by the ruleset process but not kept.
 *
 * On disk (--state-dir/updates): "neosocksd-state 2\n", then one record
 * per update that changed the list, in order: a struct state_rec (with a
 * CRC-32 of itself and its source), then the source. Loading applies the
 * same rule to each record, so the list read back is the list that was in
 * memory. Records are appended (one write per record and one fsync for all
 * that wait), at most one save a second (STATE_SAVE_MS); superseded records
 * stay until the log is compacted: rewritten from memory to updates.tmp,
 * fsynced and renamed over it. That happens when they make up more than
 * half of the log (at most every STATE_COMPACT_MS; at once when the log
 * would outgrow STATE_LOG_MAX), at a clean stop, and at start for a log
 * that needs it. A crash in the middle of an append leaves a torn record
 * at the end: loading stops at the first record that is incomplete or
 * fails its CRC, keeps those before it, and moves the file as found to
 * updates.bad. Version 1 files (no CRC, always written whole) are read and
 * rewritten as version 2. */
#include "privsep/state.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include "common/log.h"
#include "common/monotime.h"
#include "privsep/parent.h"

#define STATE_FILE "updates"
#define STATE_TMP "updates.tmp"
#define STATE_BAD "updates.bad"
#define STATE_MAGIC_V1 "neosocksd-state 1\n"
#define STATE_MAGIC "neosocksd-state 2\n"
#define STATE_MAGIC_LEN (sizeof(STATE_MAGIC) - 1)
#define STATE_MAX_ENTRIES 256
#define STATE_MAX_BYTES (64u << 20) /* sources in the list */
#define STATE_LOG_MAX (2 * (uint64_t)STATE_MAX_BYTES)
#define STATE_SAVE_MS 1000     /* at most one save a second */
#define STATE_COMPACT_MS 10000 /* at most one compaction in 10 s */

/* One update, as on disk: this header, then len bytes of source. */
struct state_rec {
	uint32_t kind; /* enum update_kind */
	uint32_t len;
	char name[MSG_MODULE_NAME_MAX + 1];
	char chunkname[128];
	char pad[3];
	uint32_t crc; /* version 2: of this header (crc 0) and the source */
};
#define STATE_REC_V1 offsetof(struct state_rec, crc)

struct state_entry {
	struct state_rec rec;
	char *src;
};

static struct {
	int dfd;            /* --state-dir; -1 without */
	int logfd;          /* the log, to append to; -1: rewrite it */
	uint64_t log_bytes; /* its size */
	struct state_entry list[STATE_MAX_ENTRIES];
	int n;
	size_t src_bytes;
	/* changes not on disk yet, in order (copies) */
	struct state_entry *pend;
	int npend, pcap;
	size_t pend_bytes;
	bool rewrite; /* changes not kept in pend: rewrite from memory */
	int64_t last_save_ms, last_compact_ms;
	struct event *timer;
} saved = { .dfd = -1, .logfd = -1 };

/* ---- records ---- */

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
	if (r->len > MSG_LUA_SRC_MAX ||
	    !state_name_ok(r->chunkname, sizeof(r->chunkname), false))
		return false;
	if (r->kind == UPDATE_RULESET)
		return r->name[0] == '\0';
	if (r->kind == UPDATE_MODULE)
		return state_name_ok(r->name, sizeof(r->name), true);
	return false;
}

static uint32_t state_crc(const struct state_rec *r, const char *src)
{
	struct state_rec h = *r;
	uLong c;

	h.crc = 0;
	c = crc32(0L, (const Bytef *)&h, (uInt)sizeof(h));
	return (uint32_t)crc32(c, (const Bytef *)src, (uInt)r->len);
}

static uint64_t state_rec_bytes(const struct state_entry *e)
{
	return sizeof(e->rec) + e->rec.len;
}

/* What a compacted log of the list holds. */
static uint64_t state_live_bytes(void)
{
	uint64_t n = STATE_MAGIC_LEN;

	for (int i = 0; i < saved.n; i++)
		n += state_rec_bytes(&saved.list[i]);
	return n;
}

/* ---- the list ---- */

static bool state_same_key(const struct state_rec *a, const struct state_rec *b)
{
	return a->kind == b->kind && strcmp(a->name, b->name) == 0;
}

static bool state_same(const struct state_entry *a, const struct state_entry *b)
{
	return state_same_key(&a->rec, &b->rec) && a->rec.len == b->rec.len &&
	       strcmp(a->rec.chunkname, b->rec.chunkname) == 0 &&
	       memcmp(a->src, b->src, a->rec.len) == 0;
}

static void state_remove(int i)
{
	saved.src_bytes -= saved.list[i].rec.len;
	free(saved.list[i].src);
	memmove(&saved.list[i], &saved.list[i + 1],
		(size_t)(saved.n - i - 1) * sizeof(saved.list[0]));
	saved.n--;
}

static bool state_full(size_t len)
{
	return saved.n == STATE_MAX_ENTRIES ||
	       saved.src_bytes + len > STATE_MAX_BYTES;
}

/* Drop the oldest entries that a later one superseded until an entry of
 * len bytes fits. true when something was dropped. */
static bool state_make_room(size_t len)
{
	bool dropped = false;

	for (int i = 0; i < saved.n && state_full(len);) {
		bool superseded = false;

		for (int k = i + 1; k < saved.n && !superseded; k++)
			superseded = state_same_key(&saved.list[i].rec,
						    &saved.list[k].rec);
		if (superseded) {
			state_remove(i);
			dropped = true;
		} else {
			i++;
		}
	}
	return dropped;
}

/* Apply one update to the list; takes e->src. true when the list changed
 * (then the update is what the log must record). */
static bool state_apply(struct state_entry *e)
{
	bool changed = false;

	if (saved.n > 0 &&
	    state_same_key(&saved.list[saved.n - 1].rec, &e->rec)) {
		if (state_same(&saved.list[saved.n - 1], e)) {
			free(e->src);
			return false;
		}
		state_remove(saved.n - 1);
		changed = true;
	}
	changed |= state_make_room(e->rec.len);
	if (state_full(e->rec.len)) {
		LOG_RL(LOGL_ERROR, 10,
		       "--state-dir: more than %d updates or %u MiB saved; "
		       "this one is applied but not saved",
		       STATE_MAX_ENTRIES, STATE_MAX_BYTES >> 20);
		free(e->src);
		return changed;
	}
	saved.list[saved.n++] = *e;
	saved.src_bytes += e->rec.len;
	return true;
}

static void state_pend_clear(void)
{
	for (int i = 0; i < saved.npend; i++)
		free(saved.pend[i].src);
	saved.npend = 0;
	saved.pend_bytes = 0;
}

/* Keep a copy of a change for the next append (or give up the copies and
 * rewrite the log from memory, when they grow too big). */
static void state_pend_add(const struct state_entry *e)
{
	struct state_entry c = *e;

	if (saved.rewrite)
		return;
	if (saved.pend_bytes + e->rec.len > STATE_MAX_BYTES)
		goto rewrite;
	if (saved.npend == saved.pcap) {
		int ncap = saved.pcap ? 2 * saved.pcap : 16;
		struct state_entry *np =
			realloc(saved.pend, (size_t)ncap * sizeof(*np));

		if (np == NULL)
			goto rewrite;
		saved.pend = np;
		saved.pcap = ncap;
	}
	c.src = malloc(e->rec.len + 1u);
	if (c.src == NULL)
		goto rewrite;
	memcpy(c.src, e->src, e->rec.len);
	saved.pend[saved.npend++] = c;
	saved.pend_bytes += e->rec.len;
	return;
rewrite:
	state_pend_clear();
	saved.rewrite = true;
}

static void state_free_all(void)
{
	for (int i = 0; i < saved.n; i++)
		free(saved.list[i].src);
	saved.n = 0;
	saved.src_bytes = 0;
	state_pend_clear();
}

/* ---- writing ---- */

static int state_write_all(int fd, const void *p, size_t n)
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

static int state_write_rec(int fd, const struct state_entry *e)
{
	struct state_rec h = e->rec;

	h.crc = state_crc(&h, e->src);
	if (state_write_all(fd, &h, sizeof(h)) < 0 ||
	    state_write_all(fd, e->src, h.len) < 0)
		return -1;
	return 0;
}

/* Write the list to a new log and rename it over the old one. Only calls
 * relative to the directory opened at start (the parent's seccomp filter
 * allows writing there and nowhere else). */
static int state_compact(void)
{
	int fd, rc = 0, e;

	fd = openat(saved.dfd, STATE_TMP,
		    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		    0600);
	if (fd < 0)
		return -1;
	rc |= state_write_all(fd, STATE_MAGIC, STATE_MAGIC_LEN);
	for (int i = 0; i < saved.n && rc == 0; i++)
		rc |= state_write_rec(fd, &saved.list[i]);
	if (rc == 0)
		rc = fsync(fd);
	if (rc == 0)
		rc = renameat(saved.dfd, STATE_TMP, saved.dfd, STATE_FILE);
	if (rc < 0) {
		e = errno;
		close(fd);
		(void)unlinkat(saved.dfd, STATE_TMP, 0);
		errno = e;
		return -1;
	}
	(void)fsync(saved.dfd);
	if (saved.logfd >= 0)
		close(saved.logfd);
	saved.logfd = fd; /* now the log itself, positioned at its end */
	saved.log_bytes = state_live_bytes();
	saved.last_compact_ms = monotime_ms();
	saved.rewrite = false;
	state_pend_clear(); /* the list holds them */
	return 0;
}

/* Append the changes that wait, then one fsync. */
static int state_append(void)
{
	uint64_t bytes = 0;

	for (int i = 0; i < saved.npend; i++) {
		if (state_write_rec(saved.logfd, &saved.pend[i]) < 0)
			return -1;
		bytes += state_rec_bytes(&saved.pend[i]);
	}
	if (fsync(saved.logfd) < 0)
		return -1;
	saved.log_bytes += bytes;
	state_pend_clear();
	return 0;
}

/* Rewrite rather than append: no log to append to, a failed write before,
 * or superseded records over half of the log (within the rate), or a log
 * that would outgrow STATE_LOG_MAX. */
static bool state_should_compact(int64_t now)
{
	uint64_t after = saved.log_bytes, live = state_live_bytes();

	if (saved.rewrite || saved.logfd < 0)
		return true;
	for (int i = 0; i < saved.npend; i++)
		after += state_rec_bytes(&saved.pend[i]);
	if (after > STATE_LOG_MAX)
		return true;
	if (saved.last_compact_ms != 0 &&
	    now - saved.last_compact_ms < STATE_COMPACT_MS)
		return false;
	return after > live && after - live > live;
}

static void state_timer_cb(evutil_socket_t fd, short what, void *arg);

static void state_arm(int64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000),
			      (suseconds_t)(ms % 1000) * 1000 };

	if (saved.timer == NULL)
		saved.timer = evtimer_new(parent.base, state_timer_cb, NULL);
	if (saved.timer != NULL && !evtimer_pending(saved.timer, NULL))
		evtimer_add(saved.timer, &tv);
}

static void state_save(void)
{
	int64_t now = monotime_ms();
	int rc;

	if (saved.dfd < 0 || (!saved.rewrite && saved.npend == 0))
		return;
	saved.last_save_ms = now;
	rc = state_should_compact(now) ? state_compact() : state_append();
	if (rc == 0)
		return;
	LOG_RL(LOGL_ERROR, 10, "--state-dir %s: cannot save: %s; trying again",
	       parent.conf.state_dir, strerror(errno));
	/* a record may be half-written: the next save rewrites the log */
	state_pend_clear();
	saved.rewrite = true;
	state_arm(STATE_SAVE_MS);
}

static void state_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	state_save();
}

/* Save now, or when a second has passed since the last save. */
static void state_kick(void)
{
	int64_t wait = saved.last_save_ms + STATE_SAVE_MS - monotime_ms();

	if (saved.timer != NULL && evtimer_pending(saved.timer, NULL))
		return; /* it will take this change too */
	if (saved.last_save_ms == 0 || wait <= 0)
		state_save();
	else
		state_arm(wait);
}

/* ---- the interface ---- */

int state_dfd(void)
{
	return saved.dfd;
}

int state_persist(const struct msg *m)
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
		       "--state-dir: out of memory; the update is not kept");
		return 0;
	}
	memcpy(e.src, (const char *)m->data + sizeof(u), len);
	e.src[len] = '\0';
	if (saved.dfd >= 0)
		state_pend_add(&e);
	if (!state_apply(&e)) {
		/* nothing changed: nothing to write */
		if (saved.dfd >= 0 && saved.npend > 0 && !saved.rewrite) {
			saved.npend--;
			saved.pend_bytes -= saved.pend[saved.npend].rec.len;
			free(saved.pend[saved.npend].src);
		}
		return 0;
	}
	if (saved.dfd >= 0)
		state_kick();
	return 0;
}

void state_replay(struct chanev *ch)
{
	for (int i = 0; i < saved.n; i++) {
		const struct state_rec *r = &saved.list[i].rec;
		struct msg_update u = { .kind = r->kind, .seq = (uint32_t)i };
		struct iovec iov[2] = { { &u, sizeof(u) },
					{ saved.list[i].src, r->len } };

		memcpy(u.name, r->name, sizeof(u.name));
		memcpy(u.chunkname, r->chunkname, sizeof(u.chunkname));
		if (chanev_sendv(ch, MSG_R_UPDATE, 0, iov, 2, -1) < 0) {
			LOGE("cannot replay the saved updates: %s",
			     strerror(errno));
			return;
		}
	}
}

void state_clear(void)
{
	if (saved.n == 0)
		return;
	state_free_all();
	if (saved.dfd < 0) {
		LOGN("reload: updates made through the API dropped");
		return;
	}
	saved.rewrite = true;
	if (state_compact() < 0) {
		LOGE("--state-dir %s: cannot save: %s", parent.conf.state_dir,
		     strerror(errno));
		state_arm(STATE_SAVE_MS);
		return;
	}
	LOGN("reload: saved updates dropped");
}

void state_flush(void)
{
	if (saved.dfd < 0)
		return;
	if (saved.timer != NULL)
		evtimer_del(saved.timer);
	if (saved.rewrite || saved.npend > 0)
		state_save();
	if (!saved.rewrite && saved.logfd >= 0 &&
	    saved.log_bytes > state_live_bytes() && state_compact() < 0)
		LOGE("--state-dir %s: cannot compact: %s",
		     parent.conf.state_dir, strerror(errno));
}

/* ---- loading ---- */

/* Apply a log's records to the list. Returns where the good records end
 * (len when all are good); 0 for a file that is no state log; -1 out of
 * memory. */
static ssize_t state_parse(const char *p, size_t len, bool *v1)
{
	size_t off = STATE_MAGIC_LEN, hsz;

	if (len >= off && memcmp(p, STATE_MAGIC, off) == 0)
		*v1 = false;
	else if (len >= off && memcmp(p, STATE_MAGIC_V1, off) == 0)
		*v1 = true;
	else
		return 0;
	hsz = *v1 ? STATE_REC_V1 : sizeof(struct state_rec);
	while (off < len) {
		struct state_entry e;

		memset(&e, 0, sizeof(e));
		if (len - off < hsz)
			break;
		memcpy(&e.rec, p + off, hsz);
		if (!state_rec_ok(&e.rec) || len - off - hsz < e.rec.len ||
		    (!*v1 && e.rec.crc != state_crc(&e.rec, p + off + hsz)))
			break;
		e.rec.crc = 0;
		e.src = malloc(e.rec.len + 1u);
		if (e.src == NULL)
			return -1;
		memcpy(e.src, p + off + hsz, e.rec.len);
		e.src[e.rec.len] = '\0';
		(void)state_apply(&e);
		off += hsz + e.rec.len;
	}
	return (ssize_t)off;
}

/* --state-dir itself: created if missing, then it must be ours alone. */
static int state_open_dir(void)
{
	struct stat st;

	if (mkdir(parent.conf.state_dir, 0700) < 0 && errno != EEXIST) {
		LOGF("--state-dir %s: %s", parent.conf.state_dir,
		     strerror(errno));
		return -1;
	}
	saved.dfd = open(parent.conf.state_dir, O_RDONLY | O_DIRECTORY |
							O_NONBLOCK | O_CLOEXEC |
							O_NOFOLLOW);
	if (saved.dfd < 0 || fstat(saved.dfd, &st) < 0) {
		LOGF("--state-dir %s: %s", parent.conf.state_dir,
		     strerror(errno));
		return -1;
	}
	if ((st.st_mode & 0022) != 0 || st.st_uid != geteuid()) {
		LOGF("--state-dir %s: must be owned by this user and not "
		     "writable by group or others",
		     parent.conf.state_dir);
		return -1;
	}
	return 0;
}

/* The log as read is kept as updates.bad; say why. */
static void state_set_aside(const char *path, const char *why)
{
	if (renameat(saved.dfd, STATE_FILE, saved.dfd, STATE_BAD) == 0)
		LOGE("%s: %s; the file as found is now %s", path, why,
		     STATE_BAD);
	else
		LOGE("%s: %s", path, why);
}

int state_load(void)
{
	char path[CONF_PATH_MAX + 32], why[160];
	struct blob b = { 0 };
	bool v1 = false, compact = false;
	ssize_t good;

	if (!parent.conf.state_dir[0])
		return 0;
	if (state_open_dir() < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/%s", parent.conf.state_dir,
		 STATE_FILE);
	if (readfile_at(saved.dfd, STATE_FILE, STATE_LOG_MAX, &b, NULL) < 0) {
		LOGF("%s: %s", path, readfile_strerror(errno));
		return -1;
	}
	if (b.data == NULL)
		return 0; /* nothing saved yet: the first save creates it */
	good = state_parse(b.data, b.len, &v1);
	if (good < 0) {
		LOGF("%s: out of memory", path);
		free(b.data);
		return -1;
	}
	if (good == 0) {
		state_set_aside(path, "not a state log; starting without "
				      "saved updates");
	} else if ((size_t)good < b.len) {
		snprintf(why, sizeof(why),
			 "a torn or damaged record at byte %zd of %zu (a "
			 "save cut short?); the %d update%s before it %s kept",
			 good, b.len, saved.n, saved.n == 1 ? "" : "s",
			 saved.n == 1 ? "is" : "are");
		state_set_aside(path, why);
		compact = true;
	}
	if (saved.n > 0)
		LOGN("%s: %d saved update%s to apply", path, saved.n,
		     saved.n == 1 ? "" : "s");
	saved.log_bytes = b.len;
	if (good > 0 && !compact && !v1 && b.len <= 2 * state_live_bytes()) {
		saved.logfd = openat(saved.dfd, STATE_FILE,
				     O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		if (saved.logfd < 0 || lseek(saved.logfd, 0, SEEK_END) < 0)
			compact = true;
	} else if (good > 0) {
		compact = true; /* repaired, converted, or mostly superseded */
	}
	free(b.data);
	if (compact && state_compact() < 0) {
		LOGE("%s: cannot rewrite: %s; trying again at the next save",
		     path, strerror(errno));
		saved.rewrite = true;
	}
	return 0;
}
