/* front_priv: outbound sockets the front may not make itself (-i,
 * --mark), brokered by the parent: PRIV_SOCKET asks for one,
 * PRIV_SOCKET_REPLY answers with the same id. */
#ifndef NEOSOCKSD_FRONT_PRIV_H
#define NEOSOCKSD_FRONT_PRIV_H

#include <stdbool.h>
#include <stdint.h>

struct dialer;

/* At START: this worker's share of the parent's cap (msg.h,
 * msg_priv_pending_max()), from the descriptor limit and --workers. */
void front_priv_setup(long nofile, unsigned workers);

/* Ask the parent for an outbound socket of this family for d; the answer
 * goes to dial_priv_socket(). Returns a request id, or 0 when the request
 * cannot be sent (too many pending, or the channel is gone). */
uint32_t front_priv_request(int family, struct dialer *d);
/* d gave up: forget the request (a late answer's fd is closed). */
void front_priv_cancel(uint32_t id);
/* The parent's answer to request id: fd >= 0, or err (an errno value);
 * fd_lost: the fd did not survive the transfer. */
void front_priv_reply(uint32_t id, int fd, bool fd_lost, int err);

#endif
