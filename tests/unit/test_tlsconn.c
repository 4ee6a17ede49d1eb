/* Unit tests of the TLS pieces, without sockets: tlsconf.c (contexts from
 * PEM text: what is refused, and why), tlsconn.c (a server and a client
 * talking through their memory buffers: handshakes with and without client
 * certificates, verification failures, names, data both ways in any
 * slicing, close), api_tls.c (the R_TLS message, the read-only pattern).
 * The certificates are made here, with the library, for each run. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/msg.h"
#include "common/tlsconf.h"
#include "ruleset/api.h"
#include "ruleset/api_tls.h"
#include "ruleset/tlsconn.h"

/* ---- certificates ---- */

struct pki {
	EVP_PKEY *key;
	X509 *cert;
	char *cert_pem, *key_pem;
};

static long serial = 1;

static char *pem_of(int (*write)(BIO *, void *), void *obj)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *out;
	long n;

	assert_non_null(b);
	assert_int_equal(write(b, obj), 1);
	n = BIO_get_mem_data(b, &p);
	out = malloc((size_t)n + 1);
	assert_non_null(out);
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	BIO_free(b);
	return out;
}

static int write_cert(BIO *b, void *x)
{
	return PEM_write_bio_X509(b, x);
}

static int write_key(BIO *b, void *k)
{
	return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

static void add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);

	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* A certificate for cn (ou: an organisational unit, or NULL), signed by
 * ca (NULL: self-signed, a CA), valid from `from` to `to` seconds from
 * now. */
static struct pki make(const char *cn, const char *ou, const struct pki *ca,
		       long from, long to)
{
	struct pki p = { 0 };
	X509_NAME *n;
	X509V3_CTX v3;

	p.key = EVP_EC_gen("P-256");
	assert_non_null(p.key);
	p.cert = X509_new();
	assert_non_null(p.cert);
	X509_set_version(p.cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(p.cert), serial++);
	X509_gmtime_adj(X509_getm_notBefore(p.cert), from);
	X509_gmtime_adj(X509_getm_notAfter(p.cert), to);
	X509_set_pubkey(p.cert, p.key);
	n = X509_get_subject_name(p.cert);
	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
				   (const unsigned char *)"neosocksd test", -1,
				   -1, 0);
	if (ou != NULL)
		X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_ASC,
					   (const unsigned char *)ou, -1, -1,
					   0);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(p.cert, ca != NULL ? X509_get_subject_name(ca->cert)
						: n);
	X509V3_set_ctx(&v3, ca != NULL ? ca->cert : p.cert, p.cert, NULL, NULL,
		       0);
	add_ext(p.cert, &v3, NID_subject_key_identifier, "hash");
	if (ca == NULL) {
		add_ext(p.cert, &v3, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(p.cert, &v3, NID_key_usage, "critical,keyCertSign");
	} else {
		add_ext(p.cert, &v3, NID_authority_key_identifier, "keyid");
		add_ext(p.cert, &v3, NID_basic_constraints, "CA:FALSE");
		add_ext(p.cert, &v3, NID_subject_alt_name,
			"DNS:localhost,IP:127.0.0.1");
	}
	assert_true(X509_sign(p.cert, ca != NULL ? ca->key : p.key,
			      EVP_sha256()) > 0);
	p.cert_pem = pem_of(write_cert, p.cert);
	p.key_pem = pem_of(write_key, p.key);
	return p;
}

static void pki_free(struct pki *p)
{
	EVP_PKEY_free(p->key);
	X509_free(p->cert);
	free(p->cert_pem);
	free(p->key_pem);
}

#define DAY (24L * 3600)

static struct {
	struct pki ca, other_ca, server, admin, reader, expired, stranger;
} pk;

static int setup_pki(void **state)
{
	(void)state;
	assert_int_equal(tlsconf_init(), 0);
	pk.ca = make("test CA", NULL, NULL, -DAY, 30 * DAY);
	pk.other_ca = make("other CA", NULL, NULL, -DAY, 30 * DAY);
	pk.server = make("localhost", NULL, &pk.ca, -DAY, 30 * DAY);
	pk.admin = make("admin", "ops", &pk.ca, -DAY, 30 * DAY);
	pk.reader = make("dashboard", "readers", &pk.ca, -DAY, 30 * DAY);
	pk.expired = make("admin", "ops", &pk.ca, -30 * DAY, -DAY);
	pk.stranger = make("admin", "ops", &pk.other_ca, -DAY, 30 * DAY);
	return 0;
}

static int teardown_pki(void **state)
{
	(void)state;
	pki_free(&pk.ca);
	pki_free(&pk.other_ca);
	pki_free(&pk.server);
	pki_free(&pk.admin);
	pki_free(&pk.reader);
	pki_free(&pk.expired);
	pki_free(&pk.stranger);
	api_tls_free();
	return 0;
}

static struct tlsconf_pem P(const char *s)
{
	return (struct tlsconf_pem){ s, s != NULL ? strlen(s) : 0 };
}

static SSL_CTX *server_ctx(bool client_certs)
{
	char err[256];
	struct tlsconf_pem c = P(pk.server.cert_pem), k = P(pk.server.key_pem),
			   ca = P(client_certs ? pk.ca.cert_pem : NULL);
	SSL_CTX *ctx = tlsconf_server(&c, &k, &ca, err, sizeof(err));

	assert_non_null(ctx);
	return ctx;
}

static SSL_CTX *client_ctx(const struct pki *id)
{
	char err[256];
	struct tlsconf_pem ca = P(pk.ca.cert_pem),
			   c = P(id != NULL ? id->cert_pem : NULL),
			   k = P(id != NULL ? id->key_pem : NULL);
	SSL_CTX *ctx = tlsconf_client(&ca, &c, &k, err, sizeof(err));

	assert_non_null(ctx);
	return ctx;
}

/* ---- moving ciphertext ---- */

/* Move what from has for the network into to, at most chunk bytes per
 * step (0: as much as fits). Returns the bytes moved. */
static size_t pump(struct tlsconn *from, struct tlsconn *to, size_t chunk)
{
	size_t moved = 0;

	for (;;) {
		const char *src;
		char *dst;
		size_t n = tlsconn_out_peek(from, &src);
		size_t room = tlsconn_in_room(to, &dst);

		if (n == 0 || room == 0)
			return moved;
		if (n > room)
			n = room;
		if (chunk > 0 && n > chunk)
			n = chunk;
		memcpy(dst, src, n);
		tlsconn_in_commit(to, n);
		tlsconn_out_drop(from, n);
		moved += n;
	}
}

/* Drive both handshakes until neither makes progress; the server's and
 * the client's last results. */
static void handshake(struct tlsconn *s, struct tlsconn *c, size_t chunk,
		      int *rs, int *rc)
{
	*rs = *rc = TLSCONN_AGAIN;
	for (int i = 0; i < 100000; i++) {
		size_t moved;

		if (*rc == TLSCONN_AGAIN)
			*rc = tlsconn_handshake(c);
		moved = pump(c, s, chunk);
		if (*rs == TLSCONN_AGAIN)
			*rs = tlsconn_handshake(s);
		moved += pump(s, c, chunk);
		if (moved == 0)
			return;
	}
}

struct pair {
	SSL_CTX *sctx, *cctx;
	struct tlsconn *s, *c;
	int rs, rc;
};

static void pair_open(struct pair *p, bool client_certs,
		      const struct pki *id, const char *host, size_t chunk)
{
	p->sctx = server_ctx(client_certs);
	p->cctx = client_ctx(id);
	p->s = tlsconn_new(p->sctx, true, NULL);
	p->c = tlsconn_new(p->cctx, false, host);
	assert_non_null(p->s);
	assert_non_null(p->c);
	handshake(p->s, p->c, chunk, &p->rs, &p->rc);
}

static void pair_close(struct pair *p)
{
	tlsconn_free(p->s);
	tlsconn_free(p->c);
	SSL_CTX_free(p->sctx);
	SSL_CTX_free(p->cctx);
}

/* ---- handshakes ---- */

static void test_admin_certificate(void **state)
{
	struct pair p;
	char subj[256];

	(void)state;
	pair_open(&p, true, &pk.admin, "localhost", 0);
	assert_int_equal(p.rs, 1);
	assert_int_equal(p.rc, 1);
	assert_true(tlsconn_established(p.s));
	tlsconn_peer_subject(p.s, subj, sizeof(subj));
	assert_string_equal(subj, "CN=admin,OU=ops,O=neosocksd test");
	assert_int_equal(api_tls_level(subj, "*OU=readers,*"), API_ADMIN);
	assert_int_equal(api_tls_level(subj, ""), API_ADMIN);
	pair_close(&p);
}

static void test_readonly_subject(void **state)
{
	struct pair p;
	char subj[256];

	(void)state;
	pair_open(&p, true, &pk.reader, "localhost", 0);
	assert_int_equal(p.rs, 1);
	tlsconn_peer_subject(p.s, subj, sizeof(subj));
	assert_string_equal(subj,
			    "CN=dashboard,OU=readers,O=neosocksd test");
	assert_int_equal(api_tls_level(subj, "*OU=readers,*"), API_READ);
	assert_int_equal(api_tls_level(subj, "CN=dashboard,*"), API_READ);
	/* the whole subject must match, not a part of it */
	assert_int_equal(api_tls_level(subj, "OU=readers"), API_ADMIN);
	pair_close(&p);
}

static void test_no_certificate_refused(void **state)
{
	struct pair p;

	(void)state;
	pair_open(&p, true, NULL, "localhost", 0);
	assert_int_equal(p.rs, TLSCONN_ERR);
	assert_non_null(strstr(tlsconn_error(p.s), "certificate"));
	assert_false(tlsconn_established(p.s));
	pair_close(&p);
}

static void test_wrong_ca_refused(void **state)
{
	struct pair p;

	(void)state;
	pair_open(&p, true, &pk.stranger, "localhost", 0);
	assert_int_equal(p.rs, TLSCONN_ERR);
	assert_non_null(strstr(tlsconn_error(p.s), "certificate verify failed"));
	pair_close(&p);
}

static void test_expired_refused(void **state)
{
	struct pair p;

	(void)state;
	pair_open(&p, true, &pk.expired, "localhost", 0);
	assert_int_equal(p.rs, TLSCONN_ERR);
	assert_non_null(strstr(tlsconn_error(p.s), "expired"));
	pair_close(&p);
}

static void test_server_only(void **state)
{
	struct pair p;
	char subj[64];

	(void)state;
	/* no client CA: no certificate asked for, none needed */
	pair_open(&p, false, NULL, "127.0.0.1", 0);
	assert_int_equal(p.rs, 1);
	assert_int_equal(p.rc, 1);
	assert_string_equal(tlsconn_peer_subject(p.s, subj, sizeof(subj)), "");
	pair_close(&p);
}

static void test_client_checks_the_name(void **state)
{
	struct pair p;

	(void)state;
	pair_open(&p, false, NULL, "peer.example", 0);
	assert_int_equal(p.rc, TLSCONN_ERR);
	assert_non_null(strstr(tlsconn_error(p.c), "hostname mismatch"));
	pair_close(&p);
	pair_open(&p, false, NULL, "10.1.2.3", 0);
	assert_int_equal(p.rc, TLSCONN_ERR);
	assert_non_null(strstr(tlsconn_error(p.c), "IP address mismatch"));
	pair_close(&p);
	/* names that are not names never reach the library */
	p.cctx = client_ctx(NULL);
	assert_null(tlsconn_new(p.cctx, false, "bad name"));
	assert_null(tlsconn_new(p.cctx, false, "a%lo"));
	SSL_CTX_free(p.cctx);
}

static void test_client_checks_the_ca(void **state)
{
	char err[256];
	struct tlsconf_pem ca = P(pk.other_ca.cert_pem), none = P(NULL);
	SSL_CTX *sctx = server_ctx(false);
	SSL_CTX *cctx = tlsconf_client(&ca, &none, &none, err, sizeof(err));
	struct tlsconn *s, *c;
	int rs, rc;

	(void)state;
	assert_non_null(cctx);
	s = tlsconn_new(sctx, true, NULL);
	c = tlsconn_new(cctx, false, "localhost");
	handshake(s, c, 0, &rs, &rc);
	assert_int_equal(rc, TLSCONN_ERR);
	assert_non_null(strstr(tlsconn_error(c), "certificate verify failed"));
	tlsconn_free(s);
	tlsconn_free(c);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

/* A handshake fed one byte at a time ends as one fed whole. */
static void test_byte_at_a_time(void **state)
{
	struct pair p;

	(void)state;
	pair_open(&p, true, &pk.admin, "localhost", 1);
	assert_int_equal(p.rs, 1);
	assert_int_equal(p.rc, 1);
	pair_close(&p);
}

static void test_old_versions_refused(void **state)
{
	SSL_CTX *sctx = server_ctx(false);
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	struct tlsconn *s, *c;
	int rs, rc;

	(void)state;
	SSL_CTX_set_security_level(cctx, 0);
	SSL_CTX_set_min_proto_version(cctx, TLS1_VERSION);
	SSL_CTX_set_max_proto_version(cctx, TLS1_1_VERSION);
	s = tlsconn_new(sctx, true, NULL);
	c = tlsconn_new(cctx, false, NULL);
	handshake(s, c, 0, &rs, &rc);
	assert_int_equal(rs, TLSCONN_ERR);
	assert_non_null(strstr(tlsconn_error(s), "protocol"));
	tlsconn_free(s);
	tlsconn_free(c);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

/* ---- data ---- */

/* Send len bytes from a to b through the buffers; what b reads is what a
 * wrote. */
static void transfer(struct tlsconn *a, struct tlsconn *b, size_t len,
		     size_t chunk)
{
	unsigned char *src = malloc(len), *dst = malloc(len);
	size_t sent = 0, got = 0;

	assert_non_null(src);
	assert_non_null(dst);
	for (size_t i = 0; i < len; i++)
		src[i] = (unsigned char)(i * 7 + i / 251);
	for (int guard = 0; got < len && guard < 1000000; guard++) {
		if (sent < len) {
			ssize_t n = tlsconn_write(a, src + sent, len - sent);

			assert_true(n > 0 || n == TLSCONN_AGAIN);
			if (n > 0)
				sent += (size_t)n;
		}
		pump(a, b, chunk);
		for (;;) {
			ssize_t n = tlsconn_read(b, dst + got, len - got);

			if (n <= 0) {
				assert_int_equal(n, TLSCONN_AGAIN);
				break;
			}
			got += (size_t)n;
		}
	}
	assert_int_equal(got, len);
	assert_memory_equal(src, dst, len);
	free(src);
	free(dst);
}

static void test_data_both_ways(void **state)
{
	struct pair p;

	(void)state;
	pair_open(&p, true, &pk.admin, "localhost", 0);
	transfer(p.c, p.s, 1 << 20, 0);    /* more than the buffers hold */
	transfer(p.s, p.c, 3 << 20, 0);
	transfer(p.c, p.s, 100000, 1);     /* ciphertext a byte at a time */
	transfer(p.s, p.c, 1, 0);
	pair_close(&p);
}

static void test_close_notify_and_eof(void **state)
{
	struct pair p;
	char buf[16];

	(void)state;
	pair_open(&p, true, &pk.admin, "localhost", 0);
	transfer(p.c, p.s, 10, 0);
	tlsconn_close(p.c);
	pump(p.c, p.s, 0);
	assert_int_equal(tlsconn_read(p.s, buf, sizeof(buf)), TLSCONN_EOF);
	pair_close(&p);
	/* a TCP EOF without close_notify ends the stream too (requests are
	 * framed by HTTP, so nothing can be cut silently) */
	pair_open(&p, true, &pk.admin, "localhost", 0);
	assert_int_equal(tlsconn_read(p.s, buf, sizeof(buf)), TLSCONN_AGAIN);
	tlsconn_in_eof(p.s);
	assert_int_equal(tlsconn_read(p.s, buf, sizeof(buf)), TLSCONN_EOF);
	pair_close(&p);
}

/* Garbage instead of a handshake fails with a reason, at once. */
static void test_not_tls(void **state)
{
	SSL_CTX *sctx = server_ctx(true);
	struct tlsconn *s = tlsconn_new(sctx, true, NULL);
	static const char get[] = "GET /stats HTTP/1.1\r\nHost: x\r\n\r\n";
	char *dst;

	(void)state;
	assert_true(tlsconn_in_room(s, &dst) >= sizeof(get));
	memcpy(dst, get, sizeof(get) - 1);
	tlsconn_in_commit(s, sizeof(get) - 1);
	assert_int_equal(tlsconn_handshake(s), TLSCONN_ERR);
	assert_non_null(strstr(tlsconn_error(s), "http request"));
	tlsconn_free(s);
	SSL_CTX_free(sctx);
}

/* No resumption: the server issues no ticket a client could come back
 * with. */
static void test_no_resumption(void **state)
{
	struct pair p;
	SSL_SESSION *sess;
	char buf[4];

	(void)state;
	pair_open(&p, false, NULL, "localhost", 0);
	transfer(p.s, p.c, 10, 0);
	assert_int_equal(tlsconn_read(p.c, buf, sizeof(buf)), TLSCONN_AGAIN);
	sess = SSL_get1_session(tlsconn_ssl(p.c));
	assert_non_null(sess);
	assert_int_equal(SSL_SESSION_is_resumable(sess), 0);
	SSL_SESSION_free(sess);
	pair_close(&p);
}

/* ---- the socket helpers ---- */

static void test_over_a_socketpair(void **state)
{
	SSL_CTX *sctx = server_ctx(true), *cctx = client_ctx(&pk.admin);
	struct tlsconn *s = tlsconn_new(sctx, true, NULL),
		       *c = tlsconn_new(cctx, false, "localhost");
	int sv[2], rs = TLSCONN_AGAIN, rc = TLSCONN_AGAIN;
	char buf[64];
	ssize_t n = 0;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
				    sv),
			 0);
	for (int i = 0; i < 1000 && (rs != 1 || rc != 1); i++) {
		if (rc != 1)
			rc = tlsconn_handshake(c);
		assert_true(tlsconn_send_fd(c, sv[1]) >= 0);
		(void)tlsconn_recv_fd(s, sv[0]);
		if (rs != 1)
			rs = tlsconn_handshake(s);
		assert_true(tlsconn_send_fd(s, sv[0]) >= 0);
		(void)tlsconn_recv_fd(c, sv[1]);
	}
	assert_int_equal(rs, 1);
	assert_int_equal(rc, 1);
	assert_int_equal(tlsconn_write(c, "ping", 4), 4);
	assert_int_equal(tlsconn_send_fd(c, sv[1]), 1);
	for (int i = 0; i < 1000 && n <= 0; i++) {
		(void)tlsconn_recv_fd(s, sv[0]);
		n = tlsconn_read(s, buf, sizeof(buf));
	}
	assert_int_equal(n, 4);
	assert_memory_equal(buf, "ping", 4);
	/* the client goes: EOF once what it sent is read */
	close(sv[1]);
	for (int i = 0; i < 1000 && n != TLSCONN_EOF; i++) {
		(void)tlsconn_recv_fd(s, sv[0]);
		n = tlsconn_read(s, buf, sizeof(buf));
	}
	assert_int_equal(n, TLSCONN_EOF);
	close(sv[0]);
	tlsconn_free(s);
	tlsconn_free(c);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

/* ---- building contexts: what is refused ---- */

static void expect_refused(const char *cert, const char *key,
			   const char *ca, const char *why)
{
	char err[256] = "";
	struct tlsconf_pem c = P(cert), k = P(key), a = P(ca);
	SSL_CTX *ctx = tlsconf_server(&c, &k, &a, err, sizeof(err));

	assert_null(ctx);
	if (strstr(err, why) == NULL)
		fail_msg("'%s' does not say '%s'", err, why);
}

static void test_bad_files_refused(void **state)
{
	char *enc, *chain;
	BIO *b = BIO_new(BIO_s_mem());
	long n;
	char *p;

	(void)state;
	expect_refused("", pk.server.key_pem, NULL, "--api-tls-cert");
	expect_refused("not a certificate", pk.server.key_pem, NULL,
		       "no certificate");
	expect_refused(pk.server.cert_pem, pk.admin.key_pem, NULL,
		       "not the key of the certificate");
	expect_refused(pk.server.cert_pem, "", NULL, "no private key");
	expect_refused(pk.server.cert_pem, pk.server.key_pem, "junk",
		       "--api-tls-client-ca: no certificate");
	/* an encrypted key: refused, saying so */
	assert_int_equal(PEM_write_bio_PrivateKey(b, pk.server.key,
						  EVP_aes_128_cbc(), NULL, 0,
						  NULL, (void *)"secret"),
			 1);
	n = BIO_get_mem_data(b, &p);
	enc = strndup(p, (size_t)n);
	BIO_free(b);
	expect_refused(pk.server.cert_pem, enc, NULL, "encrypted");
	free(enc);
	/* a chain after the leaf is taken; garbage after it is not */
	chain = malloc(strlen(pk.server.cert_pem) + strlen(pk.ca.cert_pem) +
		       64);
	sprintf(chain, "%s%s", pk.server.cert_pem, pk.ca.cert_pem);
	{
		char err[256];
		struct tlsconf_pem c = P(chain), k = P(pk.server.key_pem),
				   none = P(NULL);
		SSL_CTX *ctx = tlsconf_server(&c, &k, &none, err, sizeof(err));

		assert_non_null(ctx);
		SSL_CTX_free(ctx);
	}
	strcat(chain, "-----BEGIN CERTIFICATE-----\nAAAA\n");
	expect_refused(chain, pk.server.key_pem, NULL, "--api-tls-cert");
	free(chain);
	ERR_clear_error();
}

static void test_describe(void **state)
{
	char desc[256], err[256];
	bool expired = true;
	struct tlsconf_pem c = P(pk.expired.cert_pem),
			   k = P(pk.expired.key_pem), none = P(NULL);
	SSL_CTX *ctx = server_ctx(false);

	(void)state;
	tlsconf_describe(ctx, desc, sizeof(desc), &expired);
	assert_false(expired);
	assert_non_null(strstr(desc, "CN=localhost,O=neosocksd test, valid "
				     "until 20"));
	SSL_CTX_free(ctx);
	ctx = tlsconf_server(&c, &k, &none, err, sizeof(err));
	assert_non_null(ctx);
	tlsconf_describe(ctx, desc, sizeof(desc), &expired);
	assert_true(expired);
	SSL_CTX_free(ctx);
}

/* ---- R_TLS ---- */

/* A message of these files (NULL: not given). */
static struct msg tls_msg(const char *files[MSG_TLS_NFILES], char **buf)
{
	struct msg_tls h = { { 0 } };
	size_t len = sizeof(h), off = sizeof(h);
	struct msg m = { .type = MSG_R_TLS, .fd = -1 };

	for (int i = 0; i < MSG_TLS_NFILES; i++) {
		h.len[i] = files[i] != NULL ? (uint32_t)strlen(files[i]) : 0;
		len += h.len[i];
	}
	*buf = malloc(len);
	assert_non_null(*buf);
	memcpy(*buf, &h, sizeof(h));
	for (int i = 0; i < MSG_TLS_NFILES; i++) {
		memcpy(*buf + off, files[i] != NULL ? files[i] : "", h.len[i]);
		off += h.len[i];
	}
	m.data = (const uint8_t *)*buf;
	m.len = (uint32_t)len;
	return m;
}

static void test_tls_message(void **state)
{
	const char *files[MSG_TLS_NFILES] = {
		[MSG_TLS_API_CERT] = pk.server.cert_pem,
		[MSG_TLS_API_KEY] = pk.server.key_pem,
		[MSG_TLS_API_CA] = pk.ca.cert_pem,
		[MSG_TLS_RPC_CA] = pk.ca.cert_pem,
	};
	char *buf, *key_at;
	struct msg m;
	SSL_CTX *first;

	(void)state;
	api_tls_free();
	m = tls_msg(files, &buf);
	key_at = buf + sizeof(struct msg_tls) + strlen(pk.server.cert_pem);
	assert_int_equal(api_tls_receive(&m), 0);
	assert_non_null(api_tls_server());
	assert_non_null(api_tls_client());
	/* the key is not left in the message */
	for (size_t i = 0; i < strlen(pk.server.key_pem); i++)
		assert_int_equal(key_at[i], 0);
	free(buf);
	/* files that do not build a context leave the previous one */
	first = api_tls_server();
	files[MSG_TLS_API_KEY] = pk.admin.key_pem;
	m = tls_msg(files, &buf);
	assert_int_equal(api_tls_receive(&m), 0);
	assert_ptr_equal(api_tls_server(), first);
	free(buf);
	/* good ones replace it */
	files[MSG_TLS_API_KEY] = pk.server.key_pem;
	m = tls_msg(files, &buf);
	assert_int_equal(api_tls_receive(&m), 0);
	assert_ptr_not_equal(api_tls_server(), first);
	/* sizes that do not add up are a protocol violation */
	m.len -= 1;
	assert_int_equal(api_tls_receive(&m), -1);
	free(buf);
	{
		struct msg_tls h = { { 0 } };
		char big[sizeof(h)];

		h.len[0] = MSG_TLS_PEM_MAX + 1;
		memcpy(big, &h, sizeof(h));
		m.data = (const uint8_t *)big;
		m.len = sizeof(h);
		assert_int_equal(api_tls_receive(&m), -1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_admin_certificate),
		cmocka_unit_test(test_readonly_subject),
		cmocka_unit_test(test_no_certificate_refused),
		cmocka_unit_test(test_wrong_ca_refused),
		cmocka_unit_test(test_expired_refused),
		cmocka_unit_test(test_server_only),
		cmocka_unit_test(test_client_checks_the_name),
		cmocka_unit_test(test_client_checks_the_ca),
		cmocka_unit_test(test_byte_at_a_time),
		cmocka_unit_test(test_old_versions_refused),
		cmocka_unit_test(test_data_both_ways),
		cmocka_unit_test(test_close_notify_and_eof),
		cmocka_unit_test(test_not_tls),
		cmocka_unit_test(test_no_resumption),
		cmocka_unit_test(test_over_a_socketpair),
		cmocka_unit_test(test_bad_files_refused),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_tls_message),
	};

	return cmocka_run_group_tests(tests, setup_pki, teardown_pki);
}
