/* api_routes: the endpoints' links to the rest of the process. */
#ifndef NEOSOCKSD_API_ROUTES_H
#define NEOSOCKSD_API_ROUTES_H

#include <stdint.h>

#include "common/msg.h"
#include "ruleset/api.h"

/* A whole request: route it to its endpoint, which answers it. */
void api_dispatch(struct api_req *req);

#endif
