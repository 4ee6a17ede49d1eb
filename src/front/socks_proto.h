/* socks_proto: SOCKS4, SOCKS4A and SOCKS5 (RFC 1928, RFC 1929) wire
 * formats. Pure parsers over bytes with a caller-owned state, and pure
 * encoders. No sockets, no allocation.
 *
 * Server side: socks_proto_parse() is fed the unconsumed bytes of the
 * client stream. It returns -1 on error (p->reply says what to send back,
 * see below; p->why is a static reason for logs), 0 when more bytes are
 * needed (nothing consumed), or >0: one message was decoded into *m and
 * that many bytes were consumed. Bytes after the message are not touched
 * (pipelined data stays with the caller).
 *
 * Message sequence: SOCKS4/4A: one SOCKS_MSG_S4_REQUEST. SOCKS5:
 * SOCKS_MSG_S5_GREETING, then the caller picks a method and stores it in
 * p->method before feeding more bytes: SOCKS5_METHOD_USERPASS makes the
 * next message SOCKS_MSG_S5_AUTH; SOCKS5_METHOD_NOAUTH goes straight to
 * SOCKS_MSG_S5_REQUEST.
 *
 * p->reply on error: SOCKS_REPLY_NONE (close without a reply), or for
 * SOCKS4 a CD code (91), for SOCKS5 greeting errors SOCKS_REPLY_NOMETHOD
 * (send 05 FF), for SOCKS5 auth errors SOCKS_REPLY_AUTHFAIL (send 01 01),
 * for SOCKS5 request errors a REP code (01 general, 08 address type). */
#ifndef NEOSOCKSD_SOCKS_PROTO_H
#define NEOSOCKSD_SOCKS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/addr.h"

enum {
	SOCKS4_CMD_CONNECT = 1,
	SOCKS4_CMD_BIND = 2,
	SOCKS4_GRANTED = 90,
	SOCKS4_REJECTED = 91,

	SOCKS5_METHOD_NOAUTH = 0x00,
	SOCKS5_METHOD_USERPASS = 0x02,
	SOCKS5_METHOD_NONE = 0xff,

	SOCKS5_CMD_CONNECT = 1,
	SOCKS5_CMD_BIND = 2,
	SOCKS5_CMD_UDP_ASSOCIATE = 3,

	SOCKS5_REP_SUCCEEDED = 0x00,
	SOCKS5_REP_FAIL = 0x01,
	SOCKS5_REP_NOT_ALLOWED = 0x02,
	SOCKS5_REP_NET_UNREACH = 0x03,
	SOCKS5_REP_HOST_UNREACH = 0x04,
	SOCKS5_REP_REFUSED = 0x05,
	SOCKS5_REP_TTL_EXPIRED = 0x06,
	SOCKS5_REP_CMD_UNSUPPORTED = 0x07,
	SOCKS5_REP_ATYP_UNSUPPORTED = 0x08,
};

#define SOCKS_REPLY_NONE (-1)
#define SOCKS_REPLY_NOMETHOD (-2)
#define SOCKS_REPLY_AUTHFAIL (-3)

#define SOCKS_USERID_MAX 255 /* SOCKS4 USERID and RFC 1929 fields */

enum socks_msg_kind {
	SOCKS_MSG_S4_REQUEST = 1,
	SOCKS_MSG_S5_GREETING,
	SOCKS_MSG_S5_AUTH,
	SOCKS_MSG_S5_REQUEST,
};

struct socks_msg {
	uint8_t kind;    /* enum socks_msg_kind */
	uint8_t version; /* 4 or 5 */
	bool socks4a;    /* S4_REQUEST carried a host name */
	uint8_t cmd;     /* S4_REQUEST / S5_REQUEST */
	struct netaddr target;
	/* S5_GREETING */
	uint8_t nmethods;
	uint8_t methods[255];
	/* S5_AUTH (RFC 1929) and S4 USERID (in user; pass empty) */
	uint8_t ulen, plen;
	char user[SOCKS_USERID_MAX + 1]; /* NUL-terminated */
	char pass[SOCKS_USERID_MAX + 1];
};

enum socks_stage {
	SOCKS_STAGE_START = 0,
	SOCKS_STAGE_S5_METHOD, /* greeting seen; waiting for p->method */
	SOCKS_STAGE_S5_REQUEST,
	SOCKS_STAGE_DONE,
};

struct socks_parser {
	uint8_t stage;  /* enum socks_stage */
	uint8_t method; /* set by the caller after SOCKS_MSG_S5_GREETING */
	int reply;      /* on error, see above */
	const char *why;
};

void socks_proto_init(struct socks_parser *p);
int socks_proto_parse(struct socks_parser *p, const uint8_t *buf, size_t len,
		      struct socks_msg *m);

/* Pick the SOCKS5 method: walk the client's list in order and take the
 * first of NOAUTH (only when !auth_required) and USERPASS. Returns
 * SOCKS5_METHOD_NONE when nothing is acceptable. */
uint8_t socks_proto_select_method(const struct socks_msg *greeting,
				  bool auth_required);

/* Server-side encoders. Each returns the number of bytes written. */
size_t socks_proto_s4_reply(uint8_t out[8], uint8_t cd);
size_t socks_proto_s5_method_reply(uint8_t out[2], uint8_t method);
size_t socks_proto_s5_auth_reply(uint8_t out[2], uint8_t status);
/* REP with BND.ADDR/PORT from bnd (AF_INET/AF_INET6), or 0.0.0.0:0 when
 * bnd is NULL. At most 22 bytes. */
size_t socks_proto_s5_reply(uint8_t out[22], uint8_t rep,
			    const struct sockaddr *bnd);

/* Client side, for outbound chains. Encoders return the length written or
 * 0 if the output does not fit / the input cannot be encoded. Reply
 * parsers follow the tri-state (-1 error, 0 need more, >0 consumed). */

/* SOCKS4 for an IPv4 target, SOCKS4A (DSTIP 0.0.0.1 + host name) for a
 * domain, and SOCKS4A with the textual IPv6 as host name for IPv6. */
size_t socks_proto_c4_request(uint8_t *out, size_t cap,
			      const struct netaddr *target, const char *userid);
/* 8 bytes: VN must be 0; *cd gets the code. */
int socks_proto_c4_reply(const uint8_t *buf, size_t len, uint8_t *cd);

/* "05 01 00" or, with auth, "05 02 00 02". */
size_t socks_proto_c5_greeting(uint8_t *out, size_t cap, bool with_auth);
/* 2 bytes: VER 5 and the chosen method. */
int socks_proto_c5_method(const uint8_t *buf, size_t len, uint8_t *method);
/* RFC 1929 request: 01 ULEN UNAME PLEN PASSWD (each 1..255 bytes). */
size_t socks_proto_c5_auth(uint8_t *out, size_t cap, const char *user,
			   const char *pass);
/* 2 bytes: VER 1 and STATUS. */
int socks_proto_c5_auth_reply(const uint8_t *buf, size_t len,
			      uint8_t *status);
/* CONNECT with ATYP 1/3/4 by target type. */
size_t socks_proto_c5_connect(uint8_t *out, size_t cap,
			      const struct netaddr *target);
/* The same request with another command (UDP ASSOCIATE, BIND). */
size_t socks_proto_c5_request(uint8_t *out, size_t cap, uint8_t cmd,
			      const struct netaddr *target);

/* SOCKS5 UDP request header (RFC 1928 section 7): RSV RSV FRAG ATYP
 * DST.ADDR DST.PORT. socks_proto_udp_parse() decodes the header at the
 * start of a datagram: -1 malformed (truncated, RSV not zero, unknown
 * ATYP, an empty name or one with a NUL or not a valid host name), else
 * the header's length, with *frag and *dst set (the payload follows).
 * socks_proto_udp_header() encodes one for addr (IPv4, IPv6 or a name)
 * and returns its length, or 0 when it does not fit. */
#define SOCKS_UDP_HDR_MAX (4 + 1 + 255 + 2)
int socks_proto_udp_parse(const uint8_t *buf, size_t len, uint8_t *frag,
			  struct netaddr *dst);
size_t socks_proto_udp_header(uint8_t *out, size_t cap,
			      const struct netaddr *addr);
/* VER REP RSV ATYP BND.ADDR BND.PORT (ATYP 1, 3 or 4). *rep gets REP;
 * bnd (may be NULL) the bound address. */
int socks_proto_c5_reply(const uint8_t *buf, size_t len, uint8_t *rep,
			 struct netaddr *bnd);

#endif
