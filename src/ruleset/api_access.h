/* api_access: the REST API's access policy: the client allowlist, the
 * connection slots (reserved ones, a cap per address), the bearer tokens
 * and their levels, the Host and Origin rules. Pure: it looks at
 * addresses, counts and parsed heads, never at sockets. */
#ifndef NEOSOCKSD_API_ACCESS_H
#define NEOSOCKSD_API_ACCESS_H

#include <stdbool.h>
#include <stdint.h>
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
	bool cert_readonly;    /* its TLS client certificate matches
				* --api-tls-readonly-subject: read-only,
				* whatever token it shows */
	bool tls;              /* came over TLS: Host is not checked */
};

/* One client as the per-address cap counts them: an IPv4 address
 * (IPv4-mapped ones too), an IPv6 /64 (what one host is usually given).
 * len 0: not counted (a unix-socket client; the socket's mode decides
 * who connects). */
struct api_access_key {
	uint8_t len;
	uint8_t b[8];
};

/* --api-allow, the API's own address (for Host) and the slot settings
 * (--api-max-conns, --api-reserved, --api-max-conns-per-addr). 0, or -1
 * when the allowlist does not parse. */
int api_access_setup(const struct config *conf);
/* The admin and read-only tokens ("" for none; with neither, everyone
 * is an admin: the API then listens only where the parent allowed it). */
void api_access_set_tokens(const char *admin, const char *readonly);
/* May this client connect at all (--api-allow; a unix socket may)? */
bool api_access_peer_ok(const struct sockaddr_storage *ss);
void api_access_key_of(const struct sockaddr_storage *ss,
		       struct api_access_key *k);
bool api_access_key_eq(const struct api_access_key *a,
		       const struct api_access_key *b);
/* May this client take one of the --api-reserved slots? With --api-allow,
 * every client it admits; without it, loopback and unix-socket ones. */
bool api_access_trusted(const struct sockaddr_storage *ss);
/* Room for one more connection of this client, with conns open in all
 * and same_key of them from its address? NULL, or why not (for the log):
 * --api-max-conns reached, only reserved slots left and the client is
 * not trusted, or less than a quarter of the slots are free and its
 * address holds --api-max-conns-per-addr. */
const char *api_access_room(uint32_t conns, uint32_t same_key,
			    const struct api_access_key *k, bool trusted);
/* A whole request head: 0 with *level (enum api_level) when it may go on,
 * or the status to refuse it with: 401 for missing or wrong credentials
 * (checked first), 403 for a browser-borne request (Origin; without a
 * token, a Host that is not a name of this API) or a level too low for
 * method and path, with *why the sentence saying so (static). With both
 * a client certificate and a token, the lower of their levels counts. */
int api_access_check(const char *buf, const struct http1_head *h,
		     const struct api_access_peer *who, const char *method,
		     const char *path, int *level, const char **why);
/* --api-host's list: the number of names (each into out[i] as a Host
 * header would carry it, IPv6 in brackets, unless out is NULL), or -1
 * when one is not a host name or IP literal, or there are more than max. */
int api_access_parse_hosts(const char *csv, char (*out)[API_HOST_LEN + 1],
			   int max);

#endif
