/* addr: network addresses as the proxy sees them. Pure functions: no
 * sockets are opened, nothing is allocated, nothing is resolved. */
#ifndef NEOSOCKSD_ADDR_H
#define NEOSOCKSD_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Address kinds; the values are the SOCKS5 ATYP codes. */
enum addr_type {
	ADDR_IPV4 = 1,
	ADDR_DOMAIN = 3,
	ADDR_IPV6 = 4,
};

#define ADDR_NAME_MAX 255 /* longest domain name carried by SOCKS */
#define ADDR_DNS_NAME_MAX 253 /* longest host name (a trailing dot aside) */
#define ADDR_DNS_LABEL_MAX 63
/* "[" + longest IPv6 text + "]:" + port, or a 255-byte name + ":65535" */
#define ADDR_STRLEN 264

/* A proxy target or hop: an IP literal or a domain name, and a port. */
struct netaddr {
	uint8_t type;    /* enum addr_type */
	uint8_t namelen; /* ADDR_DOMAIN: length of u.name without the NUL */
	uint16_t port;   /* host byte order */
	union {
		uint8_t v4[4];
		uint8_t v6[16];
		char name[ADDR_NAME_MAX + 1]; /* NUL-terminated */
	} u;
};

/* True when name[0..len) may be handed to a resolver: a host name made
 * of dot-separated labels of 1..63 bytes from A-Z a-z 0-9 '-' '_', at most
 * 253 bytes, with at most one trailing dot (not counted); or an IPv6
 * literal without brackets or zone ("::1", "::ffff:1.2.3.4"), which no
 * library resolves. Everything else is refused: empty names and labels,
 * '%' (an IPv6 zone makes libevent call if_nametoindex()), NUL, spaces,
 * non-ASCII bytes. Every host name taken from the network, a ruleset or
 * the command line passes here before any library sees it. */
bool addr_name_valid(const char *name, size_t len);

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) becomes the IPv4 address
 * it holds; anything else is left as it is. Returns true if it changed. */
bool addr_unmap(struct netaddr *a);

/* The same target: type, port and address (a name compared byte for byte,
 * case included). A mapped IPv6 address is not its IPv4 one: unmap first
 * where they should be. */
bool addr_equal(const struct netaddr *a, const struct netaddr *b);

/* Split "host:port", "[v6]:port" or ":port" into host and port strings.
 * Brackets are removed from an IPv6 host. The ':' separator is required,
 * but the host and the port may each be empty (callers decide); the port
 * is not parsed (see addr_parse_port). Returns 0, or -1 when malformed or
 * when a part does not fit its buffer (NUL included). */
int addr_splithostport(const char *s, size_t len, char *host, size_t hostcap,
		       char *port, size_t portcap);

/* Parse a port number "0".."65535" (decimal digits only). 0 or -1. */
int addr_parse_port(const char *s, size_t len, uint16_t *port);

/* Parse "host:port" into a netaddr. An IPv4 or IPv6 literal host becomes
 * ADDR_IPV4 / ADDR_IPV6 (IPv6 must be bracketed), anything else a domain
 * name, which must pass addr_name_valid() and not end in a numeric label
 * (a malformed IPv4 literal such as "127.1"). If the port is absent (no colon) and default_port
 * is >= 0, that port is used; otherwise a port is required.
 * Returns 0, or -1. */
int addr_parse(struct netaddr *a, const char *s, size_t len, int default_port);

/* Set a netaddr from a host string (no port) and a port: literal IPs are
 * recognised as in addr_parse. Returns 0 or -1. */
int addr_set_host(struct netaddr *a, const char *host, size_t len,
		  uint16_t port);

/* Format as "1.2.3.4:80", "[::1]:80" or "name:80". Returns the length
 * written (NUL excluded), or -1 if cap is too small. */
int addr_format(const struct netaddr *a, char *buf, size_t cap);

/* Format only the host part (no brackets, no port). Same return. */
int addr_format_host(const struct netaddr *a, char *buf, size_t cap);

/* Format a sockaddr (AF_INET/AF_INET6; AF_UNIX as its path) the same way.
 * Returns the length, or -1. */
int addr_format_sockaddr(const struct sockaddr *sa, char *buf, size_t cap);

/* Convert an IP netaddr to a sockaddr. Returns the sockaddr length, or -1
 * for a domain name. */
int addr_to_sockaddr(const struct netaddr *a, struct sockaddr_storage *ss);

/* Convert a sockaddr (AF_INET/AF_INET6) to a netaddr. 0 or -1. */
int addr_from_sockaddr(struct netaddr *a, const struct sockaddr *sa);

/* Parse a listen address: "host:port", "[v6]:port", ":port" (wildcard,
 * IPv6 any with dual stack), or "host" alone is an error. Host must be an
 * IP literal. Returns the sockaddr length, or -1. */
int addr_parse_listen(const char *s, struct sockaddr_storage *ss);

/* Parse "a.b.c.d[/n]" or "v6[/n]" (no brackets). 0 or -1. */
int addr_parse_cidr(const char *s, size_t len, int *family,
		    uint8_t addr[16], int *bits);

/* Address classes for --block-outbound. */
enum addr_class {
	ADDR_CLASS_LOOPBACK = 1,
	ADDR_CLASS_MULTICAST,
	ADDR_CLASS_LOCAL, /* link-local, private (RFC 1918, ULA fc00::/7), CGNAT */
	ADDR_CLASS_GLOBAL,
	ADDR_CLASS_UNKNOWN, /* unspecified (0.0.0.0, ::), reserved: always blocked */
};

/* Classify an AF_INET/AF_INET6 address. IPv4-mapped IPv6 addresses are
 * classified as the embedded IPv4 address. */
enum addr_class addr_classify(const struct sockaddr *sa);
const char *addr_class_name(enum addr_class c);

#endif
