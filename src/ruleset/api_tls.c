/* api_tls: the ruleset process's TLS contexts (see api_tls.h). */
#include "ruleset/api_tls.h"

#include <fnmatch.h>
#include <stdint.h>
#include <string.h>

#include "common/log.h"
#include "common/msg.h"
#include "common/tlsconf.h"
#include "ruleset/api.h"

static struct {
	SSL_CTX *server, *client;
} api_tls;

SSL_CTX *api_tls_server(void)
{
	return api_tls.server;
}

SSL_CTX *api_tls_client(void)
{
	return api_tls.client;
}

/* Replace *slot with ctx (NULL: the files were refused, *slot stays). */
static void api_tls_swap(SSL_CTX **slot, SSL_CTX *ctx, const char *what,
			 const char *err)
{
	char desc[512];
	bool expired;

	if (ctx == NULL) {
		LOGE("%s: %s; the previous one stays", what, err);
		return;
	}
	SSL_CTX_free(*slot); /* connections up hold their own reference */
	*slot = ctx;
	tlsconf_describe(ctx, desc, sizeof(desc), &expired);
	LOGD("%s: %s", what, desc[0] ? desc : "no certificate of its own");
}

int api_tls_receive(const struct msg *m)
{
	struct msg_tls h;
	struct tlsconf_pem pem[MSG_TLS_NFILES];
	uint64_t off = sizeof(h);
	char err[512];

	memcpy(&h, m->data, sizeof(h));
	for (int i = 0; i < MSG_TLS_NFILES; i++) {
		if (h.len[i] > MSG_TLS_PEM_MAX)
			return -1;
		pem[i].p = (const char *)m->data + off;
		pem[i].len = h.len[i];
		off += h.len[i];
	}
	if (off != m->len)
		return -1;
	if (tlsconf_init() < 0) { /* done before the sandbox: a no-op */
		LOGE("cannot initialise OpenSSL");
		return 0;
	}
	if (pem[MSG_TLS_API_CERT].len > 0)
		api_tls_swap(&api_tls.server,
			     tlsconf_server(&pem[MSG_TLS_API_CERT],
					    &pem[MSG_TLS_API_KEY],
					    &pem[MSG_TLS_API_CA], err,
					    sizeof(err)),
			     "API TLS", err);
	if (pem[MSG_TLS_RPC_CA].len > 0)
		api_tls_swap(&api_tls.client,
			     tlsconf_client(&pem[MSG_TLS_RPC_CA],
					    &pem[MSG_TLS_RPC_CERT],
					    &pem[MSG_TLS_RPC_KEY], err,
					    sizeof(err)),
			     "RPC client TLS", err);
	/* the keys are in the library's keeping now; the message's bytes
	 * (in the channel's read buffer, ours to write) are wiped */
	explicit_bzero((void *)(uintptr_t)m->data, m->len);
	return 0;
}

int api_tls_level(const char *subject, const char *pattern)
{
	if (pattern[0] != '\0' && fnmatch(pattern, subject, 0) == 0)
		return API_READ;
	return API_ADMIN;
}

void api_tls_free(void)
{
	SSL_CTX_free(api_tls.server);
	SSL_CTX_free(api_tls.client);
	api_tls.server = api_tls.client = NULL;
}
