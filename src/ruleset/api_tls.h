/* api_tls: the ruleset process's TLS contexts, built from the files the
 * parent read and sent (MSG_R_TLS): the API server's (--api-tls-cert,
 * --api-tls-key, --api-tls-client-ca) and the RPC client's (--rpc-tls-ca,
 * --rpc-tls-cert, --rpc-tls-key). Each is replaced whole when the parent
 * sends new files (SIGHUP): new connections use the new one, connections
 * already up keep theirs; files that do not build a context leave the
 * previous one in place. Also the level a client certificate gives. */
#ifndef NEOSOCKSD_API_TLS_H
#define NEOSOCKSD_API_TLS_H

#include <openssl/ssl.h>

#include "common/msgchan.h"
#include "ruleset/tlsconn.h"

/* MSG_R_TLS: 0, or -1 when it is malformed (its sizes do not add up).
 * The contents are wiped from the message once used. */
int api_tls_receive(const struct msg *m);

/* The API's context (NULL: none received), the RPC client's (NULL: no
 * --rpc-tls-ca). */
SSL_CTX *api_tls_server(void);
SSL_CTX *api_tls_client(void);

/* The level (enum api_level) a verified client certificate's subject
 * gives: API_READ when it matches pattern (--api-tls-readonly-subject, a
 * glob), else API_ADMIN. */
int api_tls_level(const char *subject, const char *pattern);

/* Drop both contexts (exit, tests). */
void api_tls_free(void);

#endif
