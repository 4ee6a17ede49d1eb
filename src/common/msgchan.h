/* msgchan: framed, typed messages over a Unix stream socket, with file
 * descriptors riding along (SCM_RIGHTS). Written for this project.
 *
 * Wire format: a 16-byte header in host byte order (both ends are the same
 * binary on the same host) followed by exactly hdr.len payload bytes:
 *
 *	uint16_t version   MSG_VERSION; anything else is a protocol error
 *	uint16_t type      see msg.h (checked by the receiver, not here)
 *	uint32_t len       payload length, at most the channel's maximum
 *	uint32_t id        correlation id (session, request)
 *	uint32_t flags     MSGF_FD: one fd is attached to this message
 *
 * An fd is sent with the first byte of its message, in a sendmsg() that
 * starts at that message. The receiver remembers the stream range each fd
 * arrived with, so a message whose fd was dropped by the kernel (Linux
 * truncates SCM_RIGHTS with MSG_CTRUNC when the receiver is at its fd
 * limit) is reported with fd_lost instead of being paired with the next
 * message's fd. An fd that arrives with no message claiming it is a
 * protocol error.
 *
 * I/O is non-blocking and driven by the caller (see chanev.h for the
 * libevent glue): msgchan_read() pulls bytes, msgchan_get() yields whole
 * messages, msgchan_compose() queues, msgchan_flush() writes. */
#ifndef NEOSOCKSD_MSGCHAN_H
#define NEOSOCKSD_MSGCHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define MSG_VERSION 1
#define MSGF_FD 0x1u

struct msg_hdr {
	uint16_t version;
	uint16_t type;
	uint32_t len;
	uint32_t id;
	uint32_t flags;
};

#define MSG_HDR_SIZE ((uint32_t)sizeof(struct msg_hdr))

struct msg {
	uint16_t type;
	uint32_t id;
	uint32_t len;
	const uint8_t *data; /* valid until the next msgchan_read/get */
	int fd;              /* owned by the receiver; -1 when none */
	bool fd_lost;        /* MSGF_FD set but the fd never arrived */
};

#define MSGCHAN_FDQ 16

struct msgchan_fdq {
	int fd;
	uint64_t start, end; /* stream range of the read it came with */
};

struct msgchan_out;

struct msgchan {
	int fd;
	uint32_t maxlen; /* largest payload accepted and sent */
	/* input */
	uint8_t *rbuf;
	size_t rcap, rlen, roff; /* buffer, bytes held, bytes consumed */
	uint64_t rpos;           /* stream offset of rbuf[0] */
	struct msgchan_fdq fdq[MSGCHAN_FDQ];
	unsigned nfdq;
	unsigned ctrunc; /* reads where the kernel dropped fds */
	/* output */
	struct msgchan_out *whead, **wtail;
	size_t wbytes, wmax;
	unsigned wmsgs, wfds; /* messages not wholly sent, fds not yet sent */
};

/* fd: a connected SOCK_STREAM unix socket, set non-blocking by the caller.
 * maxlen: largest payload; wmax: most bytes queued for output. 0 or -1. */
int msgchan_init(struct msgchan *c, int fd, uint32_t maxlen, size_t wmax);
/* Frees buffers, closes queued fds and received-but-unclaimed fds, and
 * closes c->fd when close_fd. */
void msgchan_free(struct msgchan *c, bool close_fd);

/* Read what is available. Returns bytes read (>0), 0 at EOF, -1 with errno
 * (EAGAIN when nothing is available). */
ssize_t msgchan_read(struct msgchan *c);

/* Take the next whole message. 1: *m filled (the caller owns m->fd);
 * 0: need more; -1: protocol error, errno EPROTO (bad version or flags,
 * or an unclaimed fd), EMSGSIZE (length over maxlen). After -1 the channel
 * is unusable. */
int msgchan_get(struct msgchan *c, struct msg *m);

/* Queue a message. The channel takes ownership of fd (>= 0): it is closed
 * once sent, or when the channel is freed, or on failure here. Returns 0,
 * or -1 with errno EMSGSIZE (len over maxlen), ENOBUFS (queue over wmax)
 * or ENOMEM. */
int msgchan_compose(struct msgchan *c, uint16_t type, uint32_t id,
		    const void *data, size_t len, int fd);
int msgchan_composev(struct msgchan *c, uint16_t type, uint32_t id,
		     const struct iovec *iov, int iovcnt, int fd);

/* Write queued messages. 1: all written; 0: would block (wait for the fd
 * to be writable); -1: error with errno (EPIPE when the peer is gone). */
int msgchan_flush(struct msgchan *c);

static inline size_t msgchan_queued(const struct msgchan *c)
{
	return c->wbytes;
}

/* Messages queued and not yet wholly written; fds among them not sent. */
static inline unsigned msgchan_queued_msgs(const struct msgchan *c)
{
	return c->wmsgs;
}

static inline unsigned msgchan_queued_fds(const struct msgchan *c)
{
	return c->wfds;
}

#endif
