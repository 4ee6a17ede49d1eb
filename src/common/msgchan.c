#include "common/msgchan.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MSGCHAN_RBUF_MIN 65536
#define MSGCHAN_IOV_MAX 64

struct msgchan_out {
	struct msgchan_out *next;
	size_t len, off; /* bytes in data, bytes already written */
	int fd;          /* -1 when none; sent with data[0] */
	uint8_t data[];
};

int msgchan_init(struct msgchan *c, int fd, uint32_t maxlen, size_t wmax)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->maxlen = maxlen;
	c->wmax = wmax;
	c->wtail = &c->whead;
	c->rcap = MSGCHAN_RBUF_MIN;
	c->rbuf = malloc(c->rcap);
	return c->rbuf != NULL ? 0 : -1;
}

void msgchan_free(struct msgchan *c, bool close_fd)
{
	struct msgchan_out *o, *next;

	for (o = c->whead; o != NULL; o = next) {
		next = o->next;
		if (o->fd >= 0)
			close(o->fd);
		explicit_bzero(o->data, o->len);
		free(o);
	}
	c->whead = NULL;
	c->wtail = &c->whead;
	c->wbytes = 0;
	c->wmsgs = c->wfds = 0;
	for (unsigned i = 0; i < c->nfdq; i++)
		close(c->fdq[i].fd);
	c->nfdq = 0;
	free(c->rbuf);
	c->rbuf = NULL;
	if (close_fd && c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* Make room for at least one more byte, growing up to one whole message. */
static int msgchan_rspace(struct msgchan *c)
{
	size_t limit = (size_t)c->maxlen + MSG_HDR_SIZE;
	size_t ncap;
	uint8_t *nb;

	if (c->roff > 0) {
		memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
		c->rpos += c->roff;
		c->rlen -= c->roff;
		c->roff = 0;
	}
	if (c->rlen < c->rcap)
		return 0;
	if (c->rcap >= limit) {
		errno = EMSGSIZE; /* cannot happen with a valid header */
		return -1;
	}
	ncap = c->rcap * 2 < limit ? c->rcap * 2 : limit;
	nb = realloc(c->rbuf, ncap);
	if (nb == NULL)
		return -1;
	c->rbuf = nb;
	c->rcap = ncap;
	return 0;
}

static void msgchan_take_fds(struct msgchan *c, struct msghdr *mh,
			     uint64_t start, uint64_t end)
{
	struct cmsghdr *cm;

	for (cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
		size_t n;
		const unsigned char *p;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		p = CMSG_DATA(cm);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, p + i * sizeof(int), sizeof(int));
			if (c->nfdq == MSGCHAN_FDQ) {
				close(fd); /* more than any honest peer sends */
				continue;
			}
			c->fdq[c->nfdq++] = (struct msgchan_fdq){ fd, start, end };
		}
	}
}

ssize_t msgchan_read(struct msgchan *c)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * MSGCHAN_FDQ)];
	} cmsg;
	struct iovec iov;
	struct msghdr mh;
	ssize_t n;

	if (msgchan_rspace(c) != 0)
		return -1;
	iov.iov_base = c->rbuf + c->rlen;
	iov.iov_len = c->rcap - c->rlen;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cmsg.buf;
	mh.msg_controllen = sizeof(cmsg.buf);
	do {
		n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n;
	if (mh.msg_flags & MSG_CTRUNC)
		c->ctrunc++;
	msgchan_take_fds(c, &mh, c->rpos + c->rlen,
			 c->rpos + c->rlen + (uint64_t)n);
	c->rlen += (size_t)n;
	return n;
}

/* Claim the fd for a message starting at stream offset pos. */
static int msgchan_claim_fd(struct msgchan *c, uint64_t pos, bool *lost)
{
	int fd;

	*lost = false;
	if (c->nfdq > 0 && c->fdq[0].end <= pos)
		return -2; /* an fd no message claimed */
	if (c->nfdq == 0 || c->fdq[0].start > pos) {
		*lost = true; /* dropped by the kernel (MSG_CTRUNC) */
		return -1;
	}
	fd = c->fdq[0].fd;
	c->nfdq--;
	memmove(&c->fdq[0], &c->fdq[1], c->nfdq * sizeof(c->fdq[0]));
	return fd;
}

int msgchan_get(struct msgchan *c, struct msg *m)
{
	struct msg_hdr h;
	size_t avail = c->rlen - c->roff;
	uint64_t pos = c->rpos + c->roff;

	if (avail < MSG_HDR_SIZE) {
		/* an fd whose message has been fully consumed is orphaned */
		if (c->nfdq > 0 && c->fdq[0].end <= pos)
			goto eproto;
		return 0;
	}
	memcpy(&h, c->rbuf + c->roff, sizeof(h));
	if (h.version != MSG_VERSION || (h.flags & ~MSGF_FD) != 0)
		goto eproto;
	if (h.len > c->maxlen) {
		errno = EMSGSIZE;
		return -1;
	}
	if (avail - MSG_HDR_SIZE < h.len)
		return 0;
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (h.flags & MSGF_FD) {
		int fd = msgchan_claim_fd(c, pos, &m->fd_lost);
		if (fd == -2)
			goto eproto;
		m->fd = fd;
	} else if (c->nfdq > 0 &&
		   c->fdq[0].end <= pos + MSG_HDR_SIZE + h.len) {
		/* that fd's message starts at or before this one, which
		 * declared none */
		goto eproto;
	}
	m->type = h.type;
	m->id = h.id;
	m->len = h.len;
	m->data = c->rbuf + c->roff + MSG_HDR_SIZE;
	c->roff += MSG_HDR_SIZE + h.len;
	return 1;
eproto:
	errno = EPROTO;
	return -1;
}

int msgchan_composev(struct msgchan *c, uint16_t type, uint32_t id,
		     const struct iovec *iov, int iovcnt, int fd)
{
	struct msgchan_out *o;
	struct msg_hdr h;
	size_t len = 0, off;

	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (len > c->maxlen) {
		errno = EMSGSIZE;
		goto fail;
	}
	if (c->wbytes + len + MSG_HDR_SIZE > c->wmax) {
		errno = ENOBUFS;
		goto fail;
	}
	o = malloc(sizeof(*o) + MSG_HDR_SIZE + len);
	if (o == NULL)
		goto fail;
	h = (struct msg_hdr){ .version = MSG_VERSION,
			      .type = type,
			      .len = (uint32_t)len,
			      .id = id,
			      .flags = fd >= 0 ? MSGF_FD : 0 };
	memcpy(o->data, &h, sizeof(h));
	off = MSG_HDR_SIZE;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > 0)
			memcpy(o->data + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	o->next = NULL;
	o->len = off;
	o->off = 0;
	o->fd = fd;
	*c->wtail = o;
	c->wtail = &o->next;
	c->wbytes += o->len;
	c->wmsgs++;
	if (fd >= 0)
		c->wfds++;
	return 0;
fail:
	if (fd >= 0) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return -1;
}

int msgchan_compose(struct msgchan *c, uint16_t type, uint32_t id,
		    const void *data, size_t len, int fd)
{
	struct iovec iov = { .iov_base = (void *)(uintptr_t)data,
			     .iov_len = len };
	return msgchan_composev(c, type, id, &iov, len > 0 ? 1 : 0, fd);
}

/* One sendmsg: either the head message alone with its fd (when it has an
 * unsent fd), or a run of messages up to the next one carrying an fd. */
static ssize_t msgchan_send_once(struct msgchan *c)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} cmsg;
	struct iovec iov[MSGCHAN_IOV_MAX];
	struct msghdr mh;
	struct msgchan_out *o = c->whead;
	int n = 0;
	ssize_t r;

	memset(&mh, 0, sizeof(mh));
	if (o->fd >= 0) {
		struct cmsghdr *cm;

		memset(&cmsg, 0, sizeof(cmsg));
		iov[n++] = (struct iovec){ o->data + o->off, o->len - o->off };
		mh.msg_control = cmsg.buf;
		mh.msg_controllen = sizeof(cmsg.buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &o->fd, sizeof(int));
	} else {
		for (; o != NULL && n < MSGCHAN_IOV_MAX; o = o->next) {
			if (o->fd >= 0)
				break;
			iov[n++] = (struct iovec){ o->data + o->off,
						   o->len - o->off };
		}
	}
	mh.msg_iov = iov;
	mh.msg_iovlen = (size_t)n;
	do {
		r = sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	} while (r < 0 && errno == EINTR);
	return r;
}

int msgchan_flush(struct msgchan *c)
{
	while (c->whead != NULL) {
		ssize_t r = msgchan_send_once(c);
		size_t left;

		if (r < 0)
			return errno == EAGAIN ? 0 : -1;
		left = (size_t)r;
		c->wbytes -= left;
		while (left > 0) {
			struct msgchan_out *o = c->whead;
			size_t chunk = o->len - o->off;

			if (o->fd >= 0) {
				close(o->fd); /* the kernel holds a reference */
				o->fd = -1;
				c->wfds--;
			}
			if (left < chunk) {
				o->off += left;
				break;
			}
			left -= chunk;
			c->whead = o->next;
			if (c->whead == NULL)
				c->wtail = &c->whead;
			c->wmsgs--;
			/* tokens, keys, proxy passwords: not left behind */
			explicit_bzero(o->data, o->len);
			free(o);
		}
	}
	return 1;
}
