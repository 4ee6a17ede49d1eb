/* selfdial: the front never dials this daemon's own listeners or its API.
 *
 * A proxy client that could CONNECT to the API's loopback address would
 * reach it as 127.0.0.1, that is as an administrator; one that reaches a
 * listener makes a proxy loop. So, whatever --block-outbound says and
 * whatever a ruleset or a redirect decides, a first hop is refused when
 * its port is one of ours and its address is this host's:
 *   - before connect(): a loopback address (127.0.0.0/8, ::1), the
 *     unspecified address (0.0.0.0, ::, which connect to this host), or
 *     the address of one of our listeners; IPv4-mapped IPv6 counts as the
 *     IPv4 address;
 *   - after the connection is made, so that no name, redirect or address
 *     of another interface of this host slips past: the socket's local
 *     address equals its peer's (the kernel routes a connection to an
 *     address of this host through the loopback device, with that same
 *     address as its source).
 * --allow-self-dial turns both checks off. */
#ifndef NEOSOCKSD_SELFDIAL_H
#define NEOSOCKSD_SELFDIAL_H

#include <stdbool.h>
#include <sys/socket.h>

#include "common/config.h"

/* Our listening endpoints: each listener the parent passed (its bound
 * address, port 0 resolved) and the TCP API address of the config. */
int selfdial_add_listener(int fd);
void selfdial_setup(const struct config *c);

/* Before connect(): is sa one of our endpoints? */
bool selfdial_refused(const struct sockaddr *sa);
/* After connect(): is the socket fd, connected to peer, talking to one of
 * our ports on this host? */
bool selfdial_connected_to_self(int fd, const struct sockaddr *peer);

#endif
