/* tlsconf: the TLS contexts of the API server and of the RPC client, built
 * from PEM text in memory (see tlsconf.h for who builds them, and why). */
#include "common/tlsconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define TLSCONF_VERIFY_DEPTH 8

static int tlsconf_fail(char *err, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int tlsconf_fail(char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, cap, fmt, ap);
	va_end(ap);
	ERR_clear_error();
	return -1;
}

const char *tlsconf_last_error(char *buf, size_t cap)
{
	unsigned long e, last = 0;
	const char *r;

	while ((e = ERR_get_error()) != 0)
		last = e;
	r = last != 0 ? ERR_reason_error_string(last) : NULL;
	if (r != NULL)
		snprintf(buf, cap, "%s", r);
	else if (last != 0)
		snprintf(buf, cap, "error %#lx", last);
	else
		snprintf(buf, cap, "unknown error");
	return buf;
}

/* Keys are given decrypted: the parent reads them again on every SIGHUP,
 * with nobody to type a passphrase. */
static int tlsconf_no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

int tlsconf_init(void)
{
	static bool done;
	SSL_CTX *warm;

	if (done)
		return 0;

	/* no openssl.cnf: the ruleset process cannot open it, and the API's
	 * TLS is what this module sets, whatever the host's file says */
	if (OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG |
				     OPENSSL_INIT_LOAD_SSL_STRINGS |
				     OPENSSL_INIT_LOAD_CRYPTO_STRINGS,
			     NULL) != 1)
		return -1;
	/* the default provider's algorithms and the random generator are
	 * set up on first use: use them once now */
	warm = SSL_CTX_new(TLS_method());
	if (warm == NULL)
		return -1;
	SSL_CTX_free(warm);
	if (RAND_status() != 1)
		return -1;
	done = true;
	return 0;
}

static BIO *tlsconf_bio(const struct tlsconf_pem *pem)
{
	return BIO_new_mem_buf(pem->p, (int)pem->len);
}

/* After the last PEM block of a file: "no start line" is the end. */
static bool tlsconf_pem_end(void)
{
	unsigned long e = ERR_peek_last_error();

	if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
	    ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
		ERR_clear_error();
		return true;
	}
	return false;
}

/* The leaf certificate, then its chain. */
static int tlsconf_load_chain(SSL_CTX *ctx, const struct tlsconf_pem *pem,
			      const char *what, char *err, size_t cap)
{
	char why[128];
	BIO *b = tlsconf_bio(pem);
	X509 *x;
	int rc = -1;

	if (b == NULL)
		return tlsconf_fail(err, cap, "out of memory");
	x = PEM_read_bio_X509_AUX(b, NULL, tlsconf_no_password, NULL);
	if (x == NULL) {
		tlsconf_fail(err, cap, "%s: no certificate in it (%s)", what,
			     tlsconf_last_error(why, sizeof(why)));
		goto out;
	}
	if (SSL_CTX_use_certificate(ctx, x) != 1) {
		X509_free(x);
		tlsconf_fail(err, cap, "%s: %s", what,
			     tlsconf_last_error(why, sizeof(why)));
		goto out;
	}
	X509_free(x);
	while ((x = PEM_read_bio_X509(b, NULL, tlsconf_no_password, NULL)) !=
	       NULL) {
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
			X509_free(x);
			tlsconf_fail(err, cap, "%s: its chain: %s", what,
				     tlsconf_last_error(why, sizeof(why)));
			goto out;
		}
	}
	if (!tlsconf_pem_end()) {
		tlsconf_fail(err, cap, "%s: its chain: %s", what,
			     tlsconf_last_error(why, sizeof(why)));
		goto out;
	}
	rc = 0;
out:
	BIO_free(b);
	return rc;
}

static int tlsconf_load_key(SSL_CTX *ctx, const struct tlsconf_pem *pem,
			    const char *what, char *err, size_t cap)
{
	char why[128];
	BIO *b;
	EVP_PKEY *k;
	X509 *x;
	int rc;

	if (memmem(pem->p, pem->len, "ENCRYPTED", 9) != NULL)
		return tlsconf_fail(err, cap,
				    "%s: the key is encrypted (give it "
				    "decrypted, readable only by its owner)",
				    what);
	b = tlsconf_bio(pem);
	if (b == NULL)
		return tlsconf_fail(err, cap, "out of memory");
	k = PEM_read_bio_PrivateKey(b, NULL, tlsconf_no_password, NULL);
	BIO_free(b);
	if (k == NULL)
		return tlsconf_fail(err, cap, "%s: no private key in it (%s)",
				    what, tlsconf_last_error(why, sizeof(why)));
	x = SSL_CTX_get0_certificate(ctx);
	if (x != NULL && X509_check_private_key(x, k) != 1) {
		EVP_PKEY_free(k);
		return tlsconf_fail(err, cap,
				    "%s: not the key of the certificate", what);
	}
	rc = SSL_CTX_use_PrivateKey(ctx, k);
	EVP_PKEY_free(k);
	if (rc != 1)
		return tlsconf_fail(err, cap, "%s: %s", what,
				    tlsconf_last_error(why, sizeof(why)));
	if (SSL_CTX_check_private_key(ctx) != 1)
		return tlsconf_fail(err, cap,
				    "%s: not the key of the certificate (%s)",
				    what, tlsconf_last_error(why, sizeof(why)));
	return 0;
}

/* Every certificate of a CA file into the context's store; a server also
 * names them to clients (which certificate to present). */
static int tlsconf_load_ca(SSL_CTX *ctx, const struct tlsconf_pem *pem,
			   bool name_them, const char *what, char *err,
			   size_t cap)
{
	X509_STORE *st = SSL_CTX_get_cert_store(ctx);
	STACK_OF(X509_NAME) *names = NULL;
	char why[128];
	BIO *b = tlsconf_bio(pem);
	X509 *x;
	int n = 0, rc = -1;

	if (b == NULL || (name_them && (names = sk_X509_NAME_new_null()) ==
					       NULL)) {
		tlsconf_fail(err, cap, "out of memory");
		goto out;
	}
	while ((x = PEM_read_bio_X509(b, NULL, tlsconf_no_password, NULL)) !=
	       NULL) {
		X509_NAME *nm = NULL;

		if (X509_STORE_add_cert(st, x) != 1 ||
		    (names != NULL &&
		     ((nm = X509_NAME_dup(X509_get_subject_name(x))) == NULL ||
		      sk_X509_NAME_push(names, nm) <= 0))) {
			X509_NAME_free(nm);
			X509_free(x);
			tlsconf_fail(err, cap, "%s: %s", what,
				     tlsconf_last_error(why, sizeof(why)));
			goto out;
		}
		X509_free(x);
		n++;
	}
	if (n == 0 || !tlsconf_pem_end()) {
		tlsconf_fail(err, cap, "%s: %s", what,
			     n == 0 ? "no certificate in it"
				    : tlsconf_last_error(why, sizeof(why)));
		goto out;
	}
	if (names != NULL) {
		SSL_CTX_set_client_CA_list(ctx, names);
		names = NULL;
	}
	rc = 0;
out:
	sk_X509_NAME_pop_free(names, X509_NAME_free);
	BIO_free(b);
	return rc;
}

/* What both ends share: TLS 1.2 and 1.3, security level 2 (keys of at
 * least 2048 bits RSA or 224 bits EC, no SHA-1 signatures), no
 * renegotiation, no compression, no resumption. */
static SSL_CTX *tlsconf_new(const SSL_METHOD *method, char *err, size_t cap)
{
	SSL_CTX *ctx = SSL_CTX_new(method);

	if (ctx == NULL) {
		tlsconf_fail(err, cap, "out of memory");
		return NULL;
	}
	SSL_CTX_set_security_level(ctx, 2);
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		SSL_CTX_free(ctx);
		tlsconf_fail(err, cap, "TLS 1.2 is not available");
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_NO_COMPRESSION |
					 SSL_OP_NO_TICKET |
					 SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify_depth(ctx, TLSCONF_VERIFY_DEPTH);
	return ctx;
}

SSL_CTX *tlsconf_server(const struct tlsconf_pem *cert,
			const struct tlsconf_pem *key,
			const struct tlsconf_pem *ca, char *err, size_t cap)
{
	static const unsigned char sid[] = "neosocksd-api";
	SSL_CTX *ctx = tlsconf_new(TLS_server_method(), err, cap);

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_num_tickets(ctx, 0); /* TLS 1.3: none at all */
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (tlsconf_load_chain(ctx, cert, "--api-tls-cert", err, cap) < 0 ||
	    tlsconf_load_key(ctx, key, "--api-tls-key", err, cap) < 0)
		goto fail;
	if (ca != NULL && ca->len > 0) {
		if (tlsconf_load_ca(ctx, ca, true, "--api-tls-client-ca", err,
				    cap) < 0)
			goto fail;
		SSL_CTX_set_verify(ctx,
				   SSL_VERIFY_PEER |
					   SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
				   NULL);
		SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *tlsconf_client(const struct tlsconf_pem *ca,
			const struct tlsconf_pem *cert,
			const struct tlsconf_pem *key, char *err, size_t cap)
{
	SSL_CTX *ctx = tlsconf_new(TLS_client_method(), err, cap);

	if (ctx == NULL)
		return NULL;
	if (tlsconf_load_ca(ctx, ca, false, "--rpc-tls-ca", err, cap) < 0)
		goto fail;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (cert != NULL && cert->len > 0 &&
	    (tlsconf_load_chain(ctx, cert, "--rpc-tls-cert", err, cap) < 0 ||
	     tlsconf_load_key(ctx, key, "--rpc-tls-key", err, cap) < 0))
		goto fail;
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

int tlsconf_subject(X509 *x, char *buf, size_t cap)
{
	BIO *b;
	int n;

	buf[0] = '\0';
	if (x == NULL || cap == 0 || (b = BIO_new(BIO_s_mem())) == NULL)
		return -1;
	n = X509_NAME_print_ex(b, X509_get_subject_name(x), 0,
			       XN_FLAG_RFC2253);
	if (n >= 0) {
		n = BIO_read(b, buf, (int)(cap - 1));
		buf[n > 0 ? n : 0] = '\0';
	}
	BIO_free(b);
	return n >= 0 ? 0 : -1;
}

void tlsconf_describe(SSL_CTX *ctx, char *buf, size_t cap, bool *expired)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);
	const ASN1_TIME *na;
	char subj[256], until[64] = "?";
	struct tm tm;

	buf[0] = '\0';
	*expired = false;
	if (x == NULL)
		return;
	(void)tlsconf_subject(x, subj, sizeof(subj));
	na = X509_get0_notAfter(x);
	if (ASN1_TIME_to_tm(na, &tm) == 1)
		strftime(until, sizeof(until), "%Y-%m-%d %H:%M:%S UTC", &tm);
	*expired = X509_cmp_current_time(na) < 0;
	snprintf(buf, cap, "%s, valid until %s", subj, until);
}
