/* socks: the SOCKS4/4A/5 driver of a session. */
#ifndef NEOSOCKSD_SOCKS_H
#define NEOSOCKSD_SOCKS_H

#include <stdbool.h>

#include "front/session.h"

extern const struct sess_driver socks_driver;

/* --auth-required: SOCKS5 clients must offer username/password. */
void socks_set_auth_required(bool on);
/* --enable-socks5-bind, --enable-socks5-udp: the commands served. */
void socks_set_commands(bool bind, bool udp);

#endif
