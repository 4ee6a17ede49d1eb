#include "common/chanev.h"

#include "common/log.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

static void chanev_free_now(struct chanev *ce)
{
	if (ce->rev != NULL)
		event_free(ce->rev);
	if (ce->wev != NULL)
		event_free(ce->wev);
	ce->rev = ce->wev = NULL;
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
	event_del(ce->rev);
	event_del(ce->wev);
	ce->on_err(ce, err, why, ce->arg);
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
	while (!ce->close_pending && (r = msgchan_get(&ce->ch, &m)) != 0) {
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
		ce->on_msg(ce, &m, ce->arg);
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
		enum chan_kind kind, enum role peer, chanev_msg_cb on_msg,
		chanev_err_cb on_err, void *arg)
{
	memset(ce, 0, sizeof(*ce));
	if (evutil_make_socket_nonblocking(fd) < 0 ||
	    msgchan_init(&ce->ch, fd, MSG_MAXLEN, MSG_WMAX) < 0)
		return -1;
	ce->kind = (uint8_t)kind;
	ce->peer = (uint8_t)peer;
	ce->on_msg = on_msg;
	ce->on_err = on_err;
	ce->arg = arg;
	ce->rev = event_new(base, fd, EV_READ | EV_PERSIST, chanev_read_cb, ce);
	ce->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, chanev_write_cb,
			    ce);
	ce->open = true;
	if (ce->rev == NULL || ce->wev == NULL || event_add(ce->rev, NULL) < 0) {
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
