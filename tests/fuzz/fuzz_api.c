/* Fuzz target: the REST API's request path up to the Lua call
 * (src/ruleset/api_conn.c through a socket-free connection): framing,
 * limits, access checks (tokens, Origin, Host), bodies (Content-Length,
 * chunked, deflate and gzip), Expect, pipelining and in-order answers.
 * The router (api_routes.c, which calls into Lua) is replaced by a stub
 * that checks what reaches it and answers at once, or later for
 * /ruleset/rpcall (so answers wait their turn).
 *
 * Flag byte: bit 0 tokens configured, bit 1 the client is loopback (else
 * 192.0.2.7), bit 2 end of input at the end, bits 3-7 the piece size. The
 * output must be a sequence of well-formed responses, each with a
 * Content-Length (interim 100 Continue aside), as many as the requests
 * that reached the stub at most plus the transport's own errors. */
#include "fuzz.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "common/config.h"
#include "common/http1.h"
#include "common/log.h"
#include "ruleset/api.h"
#include "ruleset/api_access.h"
#include "ruleset/api_conn.h"
#include "ruleset/api_routes.h"
#include "ruleset/ruleset_main.h"

#define FUZZ_API_ADMIN "fuzz-admin-token-0123456789"
#define FUZZ_API_RO "fuzz-read-token-0123456789"
#define FUZZ_API_LATER 64

static struct event_base *fuzz_api_base;
static struct api_req *fuzz_api_later[FUZZ_API_LATER];
static unsigned fuzz_api_nlater, fuzz_api_dispatched, fuzz_api_dropped;
static bool fuzz_api_open;
static char *fuzz_api_out;
static size_t fuzz_api_outlen, fuzz_api_outcap;

struct event_base *ruleset_base(void)
{
	return fuzz_api_base;
}

static void fuzz_api_answer(struct api_req *r)
{
	char body[64];
	int n = snprintf(body, sizeof(body), "%s %zu\n", r->method,
			 r->body_len);

	api_reply_text(r, 200, "text/plain", body, (size_t)n, true);
}

/* The router's place: what reaches it is a whole, checked request. */
void api_dispatch(struct api_req *r)
{
	FUZZ_CHECK(memchr(r->method, 0, sizeof(r->method)) && r->method[0]);
	FUZZ_CHECK(memchr(r->path, 0, sizeof(r->path)) && r->path[0] == '/');
	FUZZ_CHECK(memchr(r->query, 0, sizeof(r->query)));
	FUZZ_CHECK(r->level == API_READ || r->level == API_ADMIN);
	FUZZ_CHECK(r->body_len <= API_BODY_MAX);
	FUZZ_CHECK(r->body == NULL || r->body[r->body_len] == '\0');
	FUZZ_CHECK(api_req_alive(r));
	fuzz_api_dispatched++;
	if (strcmp(r->path, "/ruleset/rpcall") == 0 &&
	    fuzz_api_nlater < FUZZ_API_LATER) {
		fuzz_api_later[fuzz_api_nlater++] = r;
		return;
	}
	fuzz_api_answer(r);
}

static void fuzz_api_sink(void *ud, const void *data, size_t len)
{
	(void)ud;
	if (data == NULL) {
		FUZZ_CHECK(fuzz_api_open);
		fuzz_api_open = false;
		return;
	}
	FUZZ_CHECK(fuzz_api_open);
	if (fuzz_api_outlen + len > fuzz_api_outcap) {
		size_t cap = (fuzz_api_outlen + len) * 2;
		char *p = realloc(fuzz_api_out, cap);

		FUZZ_CHECK(p != NULL);
		fuzz_api_out = p;
		fuzz_api_outcap = cap;
	}
	memcpy(fuzz_api_out + fuzz_api_outlen, data, len);
	fuzz_api_outlen += len;
}

/* Answer what waited, oldest first (a reply on a closed connection is
 * dropped by api_reply). */
static void fuzz_api_answer_later(void)
{
	unsigned n = fuzz_api_nlater;

	fuzz_api_nlater = 0;
	for (unsigned k = 0; k < n; k++) {
		if (!api_req_alive(fuzz_api_later[k]))
			fuzz_api_dropped++;
		fuzz_api_answer(fuzz_api_later[k]);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct config *c = calloc(1, sizeof(*c));

	(void)argc;
	(void)argv;
	log_level = LOGL_SILENT;
	fuzz_api_base = event_base_new();
	FUZZ_CHECK(fuzz_api_base != NULL && c != NULL);
	config_defaults(c);
	snprintf(c->restapi, sizeof(c->restapi), "127.0.0.1:9080");
	FUZZ_CHECK(api_configure(c) == 0);
	free(c);
	return 0;
}

/* Every response whole and framed; their number. */
static unsigned fuzz_api_responses(void)
{
	struct http1_head *h = malloc(sizeof(*h));
	size_t off = 0;
	unsigned n = 0;

	FUZZ_CHECK(h != NULL);
	while (off < fuzz_api_outlen) {
		struct http1_parser p;
		long r;

		http1_parser_init(&p, HTTP1_RESPONSE);
		r = http1_parse(&p, fuzz_api_out + off, fuzz_api_outlen - off,
				h);
		FUZZ_CHECK(r > 0);
		off += (size_t)r;
		if (h->status == 100)
			continue;
		FUZZ_CHECK(h->content_length >= 0 &&
			   (uint64_t)h->content_length <= fuzz_api_outlen - off);
		off += (size_t)h->content_length;
		n++;
	}
	free(h);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage ss;
	struct api_conn *c;
	size_t piece, off = 0;
	bool eof;

	if (size == 0)
		return 0;
	api_access_set_tokens(data[0] & 1 ? FUZZ_API_ADMIN : "",
		       data[0] & 1 ? FUZZ_API_RO : "");
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_INET;
	((struct sockaddr_in *)&ss)->sin_addr.s_addr =
		htonl(data[0] & 2 ? 0x7f000001 : 0xc0000207);
	eof = data[0] & 4;
	piece = ((size_t)data[0] >> 3) * 61 + 1;
	data++;
	size--;
	fuzz_api_outlen = 0;
	fuzz_api_dispatched = fuzz_api_dropped = 0;
	fuzz_api_open = true;
	c = api_conn_open(&ss, fuzz_api_sink, NULL);
	FUZZ_CHECK(c != NULL);
	do {
		size_t k = size - off < piece ? size - off : piece;
		long took = api_conn_feed(c, data + off, k,
					  eof && off + k == size);

		FUZZ_CHECK((took < 0) == !fuzz_api_open);
		if (took <= 0)
			break; /* closed, or it reads no more */
		off += (size_t)took;
		fuzz_api_answer_later();
	} while (fuzz_api_open && off < size);
	fuzz_api_answer_later();
	/* each request that reached the router was answered once */
	FUZZ_CHECK(fuzz_api_responses() >=
		   fuzz_api_dispatched - fuzz_api_dropped);
	if (fuzz_api_open)
		api_conn_drop(c);
	FUZZ_CHECK(!fuzz_api_open);
	return 0;
}
