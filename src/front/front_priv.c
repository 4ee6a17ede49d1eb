/* front_priv: the front's side of the privileged socket broker. Up to
 * PRIV_PENDING_MAX requests wait for the parent's answer, fewer when this
 * worker's share of the parent's cap is less. */
#include "front/front_priv.h"

#include <errno.h>
#include <unistd.h>

#include "common/chanev.h"
#include "common/msg.h"
#include "front/dial.h"
#include "front/front_parent.h"

#define PRIV_PENDING_MAX MSG_PRIV_PENDING_MAX /* the parent's cap too */

struct priv_pending {
	uint32_t id;
	struct dialer *d;
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

uint32_t front_priv_request(int family, struct dialer *d)
{
	struct msg_priv_socket req = { .family = (uint32_t)family };
	uint32_t id;

	if (front_priv.n >= front_priv.max)
		return 0;
	id = ++front_priv.next_id;
	if (id == 0)
		id = ++front_priv.next_id;
	if (chanev_send(front_parent(), MSG_PRIV_SOCKET, id, &req, sizeof(req),
			-1) < 0)
		return 0;
	front_priv.req[front_priv.n++] = (struct priv_pending){ id, d };
	return id;
}

static struct dialer *front_priv_take(uint32_t id)
{
	for (unsigned i = 0; i < front_priv.n; i++) {
		if (front_priv.req[i].id != id)
			continue;
		struct dialer *d = front_priv.req[i].d;
		front_priv.req[i] = front_priv.req[--front_priv.n];
		return d;
	}
	return NULL;
}

void front_priv_cancel(uint32_t id)
{
	(void)front_priv_take(id); /* a late answer's fd is then closed */
}

void front_priv_reply(uint32_t id, int fd, bool fd_lost, int err)
{
	struct dialer *d = front_priv_take(id);

	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (fd < 0 && err == 0)
		err = fd_lost ? EMFILE : EPROTO;
	dial_priv_socket(d, fd, err);
}
