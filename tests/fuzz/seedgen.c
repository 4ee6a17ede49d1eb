/* Seeds shaped like struct config, written at build time (make builds and
 * runs this before fuzz-replay and fuzz): a struct config changes size
 * with every new setting, so such seeds kept in the tree would go stale
 * (the catalogue refuses a config message of the wrong size). Written:
 *   DIR/config_wire/default, DIR/config_wire/full: the struct as sent;
 *   DIR/msg/config, DIR/msg/r_config_full: the same framed as MSG_CONFIG
 *   (parent to front) and MSG_R_CONFIG (ruleset to parent), after
 *   fuzz_msg.c's two flag bytes.
 * Usage: seedgen DIR (its subdirectories must exist). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/msg.h"
#include "common/msgchan.h"

static int seedgen_write(const char *dir, const char *name, const void *a,
			 size_t alen, const void *b, size_t blen)
{
	char path[4096];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL) {
		perror(path);
		return -1;
	}
	ok = fwrite(a, 1, alen, f) == alen &&
	     (blen == 0 || fwrite(b, 1, blen, f) == blen);
	if (fclose(f) != 0 || !ok) {
		perror(path);
		return -1;
	}
	return 0;
}

/* A message as fuzz_msg.c reads it: two flag bytes (the channel's
 * largest payload, no fds), the header, the payload. */
static int seedgen_msg(const char *dir, const char *name, uint16_t type,
		       const struct config *c)
{
	uint8_t head[2 + MSG_HDR_SIZE];
	struct msg_hdr h = { .version = MSG_VERSION,
			     .type = type,
			     .len = (uint32_t)sizeof(*c) };

	head[0] = head[1] = 0;
	memcpy(head + 2, &h, sizeof(h));
	return seedgen_write(dir, name, head, sizeof(head), c, sizeof(*c));
}

/* What an operator's command line would give: listeners, a chain with
 * credentials, the API with an allowlist, a jail. */
static void seedgen_full(struct config *c)
{
	config_defaults(c);
	snprintf(c->listen, sizeof(c->listen), "127.0.0.1:1080");
	snprintf(c->http_listen, sizeof(c->http_listen), "127.0.0.1:8080");
	snprintf(c->proxy, sizeof(c->proxy),
		 "socks5://u:p@127.0.0.1:1081,http://[::1]:8080");
	snprintf(c->restapi, sizeof(c->restapi), "127.0.0.1:9080");
	snprintf(c->api_allow, sizeof(c->api_allow), "127.0.0.0/8,::1");
	snprintf(c->api_host, sizeof(c->api_host), "proxy1.example");
	snprintf(c->jail_dir, sizeof(c->jail_dir), "/run/neosocksd/empty");
	c->api_max_conns = 32;
	c->api_reserved = 4;
}

int main(int argc, char **argv)
{
	static struct config def, full;
	char sub[4096];

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	config_defaults(&def);
	seedgen_full(&full);
	snprintf(sub, sizeof(sub), "%s/config_wire", argv[1]);
	if (seedgen_write(sub, "default", &def, sizeof(def), NULL, 0) < 0 ||
	    seedgen_write(sub, "full", &full, sizeof(full), NULL, 0) < 0)
		return 1;
	snprintf(sub, sizeof(sub), "%s/msg", argv[1]);
	if (seedgen_msg(sub, "config", MSG_CONFIG, &def) < 0 ||
	    seedgen_msg(sub, "r_config_full", MSG_R_CONFIG, &full) < 0)
		return 1;
	return 0;
}
