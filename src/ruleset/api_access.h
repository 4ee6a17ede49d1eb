/* api_access: the REST API's access policy: the client allowlist, the
 * bearer tokens and their levels, the Host and Origin rules. Pure: it
 * looks at addresses and parsed heads, never at sockets. */
#ifndef NEOSOCKSD_API_ACCESS_H
#define NEOSOCKSD_API_ACCESS_H

#include <stdbool.h>
#include <sys/socket.h>

#include "common/addr.h"
#include "common/config.h"
#include "common/http1.h"
#include "common/msg.h"
#include "ruleset/api.h"

#define API_TOKEN_MAX MSG_TOKEN_MAX
#define API_HOST_LEN (ADDR_NAME_MAX + 3) /* a name, or "[v6]" */

/* The client as the transport knows it. */
struct api_access_peer {
	bool unix_socket;      /* came on a unix-socket API */
	const char *host_here; /* "addr:port" it connected to, or "" */
};

/* --api-allow and the API's own address (for Host). 0, or -1 when the
 * allowlist does not parse. */
int api_access_setup(const struct config *conf);
/* The admin and read-only tokens ("" for none; with neither, everyone
 * is an admin: the API then listens only where the parent allowed it). */
void api_access_set_tokens(const char *admin, const char *readonly);
/* May this client connect at all (--api-allow; a unix socket may)? */
bool api_access_peer_ok(const struct sockaddr_storage *ss);
/* A whole request head: 0 with *level (enum api_level) when it may go on,
 * or the status to refuse it with: 401 for missing or wrong credentials
 * (checked first), 403 for a browser-borne request (Origin; without a
 * token, a Host that is not a name of this API) or a level too low for
 * method and path, with *why the sentence saying so (static). */
int api_access_check(const char *buf, const struct http1_head *h,
		     const struct api_access_peer *who, const char *method,
		     const char *path, int *level, const char **why);
/* --api-host's list: the number of names (each into out[i] as a Host
 * header would carry it, IPv6 in brackets, unless out is NULL), or -1
 * when one is not a host name or IP literal, or there are more than max. */
int api_access_parse_hosts(const char *csv, char (*out)[API_HOST_LEN + 1],
			   int max);

#endif
