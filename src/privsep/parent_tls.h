/* parent_tls: the TLS files of the API (--api-tls-cert, --api-tls-key,
 * --api-tls-client-ca) and of the RPC client (--rpc-tls-ca,
 * --rpc-tls-cert, --rpc-tls-key). The parent reads them (a key readable
 * by group or others is refused), checks that they make a working TLS
 * context, keeps the last good contents and hands them to the ruleset
 * process (MSG_R_TLS), which never opens a file. A file named without a
 * '/' is a systemd credential, read from $CREDENTIALS_DIRECTORY (as token
 * files are). */
#ifndef NEOSOCKSD_PARENT_TLS_H
#define NEOSOCKSD_PARENT_TLS_H

#include "common/config.h"

/* At start: read and check every configured file. 0, or -1 (logged: the
 * daemon must not start). */
int parent_tls_load(void);

/* SIGHUP: read them again. A set (the API's, the RPC client's) that fails
 * keeps its previous contents, and the log says why. Sends what changed
 * to the ruleset process. */
void parent_tls_reload(void);

/* Hand the files to the ruleset process (a new one, or after a change). */
void parent_tls_send(void);

#endif
