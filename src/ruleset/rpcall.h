/* rpcall: RPC between daemons, the reference's wire format version 1.
 * Server: /ruleset/rpcall runs the posted chunk in a routine and answers
 * "return true,<marshal(results)>". Client: await.invoke and friends. */
#ifndef NEOSOCKSD_RPCALL_H
#define NEOSOCKSD_RPCALL_H

#include "ruleset/api.h"

void rpcall_serve(struct api_req *r);

#endif
