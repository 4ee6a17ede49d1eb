/* front_priv: sockets the front may not make itself, brokered by the
 * parent: outbound sockets with -i/--mark (PRIV_SOCKET), SOCKS5 UDP
 * relays (PRIV_UDP) and BIND listeners (PRIV_BIND). Each request is
 * answered by PRIV_SOCKET_REPLY with the same id. */
#ifndef NEOSOCKSD_FRONT_PRIV_H
#define NEOSOCKSD_FRONT_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dialer;

/* At START: this worker's share of the parent's cap (msg.h,
 * msg_priv_pending_max()), from the descriptor limit and --workers. */
void front_priv_setup(long nofile, unsigned workers);

/* The answer to a front_priv_ask(): fd >= 0, or -1 and err (an errno
 * value). Called from the channel's callback. */
typedef void (*front_priv_cb)(void *arg, int fd, int err);

/* Send request type (MSG_PRIV_*) with its payload req; the answer goes
 * to cb(arg, ...). Returns a request id, or 0 when the request cannot be
 * sent (too many pending, or the channel is gone). */
uint32_t front_priv_ask(uint16_t type, const void *req, size_t len,
			front_priv_cb cb, void *arg);
/* dial's broker: an outbound TCP socket of this family for d; the answer
 * goes to dial_priv_socket(). A request id, or 0. */
uint32_t front_priv_request(int family, struct dialer *d);
/* The asker gave up: forget the request (a late answer's fd is closed). */
void front_priv_cancel(uint32_t id);
/* The parent's answer to request id: fd >= 0, or err (an errno value);
 * fd_lost: the fd did not survive the transfer. */
void front_priv_reply(uint32_t id, int fd, bool fd_lost, int err);

#endif
