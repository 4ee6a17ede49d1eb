/* proxyuri: outbound proxy URIs ("socks4://", "socks4a://", "socks5://",
 * "socks5h://", "http://") and chains of them. Pure: no I/O. */
#ifndef NEOSOCKSD_PROXYURI_H
#define NEOSOCKSD_PROXYURI_H

#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"

enum proxy_scheme {
	PROXY_SOCKS4A = 1,
	PROXY_SOCKS5,
	PROXY_HTTP,
	PROXY_SOCKS4, /* the hop is sent an IPv4 address, resolved here */
};

#define PROXYURI_MAX 1023   /* longest URI accepted */
#define PROXY_CRED_MAX 255  /* longest user name or password */
#define PROXYCHAIN_MAX 16   /* most hops in one chain */

struct proxy_hop {
	uint8_t scheme; /* enum proxy_scheme */
	uint8_t has_user, has_pass;
	char user[PROXY_CRED_MAX + 1]; /* percent-decoded, NUL-terminated */
	char pass[PROXY_CRED_MAX + 1];
	struct netaddr addr;
};

/* Parse one URI: scheme "://" [user [":" pass] "@"] host [":" port]
 * with an optional trailing "/". Schemes are exact lower-case; socks5h is
 * socks5 (names always go to the proxy). Default ports: socks4, socks4a
 * and socks5 1080, http 80. userinfo is percent-decoded;
 * decoded NUL bytes are refused. IPv6 hosts are bracketed. Returns 0, or
 * -1 with *err set to a static message. */
int proxyuri_parse(struct proxy_hop *hop, const char *uri, size_t len,
		   const char **err);

/* Parse a comma-separated chain "uri1,uri2,..." (first hop first) into
 * hops[0..*n). At most cap hops. Empty elements are errors. 0 or -1. */
int proxyuri_parse_chain(struct proxy_hop *hops, size_t cap, size_t *n,
			 const char *csv, size_t len, const char **err);

/* Format a hop for logs: "socks5://host:port", with "user@" when a user
 * is set but never the password. Returns length or -1. */
int proxyuri_format(const struct proxy_hop *hop, char *buf, size_t cap);

/* Format hops[0..n) as proxyuri_format does, joined by sep ("->" for the
 * access log, "," for config()). Returns the length, or -1 when not all
 * fit: buf then holds the hops that did, whole, without a trailing sep
 * ("" for none). */
int proxyuri_format_chain(const struct proxy_hop *hops, size_t n,
			  const char *sep, char *buf, size_t cap);

const char *proxyuri_scheme_name(enum proxy_scheme s);

#endif
