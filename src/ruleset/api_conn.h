/* api_conn: the REST API's HTTP/1.1 transport. */
#ifndef NEOSOCKSD_API_CONN_H
#define NEOSOCKSD_API_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "common/config.h"
#include "ruleset/api.h"

/* Start serving on the listener the parent bound. 0 or -1. */
int api_start(int fd, const struct config *c);
/* The settings alone (api_start does this first). 0 or -1. */
int api_configure(const struct config *c);
const struct api_counters *api_counters(void);

/* Handlers answer exactly once, now or later; until then later requests on
 * the same connection wait (responses keep their order). */
void api_reply(struct api_req *req, int status, const char *ctype,
	       const void *body, size_t len, const char *extra_headers);
/* A Lua-side text answer, deflated when the client accepts it and compress
 * allows. */
void api_reply_text(struct api_req *req, int status, const char *ctype,
		    const char *text, size_t len, bool compress);
/* The request's connection went away: late replies are dropped. */
bool api_req_alive(const struct api_req *req);

/* Socket-free connections, for tests and fuzzing: the same request path
 * (limits, access checks, bodies, in-order answers), with input handed in
 * and output handed to sink (sink(ud, NULL, 0) once, when the connection
 * closes and is freed). api_conn_feed takes what a read would (it
 * stops early while the connection does not read) and returns the bytes
 * taken, or -1 once the connection closed (it is freed); eof: the client
 * is done sending. Deadlines are armed on ruleset_base() as usual. */
typedef void (*api_sink_fn)(void *ud, const void *data, size_t len);
struct api_conn *api_conn_open(const struct sockaddr_storage *peer,
			       api_sink_fn sink, void *ud);
long api_conn_feed(struct api_conn *c, const void *data, size_t len,
		   bool eof);
void api_conn_drop(struct api_conn *c);

#endif
