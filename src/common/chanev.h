/* chanev: a msgchan driven by libevent, and the dispatch of what arrives.
 *
 * Every message is checked against the catalogue for this channel and
 * peer (msg_check), then handled in one place:
 * - the control messages of the channel (msg_chan_ctl) by this file: a
 *   child answers the parent's PING with PONG; the parent notes PONG, and
 *   the child's READY (once: a second one is a violation), then calls the
 *   end's on_ready;
 * - everything else by the end's dispatch table: a row names the message
 *   type, the states of the receiving end in which it may arrive (a mask
 *   of the end's own state bits, chanev.state) and its handler. A type
 *   with no row, or one that arrives in a state its row does not allow, is
 *   a violation by the sender.
 * A violation, EOF or I/O error goes to the end's on_err once; the channel
 * then stops. Handlers and on_err may call chanev_close().
 *
 * chanev_await() blocks for one answer (require() in the ruleset process,
 * whose Lua call cannot yield): PINGs are answered meanwhile; everything
 * else is held and dispatched afterwards, in the order it came, before
 * anything that arrives later. */
#ifndef NEOSOCKSD_CHANEV_H
#define NEOSOCKSD_CHANEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "common/msg.h"
#include "common/msgchan.h"

struct chanev;
/* The handler owns m->fd. */
typedef void (*chanev_msg_cb)(struct chanev *ce, struct msg *m, void *arg);
/* err: 0 at EOF, else an errno value (EPROTO for a violation, with why). */
typedef void (*chanev_err_cb)(struct chanev *ce, int err, const char *why,
			      void *arg);
typedef void (*chanev_ready_cb)(struct chanev *ce, void *arg);

/* One row of a dispatch table. */
struct chanev_row {
	uint16_t type;   /* enum msg_type */
	uint16_t states; /* the receiver's states it may arrive in */
	chanev_msg_cb fn;
};

/* A channel end: its dispatch table and what it does on a violation, EOF
 * or error, and (the parent's ends) on the child's READY. */
struct chanev_end {
	const struct chanev_row *rows;
	size_t nrows;
	chanev_err_cb on_err;
	chanev_ready_cb on_ready;
};

#define CHANEV_ROWS(t) (t), (sizeof(t) / sizeof((t)[0]))

struct chanev_held;

struct chanev {
	struct msgchan ch;
	struct event *rev, *wev;
	uint8_t kind; /* enum chan_kind */
	uint8_t peer; /* enum role of the other end */
	bool open, in_cb, close_pending, failed;
	uint16_t state;       /* the receiving end's state: one bit */
	bool ready;           /* the parent's ends: the child said READY */
	int64_t last_pong_ms; /* ... and when it last answered (READY, PONG) */
	const struct chanev_end *end;
	void *arg;
	/* what came while chanev_await() waited, to dispatch in order */
	struct chanev_held *held, **held_tail;
	struct event *hev;
	char why[64]; /* the last violation, for on_err */
};

/* state: the end's first state (a bit its rows use). */
int chanev_init(struct chanev *ce, struct event_base *base, int fd,
		enum chan_kind kind, enum role peer,
		const struct chanev_end *end, uint16_t state, void *arg);
/* The receiving end moved to another state. */
void chanev_set_state(struct chanev *ce, uint16_t state);
/* A handler found its message unacceptable (a bad payload, a request the
 * sender may not make): closes m->fd and reports why to on_err. */
void chanev_reject(struct chanev *ce, struct msg *m, const char *why);
/* Queue and start writing. Takes ownership of fd. 0 or -1 (errno). */
int chanev_send(struct chanev *ce, uint16_t type, uint32_t id,
		const void *data, size_t len, int fd);
int chanev_sendv(struct chanev *ce, uint16_t type, uint32_t id,
		 const struct iovec *iov, int iovcnt, int fd);
/* The parent's heartbeat: this channel's PING. 0 or -1. */
int chanev_ping(struct chanev *ce, uint64_t seq);
/* Send nothing else; block until the message of this type and id comes
 * (at most timeout_ms), answering PINGs and holding every other message
 * for later. 1: *out is it (its data valid until the channel reads
 * again; the caller owns out->fd); 0: timed out; -1: the channel failed
 * (on_err was told). */
int chanev_await(struct chanev *ce, uint16_t type, uint32_t id,
		 int timeout_ms, struct msg *out);
/* Stop and free; closes the socket. Safe inside callbacks. */
void chanev_close(struct chanev *ce);
/* Route libevent's own warnings through our log (one format). */
void chanev_log_setup(void);
/* Write everything still queued, blocking up to timeout_ms (for exit). */
void chanev_drain(struct chanev *ce, int timeout_ms);

#endif
