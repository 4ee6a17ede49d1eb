/* rpcall: the reference's RPC wire format version 1, as the server
 * (/ruleset/rpcall, rpcall_server.c) and the client (await.invoke,
 * rpcall_client.c) share it: the media type, which both send and check,
 * and the size from which both deflate a body. */
#ifndef NEOSOCKSD_RPCALL_H
#define NEOSOCKSD_RPCALL_H

#include <stdbool.h>
#include <stddef.h>

#define RPC_MIME "application/x-neosocksd-rpc; version=1"
#define RPC_COMPRESS_MIN 256 /* bodies this long or longer are deflated */

/* A Content-Type value (len bytes, not NUL-terminated) of RPC version 1:
 * application/x-neosocksd-rpc (any case), then parameters after ';' in any
 * order, white space around them ignored: at least one version parameter,
 * and every one version=1 or version="1". */
bool rpcall_mime_ok(const char *ct, size_t len);

#endif
