/* relay: move bytes one way between two sockets, through a bounded buffer
 * while transfers are small, and with splice(2) through a pipe once a read
 * fills the buffer (bulk: a pipe moves pages instead of copying them, but
 * costs more than a copy for a few bytes); buffers only with --no-pipe.
 *
 * A direction holds a pipe or a buffer only while bytes are in flight:
 * both come from small pools and go back as soon as the direction is
 * drained, so an idle tunnel holds nothing but its two sockets. At most one
 * pipe (RELAY_PIPE_SIZE) or one buffer (RELAY_BUF_SIZE) is in flight per
 * direction: a slow reader stops the other side from being read
 * (backpressure) instead of growing memory. */
#ifndef NEOSOCKSD_RELAY_H
#define NEOSOCKSD_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RELAY_BUF_SIZE 16384
#define RELAY_PIPE_SIZE (256u << 10)

struct relay_dir {
	void *chunk;      /* struct relay_pipe or struct relay_buf */
	uint32_t pending; /* bytes held in the chunk, not yet written */
	uint8_t kind;     /* 0 none, 1 pipe, 2 buffer */
	bool eof;         /* the source reached EOF */
	bool shut;        /* SHUT_WR sent to the destination */
	bool bulk;        /* a read filled the buffer: splice from now on */
};

/* use_splice: a direction takes a pipe once a read has filled its buffer
 * (and falls back to buffers per chunk when a pipe cannot be had). */
void relay_setup(bool use_splice);
void relay_cleanup(void);

/* What an edge-triggered caller knows of the two sockets: the source may
 * have bytes (or EOF), the destination may take bytes. relay_flow() clears
 * a flag when a call shows it false (EAGAIN, or a short recv()/send(),
 * which empties or fills a TCP socket); the caller sets it again on the
 * socket's next edge. hup: the source's peer has shut its side
 * (EPOLLRDHUP): a short read then leaves the EOF to read, which no later
 * edge would announce. */
struct relay_ready {
	bool src, dst, hup;
};

/* Move what can be moved from src to dst, for sockets registered
 * edge-triggered for the tunnel's life: bytes move while rdy says they
 * can, for at most RELAY_ROUNDS reads. *moved gets the bytes written to
 * dst. At the source's EOF, once all is out, dst gets SHUT_WR, unless the
 * other direction is already finished (other_done: the caller closes both
 * sockets). Returns 0 (wait for the next edge), 1 (out of rounds with
 * more to move: call again later, after other sessions had their turn),
 * or -1 with errno on a socket error (the tunnel is over). */
int relay_flow(struct relay_dir *d, int src, int dst, bool other_done,
	       struct relay_ready *rdy, uint64_t *moved);

/* For a framed message body, level-triggered (the HTTP forward proxy):
 * read at most *budget bytes from src (*budget goes down by what was
 * read) and write them to dst; it stops after a short read (the event
 * fires again while there is more). EOF only sets d->eof: what it means
 * (the end of a close-delimited body, or a truncated one) is the caller's
 * to decide; nothing is shut down. */
int relay_move(struct relay_dir *d, int src, int dst, uint64_t *budget,
	       uint64_t *moved);

static inline bool relay_done(const struct relay_dir *d)
{
	return d->shut;
}

/* Put bytes the handshake read past its end in front of the stream.
 * len <= RELAY_BUF_SIZE. 0 or -1. */
int relay_preload(struct relay_dir *d, const void *data, size_t len);

/* Give the chunk back (or close it if it still holds data). */
void relay_release(struct relay_dir *d);

struct relay_stats {
	unsigned pipes_idle, bufs_idle;
	unsigned long long pipes_created, pipe_failures;
};
const struct relay_stats *relay_stats(void);

#endif
