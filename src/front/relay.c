#include "front/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"

enum { CHUNK_NONE = 0, CHUNK_PIPE = 1, CHUNK_BUF = 2 };

#define RELAY_POOL_MAX 64 /* idle pipes / buffers kept */
#define RELAY_ROUNDS 8    /* read+write rounds per wakeup (fairness) */

struct relay_pipe {
	struct relay_pipe *next;
	int rfd, wfd;
};

struct relay_buf {
	struct relay_buf *next;
	uint32_t off; /* first unsent byte */
	uint8_t data[RELAY_BUF_SIZE];
};

static bool relay_splice;
static struct relay_pipe *pipe_pool;
static struct relay_buf *buf_pool;
static struct relay_stats stats;

void relay_setup(bool use_splice)
{
	relay_splice = use_splice;
}

void relay_cleanup(void)
{
	while (pipe_pool != NULL) {
		struct relay_pipe *p = pipe_pool;
		pipe_pool = p->next;
		close(p->rfd);
		close(p->wfd);
		free(p);
	}
	while (buf_pool != NULL) {
		struct relay_buf *b = buf_pool;
		buf_pool = b->next;
		free(b);
	}
	stats.pipes_idle = stats.bufs_idle = 0;
}

const struct relay_stats *relay_stats(void)
{
	return &stats;
}

static struct relay_pipe *pipe_get(void)
{
	struct relay_pipe *p = pipe_pool;
	int fds[2];

	if (p != NULL) {
		pipe_pool = p->next;
		stats.pipes_idle--;
		return p;
	}
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
		stats.pipe_failures++;
		LOG_RL(LOGL_WARN, 10, "relay: pipe2: %s; using buffers",
		       strerror(errno));
		return NULL;
	}
	p = malloc(sizeof(*p));
	if (p == NULL) {
		close(fds[0]);
		close(fds[1]);
		return NULL;
	}
	/* a larger pipe means fewer syscalls per byte; failure is harmless */
	(void)fcntl(fds[1], F_SETPIPE_SZ, (int)RELAY_PIPE_SIZE);
	p->rfd = fds[0];
	p->wfd = fds[1];
	stats.pipes_created++;
	return p;
}

static struct relay_buf *buf_get(void)
{
	struct relay_buf *b = buf_pool;

	if (b != NULL) {
		buf_pool = b->next;
		stats.bufs_idle--;
	} else {
		b = malloc(sizeof(*b));
		if (b == NULL)
			return NULL;
	}
	b->off = 0;
	return b;
}

void relay_release(struct relay_dir *d)
{
	if (d->kind == CHUNK_PIPE) {
		struct relay_pipe *p = d->chunk;
		if (d->pending == 0 && stats.pipes_idle < RELAY_POOL_MAX) {
			p->next = pipe_pool;
			pipe_pool = p;
			stats.pipes_idle++;
		} else {
			close(p->rfd);
			close(p->wfd);
			free(p);
		}
	} else if (d->kind == CHUNK_BUF) {
		struct relay_buf *b = d->chunk;
		if (stats.bufs_idle < RELAY_POOL_MAX) {
			b->next = buf_pool;
			buf_pool = b;
			stats.bufs_idle++;
		} else {
			free(b);
		}
	}
	d->chunk = NULL;
	d->kind = CHUNK_NONE;
	d->pending = 0;
}

static int relay_acquire(struct relay_dir *d)
{
	if (relay_splice && d->bulk) {
		d->chunk = pipe_get();
		if (d->chunk != NULL) {
			d->kind = CHUNK_PIPE;
			return 0;
		}
	}
	d->chunk = buf_get();
	if (d->chunk == NULL) {
		errno = ENOMEM;
		return -1;
	}
	d->kind = CHUNK_BUF;
	return 0;
}

int relay_preload(struct relay_dir *d, const void *data, size_t len)
{
	struct relay_buf *b;

	if (len == 0)
		return 0;
	if (len > RELAY_BUF_SIZE || d->kind != CHUNK_NONE)
		return -1;
	b = buf_get();
	if (b == NULL)
		return -1;
	memcpy(b->data, data, len);
	d->chunk = b;
	d->kind = CHUNK_BUF;
	d->pending = (uint32_t)len;
	return 0;
}

/* How much one read asks for. */
static size_t relay_chunk(const struct relay_dir *d)
{
	return d->kind == CHUNK_PIPE ? RELAY_PIPE_SIZE : RELAY_BUF_SIZE;
}

static ssize_t relay_in(struct relay_dir *d, int src, size_t want)
{
	ssize_t n;

	if (d->kind == CHUNK_PIPE) {
		struct relay_pipe *p = d->chunk;
		n = splice(src, NULL, p->wfd, NULL, want,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	} else {
		struct relay_buf *b = d->chunk;
		b->off = 0;
		n = recv(src, b->data, want, 0);
	}
	return n;
}

static ssize_t relay_out(struct relay_dir *d, int dst)
{
	ssize_t n;

	if (d->kind == CHUNK_PIPE) {
		struct relay_pipe *p = d->chunk;
		n = splice(p->rfd, NULL, dst, NULL, d->pending,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	} else {
		struct relay_buf *b = d->chunk;
		n = send(dst, b->data + b->off, d->pending, MSG_NOSIGNAL);
		if (n > 0)
			b->off += (uint32_t)n;
	}
	return n;
}

int relay_move(struct relay_dir *d, int src, int dst, uint64_t *budget,
	       uint64_t *moved)
{
	bool drained = false;

	*moved = 0;
	for (int round = 0; round < RELAY_ROUNDS && !drained; round++) {
		ssize_t n;

		if (d->pending == 0) {
			size_t want;

			if (d->eof || *budget == 0)
				break;
			/* the buffer filled up last time: a pipe from now on */
			if (d->kind == CHUNK_BUF && d->bulk && relay_splice)
				relay_release(d);
			if (d->chunk == NULL && relay_acquire(d) < 0)
				return -1;
			want = relay_chunk(d);
			if (want > *budget)
				want = (size_t)*budget;
			n = relay_in(d, src, want);
			if (n == 0) {
				d->eof = true;
				break;
			}
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				return -1;
			}
			d->pending = (uint32_t)n;
			*budget -= (uint64_t)n;
			if (d->kind == CHUNK_BUF && (size_t)n == RELAY_BUF_SIZE)
				d->bulk = true;
			/* a short read emptied the socket for now; the level-
			 * triggered event says when there is more */
			drained = (size_t)n < want;
		}
		n = relay_out(d, dst);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0; /* wait for dst to drain */
			return -1;
		}
		d->pending -= (uint32_t)n;
		*moved += (uint64_t)n;
		if (d->pending > 0)
			return 0;
	}
	if (d->pending == 0 && d->chunk != NULL)
		relay_release(d);
	return 0;
}

/* A direction's end: SHUT_WR once its source is at EOF and all is out. */
static int relay_finish(struct relay_dir *d, int dst, bool other_done)
{
	if (d->eof && d->pending == 0 && !d->shut) {
		if (!other_done && shutdown(dst, SHUT_WR) < 0 &&
		    errno != ENOTCONN)
			return -1;
		d->shut = true;
	}
	return 0;
}

int relay_flow(struct relay_dir *d, int src, int dst, bool other_done,
	       struct relay_ready *rdy, uint64_t *moved)
{
	int round;

	*moved = 0;
	for (round = 0; round < RELAY_ROUNDS; round++) {
		ssize_t n;

		if (d->pending == 0) {
			if (d->eof || !rdy->src)
				break;
			if (d->kind == CHUNK_BUF && d->bulk && relay_splice)
				relay_release(d);
			if (d->chunk == NULL && relay_acquire(d) < 0)
				return -1;
			n = relay_in(d, src, relay_chunk(d));
			if (n == 0) {
				d->eof = true;
				break;
			}
			if (n < 0) {
				if (errno == EAGAIN)
					rdy->src = false;
				else if (errno != EINTR)
					return -1;
				break;
			}
			d->pending = (uint32_t)n;
			/* a short recv() emptied the socket: the next bytes
			 * raise an edge; a short splice() may only have
			 * filled the pipe's slots, so it proves nothing */
			if (d->kind == CHUNK_BUF) {
				if ((size_t)n == RELAY_BUF_SIZE)
					d->bulk = true;
				else if (!rdy->hup)
					rdy->src = false;
			}
		}
		if (!rdy->dst)
			break;
		n = relay_out(d, dst);
		if (n < 0) {
			if (errno == EAGAIN)
				rdy->dst = false;
			else if (errno != EINTR)
				return -1;
			break;
		}
		d->pending -= (uint32_t)n;
		*moved += (uint64_t)n;
		/* a short send() or splice() filled the socket (both write
		 * until the socket says EAGAIN): writable again raises an
		 * edge */
		if (d->pending > 0) {
			rdy->dst = false;
			break;
		}
	}
	if (d->pending == 0 && d->chunk != NULL)
		relay_release(d);
	if (relay_finish(d, dst, other_done) < 0)
		return -1;
	/* out of rounds with work left: the caller comes back later */
	return round == RELAY_ROUNDS &&
	       (d->pending > 0 ? rdy->dst : !d->eof && rdy->src);
}

