/* rpcall_server: /ruleset/rpcall, the reference's RPC wire format version
 * 1: the posted chunk runs in a routine and the answer is
 * "return true,<marshal(results)>". */
#ifndef NEOSOCKSD_RPCALL_SERVER_H
#define NEOSOCKSD_RPCALL_SERVER_H

#include "ruleset/api.h"

void rpcall_serve(struct api_req *r);

#endif
