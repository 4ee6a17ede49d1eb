/* chanev: a msgchan driven by libevent. Reads whole messages, checks each
 * against the catalogue for this channel and peer, and hands good ones to
 * on_msg. A protocol violation, EOF or I/O error goes to on_err once; the
 * channel then stops. Either callback may call chanev_close(). */
#ifndef NEOSOCKSD_CHANEV_H
#define NEOSOCKSD_CHANEV_H

#include <event2/event.h>

#include "common/msg.h"
#include "common/msgchan.h"

struct chanev;
/* The handler owns m->fd. */
typedef void (*chanev_msg_cb)(struct chanev *ce, struct msg *m, void *arg);
/* err: 0 at EOF, else an errno value (EPROTO for a violation, with why). */
typedef void (*chanev_err_cb)(struct chanev *ce, int err, const char *why,
			      void *arg);

struct chanev {
	struct msgchan ch;
	struct event *rev, *wev;
	uint8_t kind; /* enum chan_kind */
	uint8_t peer; /* enum role of the other end */
	bool open, in_cb, close_pending;
	chanev_msg_cb on_msg;
	chanev_err_cb on_err;
	void *arg;
};

int chanev_init(struct chanev *ce, struct event_base *base, int fd,
		enum chan_kind kind, enum role peer, chanev_msg_cb on_msg,
		chanev_err_cb on_err, void *arg);
/* Queue and start writing. Takes ownership of fd. 0 or -1 (errno). */
int chanev_send(struct chanev *ce, uint16_t type, uint32_t id,
		const void *data, size_t len, int fd);
int chanev_sendv(struct chanev *ce, uint16_t type, uint32_t id,
		 const struct iovec *iov, int iovcnt, int fd);
/* Stop and free; closes the socket. Safe inside callbacks. */
void chanev_close(struct chanev *ce);
/* Route libevent's own warnings through our log (one format). */
void chanev_log_setup(void);
/* Write everything still queued, blocking up to timeout_ms (for exit). */
void chanev_drain(struct chanev *ce, int timeout_ms);

#endif
