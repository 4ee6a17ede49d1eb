/* api_routes: the endpoints' links to the rest of the process. */
#ifndef NEOSOCKSD_API_ROUTES_H
#define NEOSOCKSD_API_ROUTES_H

#include <stdint.h>

#include "common/msg.h"
#include "ruleset/api.h"

/* A whole request: route it to its endpoint, which answers it. */
void api_dispatch(struct api_req *req);
void api_routes_set_status(const struct msg_status *st);
void api_routes_on_stats(const struct msg *m);
void api_routes_front_gone(void);
/* One RPC/invoke request sent to another daemon, for /stats. */
void api_routes_count_rpc(uint64_t rx, uint64_t tx);

#endif
