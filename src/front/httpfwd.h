/* httpfwd: the HTTP/1.1 forward proxy of the HTTP listener.
 *
 * One client connection carries any number of requests for http:// URLs,
 * answered in order. Each request is routed as a CONNECT to its host:port
 * would be; the upstream connection is kept for the next request when
 * that one is routed to the same destination through the same hops, and
 * closed otherwise. Heads are rewritten by the pure http1fwd module;
 * bodies stream through the relay (splice where the framing allows),
 * chunked ones with their chunk framing re-emitted, never buffered whole.
 * Between requests the connection holds no buffers or pipes, and closes
 * after --http-idle. A 101 to an Upgrade request turns the connection into
 * a tunnel. One access line per request:
 *
 *   [#7.2] 127.0.0.1:40000 http alice GET http://h:80/path 200 via direct
 *          up=120 down=5120 0.003s ok
 *
 * (client, protocol, user or "-", method, URL without its query, status
 * sent or "-", route, bytes from and to the client, duration, outcome). */
#ifndef NEOSOCKSD_HTTPFWD_H
#define NEOSOCKSD_HTTPFWD_H

#include <stdbool.h>

#include <event2/event.h>

#include "common/http1.h"
#include "front/session.h"

struct front_conf;
void httpfwd_setup(struct event_base *base, const struct front_conf *fc);

/* A request head other than CONNECT is in s->hs (parsed into h, hs->off
 * past it, credentials taken): route it and forward it. */
void httpfwd_request(struct session *s, const struct http1_head *h);
/* A CONNECT follows forwarded requests: drop the forward state (and the
 * upstream connection kept), the tunnel takes the connection. */
void httpfwd_end(struct session *s);
/* An idle connection sends again: stop the idle timer. */
void httpfwd_wake(struct session *s);

/* The session driver's hooks (httpproxy.c's http_driver). */
bool httpfwd_before_dial(struct session *s);
/* The dial for a forwarded request succeeded: 1 (the exchange runs), or
 * -1 when the session was closed. */
int httpfwd_dialed(struct session *s);
void httpfwd_on_event(struct session *s, short what, bool client);
void httpfwd_timeout(struct session *s);
/* The access line of a closing session: true when written here (the
 * request under way), or when there is none to write (an idle close). */
bool httpfwd_log(struct session *s, const char *outcome);
void httpfwd_on_close(struct session *s);
void httpfwd_on_drain(struct session *s);

#endif
