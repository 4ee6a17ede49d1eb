/* api_conn: the REST API's HTTP/1.1 transport. */
#ifndef NEOSOCKSD_API_CONN_H
#define NEOSOCKSD_API_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"
#include "ruleset/api.h"

/* Start serving on the listener the parent bound. 0 or -1. */
int api_start(int fd, const struct config *c);
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

#endif
