/* httpproxy: the HTTP proxy driver of a session: request heads, CONNECT,
 * authentication, and the error answers (a status and a sentence saying
 * why, the same words as the access line). Requests for http:// URLs are
 * handed to the forward proxy (httpfwd.c). */
#ifndef NEOSOCKSD_HTTPPROXY_H
#define NEOSOCKSD_HTTPPROXY_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "front/session.h"

extern const struct sess_driver http_driver;

struct front_conf;
void httpproxy_setup(struct event_base *base, const struct front_conf *fc);

/* Answer status with the body "why" (and extra header lines), log
 * "<status> <why>" as the outcome, and end the session (lingering). */
void httpproxy_fail(struct session *s, int status, const char *why,
		    const char *extra_headers);

/* The status and the sentence for a failed dial or a refused request
 * (502 "connection refused by 10.0.0.5:80", 403 "blocked by
 * --block-outbound (loopback)", ...). Returns the status. */
int httpproxy_reason(const struct session *s, const struct dial_result *r,
		     char *why, size_t cap);

/* The handshake deadline (-t) in seconds, for the reasons. */
double httpproxy_timeout(void);

/* --auth-required: requests must carry Proxy-Authorization. */
void httpproxy_set_auth_required(bool on);

#endif
