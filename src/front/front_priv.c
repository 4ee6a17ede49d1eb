/* front_priv: the front's side of the privileged socket broker. Up to
 * PRIV_PENDING_MAX requests wait for the parent's answer, fewer when this
 * worker's share of the parent's cap is less. */
#include "front/front_priv.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/chanev.h"
#include "common/msg.h"
#include "front/dial.h"
#include "front/front_parent.h"

#define PRIV_PENDING_MAX MSG_PRIV_PENDING_MAX /* the parent's cap too */

struct priv_pending {
	uint32_t id;
	front_priv_cb cb;
	void *arg;
};

static struct {
	struct priv_pending req[PRIV_PENDING_MAX];
	unsigned n, max;
	uint32_t next_id;
} front_priv = { .max = PRIV_PENDING_MAX };

void front_priv_setup(long nofile, unsigned workers)
{
	front_priv.max = msg_priv_pending_max(nofile, workers);
}

uint32_t front_priv_ask(uint16_t type, const void *req, size_t len,
			front_priv_cb cb, void *arg)
{
	uint32_t id;

	if (front_priv.n >= front_priv.max)
		return 0;
	id = ++front_priv.next_id;
	if (id == 0)
		id = ++front_priv.next_id;
	if (chanev_send(front_parent(), type, id, req, len, -1) < 0)
		return 0;
	front_priv.req[front_priv.n++] = (struct priv_pending){ id, cb, arg };
	return id;
}

static void front_priv_dialer(void *arg, int fd, int err)
{
	dial_priv_socket(arg, fd, err);
}

uint32_t front_priv_request(int family, struct dialer *d)
{
	struct msg_priv_socket req = { .family = (uint32_t)family,
				       .type = SOCK_STREAM };

	return front_priv_ask(MSG_PRIV_SOCKET, &req, sizeof(req),
			      front_priv_dialer, d);
}

/* Take request id off the pending list: true, with *out, when it was on. */
static bool front_priv_take(uint32_t id, struct priv_pending *out)
{
	for (unsigned i = 0; i < front_priv.n; i++) {
		if (front_priv.req[i].id != id)
			continue;
		*out = front_priv.req[i];
		front_priv.req[i] = front_priv.req[--front_priv.n];
		return true;
	}
	return false;
}

void front_priv_cancel(uint32_t id)
{
	struct priv_pending p;

	(void)front_priv_take(id, &p); /* a late answer's fd is then closed */
}

void front_priv_reply(uint32_t id, int fd, bool fd_lost, int err)
{
	struct priv_pending p;

	if (!front_priv_take(id, &p)) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (fd < 0 && err == 0)
		err = fd_lost ? EMFILE : EPROTO;
	p.cb(p.arg, fd, err);
}
