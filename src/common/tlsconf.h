/* tlsconf: the TLS contexts, built from PEM text in memory.
 *
 * The parent reads the certificate, key and CA files and builds a context
 * from them once, to refuse a bad file with a reason (at start: exit; on
 * SIGHUP: the previous files stay); the ruleset process, which opens no
 * file, builds its own from the same text received over its channel.
 * OpenSSL 3 with its configuration file never loaded (the ruleset process
 * could not open it, and a host's openssl.cnf should not change what the
 * API accepts): TLS 1.2 and 1.3 only, security level 2, no renegotiation,
 * no compression, no session resumption (no tickets, no cache). */
#ifndef NEOSOCKSD_TLSCONF_H
#define NEOSOCKSD_TLSCONF_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

/* A PEM file's text (len 0: not given). */
struct tlsconf_pem {
	const char *p;
	size_t len;
};

/* Before any other call (again: nothing more), and before the sandbox
 * where it can be: it makes the library's lazy set-up happen while
 * anything is allowed. A process without TLS settings never calls it, and
 * so never pays for the library's set-up. 0 or -1. */
int tlsconf_init(void);

/* The API's server context: cert (leaf first, then its chain) and key;
 * with ca, clients must present a certificate that chains to it (asked for
 * in the handshake, which fails without one). NULL with the reason in
 * err. */
SSL_CTX *tlsconf_server(const struct tlsconf_pem *cert,
			const struct tlsconf_pem *key,
			const struct tlsconf_pem *ca, char *err, size_t cap);

/* The RPC client's context: peers must present a certificate that chains
 * to ca (the name is checked per connection); cert and key, when given,
 * are shown to peers that ask. NULL with the reason in err. */
SSL_CTX *tlsconf_client(const struct tlsconf_pem *ca,
			const struct tlsconf_pem *cert,
			const struct tlsconf_pem *key, char *err, size_t cap);

/* A certificate's subject in the RFC 2253 form ("CN=a,O=b"), as
 * `openssl x509 -noout -subject -nameopt RFC2253` prints it. 0, or -1
 * (buf then ""). */
int tlsconf_subject(X509 *x, char *buf, size_t cap);

/* For the log: "subject, valid until DATE" of a context's certificate
 * ("" when it has none); *expired tells whether that date has passed. */
void tlsconf_describe(SSL_CTX *ctx, char *buf, size_t cap, bool *expired);

/* The reason for the last failure of the library in this thread, made
 * for a log line ("certificate verify failed", "no start line"); the
 * error queue is emptied. */
const char *tlsconf_last_error(char *buf, size_t cap);

#endif
