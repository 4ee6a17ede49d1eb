/* parent_api: the parent's part of the REST API: the listener, the token
 * files, the status it tells the ruleset process, and the kept
 * /ruleset/update records it hands each new one (state.c keeps them). */
#ifndef NEOSOCKSD_PARENT_API_H
#define NEOSOCKSD_PARENT_API_H

#include <stddef.h>

/* A file named without a '/' (a token file, a TLS file) is a credential
 * systemd passed (LoadCredential=): the path in $CREDENTIALS_DIRECTORY,
 * written into buf. Else the path as given. */
const char *parent_api_credential_path(const char *path, char *buf,
				       size_t cap);
int parent_api_read_tokens(void);
int parent_api_bind(void);
void parent_api_send_listener(void);
void parent_api_close(void);
void parent_api_status(void);
void parent_api_reload(void);
void parent_api_init(void);
void parent_api_ruleset_spawned(void);

#endif
