/* parent_tls: the parent reads the TLS files, checks them, keeps the last
 * good contents and hands them to the ruleset process (see parent_tls.h).
 * Their contents never reach a log: only paths, subjects, dates and why a
 * file was refused. Key material is wiped when it is dropped. */
#include "privsep/parent_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "common/log.h"
#include "common/tlsconf.h"
#include "privsep/parent.h"
#include "privsep/parent_api.h"

enum { PARENT_TLS_API = 0, PARENT_TLS_RPC, PARENT_TLS_NSETS };

static const struct {
	size_t off;      /* the path's setting in struct config */
	const char *opt; /* the option; without "--", the credential */
	int set;
	bool key;        /* refused when group or others may read it */
} parent_tls_files[MSG_TLS_NFILES] = {
	[MSG_TLS_API_CERT] = { offsetof(struct config, api_tls_cert),
			       "--api-tls-cert", PARENT_TLS_API, false },
	[MSG_TLS_API_KEY] = { offsetof(struct config, api_tls_key),
			      "--api-tls-key", PARENT_TLS_API, true },
	[MSG_TLS_API_CA] = { offsetof(struct config, api_tls_client_ca),
			     "--api-tls-client-ca", PARENT_TLS_API, false },
	[MSG_TLS_RPC_CA] = { offsetof(struct config, rpc_tls_ca),
			     "--rpc-tls-ca", PARENT_TLS_RPC, false },
	[MSG_TLS_RPC_CERT] = { offsetof(struct config, rpc_tls_cert),
			       "--rpc-tls-cert", PARENT_TLS_RPC, false },
	[MSG_TLS_RPC_KEY] = { offsetof(struct config, rpc_tls_key),
			      "--rpc-tls-key", PARENT_TLS_RPC, true },
};

static struct {
	struct blob pem[MSG_TLS_NFILES]; /* the last good contents */
} parent_tls;

static const char *parent_tls_path(int i)
{
	return (const char *)&parent.conf + parent_tls_files[i].off;
}

static void parent_tls_drop(struct blob *b)
{
	if (b->data != NULL) {
		explicit_bzero(b->data, b->len);
		free(b->data);
	}
	*b = (struct blob){ 0 };
}

/* One file: err says why not (with the option and the path). */
static int parent_tls_read_file(int i, struct blob *out, char *err,
				size_t cap)
{
	const char *opt = parent_tls_files[i].opt;
	char full[CONF_PATH_MAX + 256];
	const char *path =
		parent_api_credential_path(parent_tls_path(i), full, sizeof(full));
	struct stat st;

	if (readfile_at(AT_FDCWD, path, MSG_TLS_PEM_MAX, out, &st) < 0 ||
	    out->data == NULL) {
		/* absent: readfile_at() left ENOENT in errno */
		snprintf(err, cap, "%s %s: %s", opt, path,
			 readfile_strerror(errno));
		parent_tls_drop(out);
		return -1;
	}
	if (parent_tls_files[i].key && (st.st_mode & 0077) != 0) {
		snprintf(err, cap,
			 "%s %s: readable by group or others (mode %04o); a "
			 "key must be readable by its owner only",
			 opt, path, (unsigned)(st.st_mode & 07777));
		parent_tls_drop(out);
		return -1;
	}
	if (out->len == 0) {
		snprintf(err, cap, "%s %s: empty", opt, path);
		parent_tls_drop(out);
		return -1;
	}
	return 0;
}

static struct tlsconf_pem parent_tls_pem(const struct blob *b)
{
	return (struct tlsconf_pem){ b->data, b->data != NULL ? b->len : 0 };
}

/* Do the files make a context? Its certificate is logged (not secret). */
static int parent_tls_check_set(int set, const struct blob *pem, char *err,
				size_t cap)
{
	struct tlsconf_pem p[MSG_TLS_NFILES];
	char desc[512];
	const char *opt;
	bool expired;
	SSL_CTX *ctx;

	for (int i = 0; i < MSG_TLS_NFILES; i++)
		p[i] = parent_tls_pem(&pem[i]);
	if (set == PARENT_TLS_API)
		ctx = tlsconf_server(&p[MSG_TLS_API_CERT], &p[MSG_TLS_API_KEY],
				     &p[MSG_TLS_API_CA], err, cap);
	else
		ctx = tlsconf_client(&p[MSG_TLS_RPC_CA], &p[MSG_TLS_RPC_CERT],
				     &p[MSG_TLS_RPC_KEY], err, cap);
	if (ctx == NULL)
		return -1;
	tlsconf_describe(ctx, desc, sizeof(desc), &expired);
	SSL_CTX_free(ctx);
	if (desc[0] == '\0')
		return 0; /* the RPC client without a certificate of its own */
	opt = parent_tls_files[set == PARENT_TLS_API ? MSG_TLS_API_CERT
						       : MSG_TLS_RPC_CERT]
		      .opt;
	if (expired)
		LOGW("%s: %s: EXPIRED", opt, desc);
	else
		LOGN("%s: %s", opt, desc);
	return 0;
}

/* Read one set's files into pem[] (those of other sets untouched) and
 * check them. 0 (nothing configured included) or -1 with err. */
static int parent_tls_read_set(int set, struct blob *pem, char *err,
			       size_t cap)
{
	bool any = false;

	for (int i = 0; i < MSG_TLS_NFILES; i++) {
		if (parent_tls_files[i].set != set ||
		    parent_tls_path(i)[0] == '\0')
			continue;
		any = true;
		if (parent_tls_read_file(i, &pem[i], err, cap) < 0)
			return -1;
	}
	return any ? parent_tls_check_set(set, pem, err, cap) : 0;
}

/* Read a set; on success it replaces the kept one. */
static int parent_tls_update_set(int set, char *err, size_t cap)
{
	struct blob fresh[MSG_TLS_NFILES] = { { 0 } };
	int rc = parent_tls_read_set(set, fresh, err, cap);

	for (int i = 0; i < MSG_TLS_NFILES; i++) {
		if (parent_tls_files[i].set != set)
			continue;
		if (rc == 0) {
			parent_tls_drop(&parent_tls.pem[i]);
			parent_tls.pem[i] = fresh[i];
		} else {
			parent_tls_drop(&fresh[i]);
		}
	}
	return rc;
}

int parent_tls_load(void)
{
	char err[512];
	bool any = false;

	for (int i = 0; i < MSG_TLS_NFILES; i++)
		any |= parent_tls_path(i)[0] != '\0';
	if (!any)
		return 0; /* no TLS: OpenSSL is never set up */
	if (tlsconf_init() < 0) {
		LOGF("cannot initialise OpenSSL");
		return -1;
	}
	for (int set = 0; set < PARENT_TLS_NSETS; set++) {
		if (parent_tls_update_set(set, err, sizeof(err)) < 0) {
			if (parent.cli.check)
				fprintf(stderr, "neosocksd: %s\n", err);
			LOGF("%s", err);
			return -1;
		}
	}
	return 0;
}

void parent_tls_reload(void)
{
	char err[512];
	bool sent = false;

	for (int set = 0; set < PARENT_TLS_NSETS; set++) {
		if (parent_tls_update_set(set, err, sizeof(err)) < 0) {
			LOGE("reload: %s; the previous %s TLS files stay", err,
			     set == PARENT_TLS_API ? "API" : "RPC client");
			continue;
		}
		sent = true;
	}
	if (sent)
		parent_tls_send();
}

void parent_tls_send(void)
{
	struct msg_tls h = { { 0 } };
	struct iovec iov[1 + MSG_TLS_NFILES];
	int n = 0;
	bool any = false;

	if (!parent.ruleset.running || !parent.ruleset.ch.open)
		return;
	iov[n++] = (struct iovec){ &h, sizeof(h) };
	for (int i = 0; i < MSG_TLS_NFILES; i++) {
		const struct blob *b = &parent_tls.pem[i];

		if (b->data == NULL || b->len == 0)
			continue;
		h.len[i] = (uint32_t)b->len;
		iov[n++] = (struct iovec){ b->data, b->len };
		any = true;
	}
	if (!any)
		return; /* no TLS configured: nothing to say */
	if (chanev_sendv(&parent.ruleset.ch, MSG_R_TLS, 0, iov, n, -1) < 0)
		LOGE("cannot hand the TLS files over: %s", strerror(errno));
}
