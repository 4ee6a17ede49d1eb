#include "common/chanev.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/monotime.h"

struct chanev_held {
	struct chanev_held *next;
	struct msg m; /* m.data points to data */
	uint8_t data[];
};

static void chanev_free_now(struct chanev *ce)
{
	struct chanev_held *h;

	while ((h = ce->held) != NULL) {
		ce->held = h->next;
		if (h->m.fd >= 0)
			close(h->m.fd);
		free(h);
	}
	ce->held_tail = &ce->held;
	if (ce->rev != NULL)
		event_free(ce->rev);
	if (ce->wev != NULL)
		event_free(ce->wev);
	if (ce->hev != NULL)
		event_free(ce->hev);
	ce->rev = ce->wev = ce->hev = NULL;
	msgchan_free(&ce->ch, true);
	ce->open = false;
}

void chanev_close(struct chanev *ce)
{
	if (!ce->open)
		return;
	if (ce->in_cb) {
		ce->close_pending = true;
		return;
	}
	chanev_free_now(ce);
}

static void chanev_fail(struct chanev *ce, int err, const char *why)
{
	if (ce->failed)
		return;
	ce->failed = true;
	event_del(ce->rev);
	event_del(ce->wev);
	ce->end->on_err(ce, err, why, ce->arg);
}

void chanev_reject(struct chanev *ce, struct msg *m, const char *why)
{
	if (m->fd >= 0) {
		close(m->fd);
		m->fd = -1;
	}
	chanev_fail(ce, EPROTO, why);
}

void chanev_set_state(struct chanev *ce, uint16_t state)
{
	ce->state = state;
}

/* The channel's PING, PONG and READY. 1 handled (or refused), 0 not one
 * of them. */
static int chanev_control(struct chanev *ce, struct msg *m)
{
	const struct msg_ctl *ctl = msg_chan_ctl((enum chan_kind)ce->kind);

	if (ctl->ping == 0)
		return 0;
	if (m->type == ctl->ping) {
		/* the catalogue lets only the parent send it: we are a child */
		(void)chanev_send(ce, ctl->pong, m->id, m->data, m->len, -1);
		return 1;
	}
	if (m->type == ctl->pong) {
		ce->last_pong_ms = monotime_ms();
		return 1;
	}
	if (m->type != ctl->ready)
		return 0;
	if (ce->ready || ce->end->on_ready == NULL) {
		chanev_reject(ce, m,
			      ce->ready ? "READY twice" : "unexpected READY");
		return 1;
	}
	ce->ready = true;
	ce->last_pong_ms = monotime_ms();
	ce->end->on_ready(ce, ce->arg);
	return 1;
}

/* A checked message: to its row's handler, if it may come now. */
static void chanev_dispatch(struct chanev *ce, struct msg *m)
{
	const struct chanev_end *e = ce->end;

	if (chanev_control(ce, m))
		return;
	for (size_t i = 0; i < e->nrows; i++) {
		const struct chanev_row *row = &e->rows[i];

		if (row->type != m->type)
			continue;
		if ((row->states & ce->state) == 0) {
			snprintf(ce->why, sizeof(ce->why), "%s not allowed now",
				 msg_name(m->type));
			chanev_reject(ce, m, ce->why);
			return;
		}
		row->fn(ce, m, ce->arg);
		return;
	}
	snprintf(ce->why, sizeof(ce->why), "unexpected %s", msg_name(m->type));
	chanev_reject(ce, m, ce->why);
}

/* Keep m (and its fd) to dispatch after what is held already. */
static void chanev_hold(struct chanev *ce, struct msg *m)
{
	struct chanev_held *h = malloc(sizeof(*h) + m->len);

	if (h == NULL) {
		if (m->fd >= 0)
			close(m->fd);
		chanev_fail(ce, ENOMEM, "out of memory holding a message");
		return;
	}
	h->next = NULL;
	h->m = *m;
	memcpy(h->data, m->data, m->len);
	h->m.data = h->data;
	*ce->held_tail = h;
	ce->held_tail = &h->next;
	event_active(ce->hev, EV_TIMEOUT, 1);
}

static void chanev_held_cb(evutil_socket_t fd, short what, void *arg)
{
	struct chanev *ce = arg;
	bool was_in_cb = ce->in_cb;
	struct chanev_held *h;

	(void)fd;
	(void)what;
	ce->in_cb = true;
	while (!ce->close_pending && !ce->failed && (h = ce->held) != NULL) {
		ce->held = h->next;
		if (ce->held == NULL)
			ce->held_tail = &ce->held;
		chanev_dispatch(ce, &h->m);
		free(h);
	}
	ce->in_cb = was_in_cb;
	if (!was_in_cb && ce->close_pending)
		chanev_free_now(ce);
}

static void chanev_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct chanev *ce = arg;
	struct msg m;
	ssize_t n;
	int r;

	(void)fd;
	(void)what;
	ce->in_cb = true;
	n = msgchan_read(&ce->ch);
	if (n == 0) {
		chanev_fail(ce, 0, "end of file");
		goto out;
	}
	if (n < 0 && errno != EAGAIN) {
		chanev_fail(ce, errno, strerror(errno));
		goto out;
	}
	while (!ce->close_pending && !ce->failed &&
	       (r = msgchan_get(&ce->ch, &m)) != 0) {
		const char *why;

		if (r < 0) {
			chanev_fail(ce, errno, errno == EMSGSIZE
						       ? "message too long"
						       : "malformed frame");
			break;
		}
		if (msg_check(ce->kind, ce->peer, &m, &why) < 0) {
			if (m.fd >= 0)
				close(m.fd);
			chanev_fail(ce, EPROTO, why);
			break;
		}
		if (ce->held != NULL)
			chanev_hold(ce, &m); /* behind what waits already */
		else
			chanev_dispatch(ce, &m);
	}
out:
	ce->in_cb = false;
	if (ce->close_pending)
		chanev_free_now(ce);
}

static void chanev_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct chanev *ce = arg;
	int r;

	(void)fd;
	(void)what;
	r = msgchan_flush(&ce->ch);
	if (r == 1) {
		event_del(ce->wev);
		return;
	}
	if (r == 0) {
		/* partly written: wait until the socket takes more (this run
		 * may have come from event_active, with the event not added) */
		if (event_add(ce->wev, NULL) < 0) {
			r = -1;
			errno = ENOMEM;
		} else {
			return;
		}
	}
	if (r < 0 && (errno == EPIPE || errno == ECONNRESET)) {
		event_del(ce->wev);
		return; /* a dead peer is reported by the read side */
	}
	if (r < 0) {
		ce->in_cb = true;
		chanev_fail(ce, errno, strerror(errno));
		ce->in_cb = false;
		if (ce->close_pending)
			chanev_free_now(ce);
	}
}

int chanev_init(struct chanev *ce, struct event_base *base, int fd,
		enum chan_kind kind, enum role peer,
		const struct chanev_end *end, uint16_t state, void *arg)
{
	memset(ce, 0, sizeof(*ce));
	if (evutil_make_socket_nonblocking(fd) < 0 ||
	    msgchan_init(&ce->ch, fd, MSG_MAXLEN, MSG_WMAX) < 0)
		return -1;
	ce->kind = (uint8_t)kind;
	ce->peer = (uint8_t)peer;
	ce->end = end;
	ce->state = state;
	ce->arg = arg;
	ce->held_tail = &ce->held;
	ce->rev = event_new(base, fd, EV_READ | EV_PERSIST, chanev_read_cb, ce);
	ce->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, chanev_write_cb,
			    ce);
	ce->hev = event_new(base, -1, 0, chanev_held_cb, ce);
	ce->open = true;
	if (ce->rev == NULL || ce->wev == NULL || ce->hev == NULL ||
	    event_add(ce->rev, NULL) < 0) {
		chanev_free_now(ce);
		return -1;
	}
	return 0;
}

/* Writing waits for the end of this round of callbacks: every message
 * queued meanwhile (a burst of routing requests, say) leaves in one
 * sendmsg. */
static int chanev_kick(struct chanev *ce)
{
	if (!event_pending(ce->wev, EV_WRITE, NULL))
		event_active(ce->wev, EV_WRITE, 0);
	return 0;
}

int chanev_sendv(struct chanev *ce, uint16_t type, uint32_t id,
		 const struct iovec *iov, int iovcnt, int fd)
{
	if (!ce->open) {
		if (fd >= 0)
			close(fd);
		errno = EPIPE;
		return -1;
	}
	if (msgchan_composev(&ce->ch, type, id, iov, iovcnt, fd) < 0)
		return -1;
	return chanev_kick(ce);
}

int chanev_send(struct chanev *ce, uint16_t type, uint32_t id,
		const void *data, size_t len, int fd)
{
	struct iovec iov = { (void *)(uintptr_t)data, len };
	return chanev_sendv(ce, type, id, &iov, len > 0 ? 1 : 0, fd);
}

/* Take the messages buffered now, for chanev_await. 1 the one awaited,
 * 0 none yet, -1 the channel failed. */
static int chanev_await_take(struct chanev *ce, uint16_t type, uint32_t id,
			     struct msg *out)
{
	uint16_t ping = msg_chan_ctl((enum chan_kind)ce->kind)->ping;
	const char *why;
	struct msg m;
	int r;

	while (!ce->failed && (r = msgchan_get(&ce->ch, &m)) != 0) {
		if (r < 0) {
			chanev_fail(ce, errno, errno == EMSGSIZE
						       ? "message too long"
						       : "malformed frame");
			return -1;
		}
		if (msg_check(ce->kind, ce->peer, &m, &why) < 0) {
			if (m.fd >= 0)
				close(m.fd);
			chanev_fail(ce, EPROTO, why);
			return -1;
		}
		if (m.type == type && m.id == id) {
			*out = m;
			return 1;
		}
		if (ping != 0 && m.type == ping)
			chanev_dispatch(ce, &m); /* answered now */
		else
			chanev_hold(ce, &m);
	}
	return ce->failed ? -1 : 0;
}

int chanev_await(struct chanev *ce, uint16_t type, uint32_t id,
		 int timeout_ms, struct msg *out)
{
	int64_t deadline = monotime_ms() + timeout_ms;
	bool was_in_cb = ce->in_cb;
	int ret;

	if (!ce->open || ce->failed)
		return -1;
	ce->in_cb = true; /* on_err may close: free it when we are done */
	for (;;) {
		struct pollfd pfd = { ce->ch.fd, POLLIN, 0 };
		int64_t left;
		ssize_t n;

		ret = chanev_await_take(ce, type, id, out);
		if (ret != 0 || ce->close_pending)
			break;
		/* the request and any PONG go out now: the loop is not
		 * running */
		if (msgchan_queued(&ce->ch) > 0 && msgchan_flush(&ce->ch) == 0)
			pfd.events |= POLLOUT;
		left = deadline - monotime_ms();
		if (left <= 0) {
			errno = ETIMEDOUT;
			break;
		}
		if (poll(&pfd, 1, (int)left) <= 0 || !(pfd.revents & ~POLLOUT))
			continue;
		n = msgchan_read(&ce->ch);
		if (n == 0) {
			chanev_fail(ce, 0, "end of file");
			ret = -1;
			break;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			chanev_fail(ce, errno, strerror(errno));
			ret = -1;
			break;
		}
	}
	ce->in_cb = was_in_cb;
	if (ret < 0 || ce->close_pending) {
		if (!was_in_cb && ce->close_pending)
			chanev_free_now(ce);
		return -1;
	}
	/* PONGs go out now, not after the caller's long callback; whole
	 * messages may be left in the buffer with no read event to come for
	 * them: have the read callback take them */
	if (msgchan_queued(&ce->ch) > 0)
		(void)msgchan_flush(&ce->ch);
	event_active(ce->rev, EV_READ, 0);
	return ret;
}

int chanev_ping(struct chanev *ce, uint64_t seq)
{
	struct msg_ping ping = { .seq = seq };

	return chanev_send(ce, msg_chan_ctl((enum chan_kind)ce->kind)->ping,
			   0, &ping, sizeof(ping), -1);
}

void chanev_drain(struct chanev *ce, int timeout_ms)
{
	while (ce->open && msgchan_queued(&ce->ch) > 0) {
		struct pollfd pfd = { ce->ch.fd, POLLOUT, 0 };
		int r = msgchan_flush(&ce->ch);

		if (r != 0)
			return;
		if (poll(&pfd, 1, timeout_ms) <= 0)
			return;
	}
}

static void chanev_libevent_log(int severity, const char *msg)
{
	switch (severity) {
	case EVENT_LOG_ERR:
		LOGE("libevent: %s", msg);
		break;
	case EVENT_LOG_WARN:
		LOGW("libevent: %s", msg);
		break;
	default:
		LOGD("libevent: %s", msg);
	}
}

void chanev_log_setup(void)
{
	event_set_log_callback(chanev_libevent_log);
}
