/* udp_assoc: SOCKS5 UDP ASSOCIATE (RFC 1928 section 7).
 *
 * An association is a SOCKS5 session whose TCP connection stays open as
 * its control: it ends when that connection closes or after --udp-idle
 * without a datagram. Its relay socket is brokered by the parent (bound
 * to the address of the listener the client came to, port 0). Datagrams
 * are taken only from the client's IP and the port its request named
 * (the first port seen when it named 0), with FRAG 0 and a well-formed
 * header. Each new destination is decided once, like a CONNECT (the
 * ruleset with the client's credentials, -x, --block-outbound) and the
 * decision is reused; a destination goes direct (a UDP socket per
 * family) or through a chain of socks5:// hops, each asked for its own
 * UDP ASSOCIATE (udp_uplink.c). Replies come back with the header naming
 * their source (the address the client used when the ruleset redirected
 * it). Bounds: UDP_DEST_MAX destinations and UDP_HELD_MAX bytes held while
 * deciding, per association. */
#ifndef NEOSOCKSD_UDP_ASSOC_H
#define NEOSOCKSD_UDP_ASSOC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "common/addr.h"
#include "common/proxyuri.h"
#include "front/dial.h"
#include "front/route.h"
#include "front/socks_proto.h"

#define UDP_DEST_MAX 256        /* destinations per association */
#define UDP_HELD_MAX (64u << 10) /* bytes held while deciding */
#define UDP_UPLINK_MAX 8        /* proxy chains per association */
/* datagrams per recvmmsg/sendmmsg (and per GSO train): chosen by
 * measurement against 16, 32, 48 and 64 (docs/bench.md, "UDP batch
 * size"); larger batches cost the front more CPU per datagram */
#define UDP_BATCH 24
#define UDP_DGRAM_MAX 65535
#define UDP_RETRY_MS 5000       /* a failed path is decided again after */

struct session;
struct udp_assoc;
struct udp_uplink;

enum udp_dest_state {
	UD_DECIDING = 0, /* the ruleset is asked */
	UD_RESOLVING,    /* a name to resolve (direct) */
	UD_LINKING,      /* waiting for its socket or chain */
	UD_READY,
	UD_REFUSED,      /* by the ruleset or the policy: dropped for good */
	UD_FAILED,       /* the path failed: decided again after a while */
};

struct udp_held {
	struct udp_held *next;
	uint32_t len;
	uint8_t data[];
};

struct udp_dest {
	struct udp_dest *hnext;  /* by the client's address */
	struct udp_dest *unext;  /* on its uplink's list */
	struct udp_dest *rnext;  /* direct and ready: by remote address */
	struct udp_assoc *a;
	struct route_asker ask;
	struct netaddr addr;     /* as the client named it */
	struct netaddr to;       /* the decided target */
	struct sockaddr_storage remote; /* direct: where datagrams go */
	socklen_t rlen;
	struct netaddr raddr;    /* the same, as replies come from it */
	uint64_t seq;            /* the association's count at its last
				  * datagram: replies go to the latest of
				  * the destinations sharing a remote */
	bool in_r;
	struct udp_uplink *up;   /* a chain, or NULL: direct */
	struct resolver_query *rq;
	struct udp_held *held, **held_tail;
	uint8_t hdr[SOCKS_UDP_HDR_MAX]; /* through a chain: the header
					  * naming to */
	uint16_t hdrlen;
	uint8_t state;           /* enum udp_dest_state */
	bool redirected;         /* to differs from addr */
	bool forwarding;         /* an await.forward waits for its outcome */
	int64_t last_ms, since_ms;
};

/* Everything the association's modules share. */
struct udp_assoc {
	struct session *s;
	int rfd;                 /* the relay socket */
	struct event rev, timer;
	int ofd[2];              /* direct sockets: IPv4, IPv6 */
	struct event oev[2];
	uint32_t opriv[2];       /* a brokered one asked for */
	uint32_t priv_req;       /* the relay socket asked for */
	union {
		struct sockaddr sa;
		struct sockaddr_in sin;
		struct sockaddr_in6 sin6;
	} client;                /* IP; the port once known */
	socklen_t clen;
	bool port_known;
	bool gso;                /* batches may go as UDP_SEGMENT trains */
	struct udp_dest *bucket[64];
	struct udp_dest *rbucket[64]; /* direct and ready, by remote */
	uint64_t seq;
	unsigned ndests, nrefused, nuplinks;
	size_t held_bytes;
	struct udp_uplink *uplinks;
	char *user, *pass;       /* for the ruleset; wiped when freed */
	char relay_text[ADDR_STRLEN];
	uint64_t pkts_up, pkts_down, bytes_up, bytes_down, drops;
	int64_t last_ms;
};

/* ---- udp_assoc.c ---- */

struct front_conf;
void udp_assoc_setup(struct event_base *base, const struct front_conf *fc);
struct event_base *udp_assoc_base(void);
const struct front_conf *udp_assoc_conf(void);

/* The SOCKS5 driver got UDP ASSOCIATE: ask for the relay socket and reply
 * (dst: the client's DST, its expected source). */
void udp_assoc_request(struct session *s, const struct netaddr *dst);
/* The session's control connection is readable. */
void udp_assoc_on_control(struct session *s);
/* The access line, and the end. */
void udp_assoc_log(struct session *s, const char *outcome);
void udp_assoc_free(struct udp_assoc *a);
int64_t udp_assoc_now_ms(void);

/* Send a datagram's payload to a destination that is ready, or hold it
 * while it is not; the caller counts. For the uplink code. */
void udp_assoc_dest_flush(struct udp_dest *d);
/* The path of d failed or became ready. */
void udp_assoc_dest_ready(struct udp_dest *d);
void udp_assoc_dest_failed(struct udp_dest *d, const char *why);
/* A reply for the client: the header names src; payload len bytes. */
void udp_assoc_to_client(struct udp_assoc *a, const struct netaddr *src,
			 const uint8_t *payload, size_t len);

/* ---- udp_uplink.c: chains of socks5:// hops ---- */

/* The uplink for these hops (first hop first; key identifies the chain),
 * made if needed; NULL when the association has UDP_UPLINK_MAX already or
 * out of memory. d joins its list. */
struct udp_uplink *udp_uplink_get(struct udp_assoc *a,
				  const struct proxy_hop *hops, size_t n,
				  const char *key, struct udp_dest *d);
/* d leaves its uplink (freed with its last destination). */
void udp_uplink_leave(struct udp_dest *d);
bool udp_uplink_ready(const struct udp_uplink *u);
/* Send a payload through the chain to d->to. -1: dropped. */
int udp_uplink_send(struct udp_uplink *u, struct udp_dest *d,
		    const uint8_t *payload, size_t len);
/* Setup deadlines (-t). */
void udp_uplink_tick(struct udp_assoc *a, int64_t now);
void udp_uplink_free_all(struct udp_assoc *a);

#endif
