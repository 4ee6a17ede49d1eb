/* udp_batch: see udp_batch.h. */
#include "front/udp_batch.h"

#include <errno.h>
#include <netinet/udp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#define UDP_BATCH_MAX 64        /* datagrams per call (the callers': 24) */
#define UDP_GSO_SEGS 64         /* the kernel's UDP_MAX_SEGMENTS */
#define UDP_GSO_BYTES 65000     /* a train's payload: under 64 KiB */
/* the largest segment: within an Ethernet MTU for IPv4 and IPv6 (a
 * segment must fit the path MTU; larger datagrams go one by one) */
#define UDP_GSO_SEG_MAX 1452

static size_t udp_batch_len(const struct msghdr *h)
{
	size_t n = 0;

	for (size_t i = 0; i < h->msg_iovlen; i++)
		n += h->msg_iov[i].iov_len;
	return n;
}

/* Can datagram m[j] ride in the train that starts at m[i] (j-i of them so
 * far, each seg bytes, total bytes)? */
static bool udp_batch_joins(const struct mmsghdr *m, unsigned i, unsigned j,
			    size_t seg, size_t total)
{
	const struct msghdr *prev = &m[j - 1].msg_hdr, *h = &m[j].msg_hdr;
	size_t len = udp_batch_len(h);

	return seg <= UDP_GSO_SEG_MAX && h->msg_name == m[i].msg_hdr.msg_name &&
	       h->msg_iov == prev->msg_iov + prev->msg_iovlen &&
	       udp_batch_len(prev) == seg && len > 0 && len <= seg &&
	       j - i < UDP_GSO_SEGS && total + len <= UDP_GSO_BYTES;
}

unsigned udp_batch_send(int fd, struct mmsghdr *m, unsigned n, bool *gso)
{
	struct mmsghdr g[UDP_BATCH_MAX];
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} cm[UDP_BATCH_MAX];
	unsigned first[UDP_BATCH_MAX + 1], ng = 0, i = 0;
	int sent;

	if (n > UDP_BATCH_MAX)
		n = UDP_BATCH_MAX;
	if (!*gso) {
		sent = sendmmsg(fd, m, n, MSG_DONTWAIT);
		return sent > 0 ? (unsigned)sent : 0;
	}
	while (i < n) {
		size_t seg = udp_batch_len(&m[i].msg_hdr), total = seg;
		unsigned j = i + 1;
		struct msghdr *h;

		while (j < n && udp_batch_joins(m, i, j, seg, total))
			total += udp_batch_len(&m[j++].msg_hdr);
		g[ng].msg_hdr = m[i].msg_hdr;
		g[ng].msg_len = 0;
		h = &g[ng].msg_hdr;
		h->msg_iovlen = (size_t)(m[j - 1].msg_hdr.msg_iov +
					 m[j - 1].msg_hdr.msg_iovlen -
					 m[i].msg_hdr.msg_iov);
		if (j - i > 1) {
			struct cmsghdr *c = (struct cmsghdr *)cm[ng].buf;
			uint16_t size = (uint16_t)seg;

			memset(&cm[ng], 0, sizeof(cm[ng]));
			h->msg_control = cm[ng].buf;
			h->msg_controllen = sizeof(cm[ng].buf);
			c->cmsg_level = SOL_UDP;
			c->cmsg_type = UDP_SEGMENT;
			c->cmsg_len = CMSG_LEN(sizeof(size));
			memcpy(CMSG_DATA(c), &size, sizeof(size));
		}
		first[ng++] = i;
		i = j;
	}
	first[ng] = n;
	sent = sendmmsg(fd, g, ng, MSG_DONTWAIT);
	if (sent >= 0)
		return first[sent]; /* a later failure shows at the next call */
	if (g[0].msg_hdr.msg_controllen > 0 &&
	    (errno == EIO || errno == EINVAL || errno == EMSGSIZE ||
	     errno == ENOPROTOOPT || errno == EOPNOTSUPP)) {
		/* no GSO here (a device without checksum offload, a path
		 * MTU under the size): one by one from now on */
		*gso = false;
		return udp_batch_send(fd, m, n, gso);
	}
	return 0;
}
