/* Fuzz target: the framed-message decoder and the message catalogue
 * (src/common/msgchan.c, msg.c), with the payload checks a receiver
 * applies next (config_validate_wire, the route codec, module names).
 *
 * The input after two flag bytes is what a peer wrote on a channel; up to
 * three file descriptors (of /dev/null) are made to have arrived with
 * stream ranges the flags choose. Every message the decoder yields lies
 * inside the buffer and within the channel's maximum; msg_check accepts
 * it for at most one channel and sender, and only with the size and fd its
 * catalogue entry says. */
#include "fuzz.h"

#include <fcntl.h>
#include <unistd.h>

#include "common/config.h"
#include "common/msg.h"
#include "common/msgchan.h"
#include "common/route_wire.h"

static int fuzz_msg_devnull = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_msg_devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return 0;
}

static void fuzz_msg_payload(const struct msg *m)
{
	struct route_decision dec;
	struct route_request req;
	char name[MSG_MODULE_NAME_MAX + 2];

	switch (m->type) {
	case MSG_CONFIG:
	case MSG_R_CONFIG:
		FUZZ_CHECK(m->len == sizeof(struct config));
		if (config_validate_wire((const struct config *)(const void *)
						 m->data,
					 m->len) == 0) {
			const struct config *c = (const void *)m->data;

			FUZZ_CHECK(memchr(c->listen, 0, sizeof(c->listen)));
		}
		break;
	case MSG_ROUTE_REPLY:
	case MSG_FORWARD_REQ:
	case MSG_DIAL_REQ:
		(void)route_wire_decode(m->data, m->len, &dec);
		break;
	case MSG_ROUTE_REQ:
		(void)route_wire_decode_req(m->data, m->len, &req);
		break;
	case MSG_R_MODULE_REQ:
		if (m->len < sizeof(name)) {
			memcpy(name, m->data, m->len);
			name[m->len] = '\0';
			(void)msg_module_name_ok(name, m->len, false);
			(void)msg_module_name_ok(name, m->len, true);
		}
		break;
	default:
		break;
	}
}

static void fuzz_msg_check(const struct msg *m)
{
	const struct msg_desc *d = msg_lookup(m->type);
	const char *why = NULL;
	int accepted = 0;

	FUZZ_CHECK(msg_name(m->type) != NULL);
	for (int chan = 0; chan < CHAN_COUNT; chan++) {
		for (int role = 0; role < ROLE_COUNT; role++) {
			if (msg_check(chan, role, m, &why) < 0) {
				FUZZ_CHECK(why != NULL);
				continue;
			}
			accepted++;
			FUZZ_CHECK(d != NULL && d->chan == chan &&
				   d->sender == role);
			FUZZ_CHECK(m->len >= d->minlen && m->len <= d->maxlen);
			FUZZ_CHECK(d->fd != MSG_FD_NONE ||
				   (m->fd < 0 && !m->fd_lost));
			FUZZ_CHECK(d->fd != MSG_FD_REQUIRED || m->fd >= 0 ||
				   m->fd_lost);
			fuzz_msg_payload(m);
		}
	}
	FUZZ_CHECK(accepted <= 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t maxlens[4] = { MSG_MAXLEN, 65536, 64, 0 };
	struct msgchan c;
	struct msg m;
	uint64_t at = 0;
	int r;

	if (size < 2)
		return 0;
	FUZZ_CHECK(msgchan_init(&c, -1, maxlens[data[0] & 3], 0) == 0);
	if (size - 2 > c.rcap) {
		uint8_t *nb = realloc(c.rbuf, size - 2);

		FUZZ_CHECK(nb != NULL);
		c.rbuf = nb;
		c.rcap = size - 2;
	}
	memcpy(c.rbuf, data + 2, size - 2);
	c.rlen = size - 2;
	/* fds that arrived with reads covering these stream ranges */
	for (unsigned i = 0; i < ((unsigned)data[0] >> 2 & 3); i++) {
		uint64_t start = at + (data[1] >> (4 * (i & 1)) & 15) * 8;
		uint64_t end = start + 1 + (data[1] & 7) * 16;

		c.fdq[i].fd = dup(fuzz_msg_devnull);
		FUZZ_CHECK(c.fdq[i].fd >= 0);
		c.fdq[i].start = start;
		c.fdq[i].end = end;
		c.nfdq++;
		at = end;
	}
	while ((r = msgchan_get(&c, &m)) == 1) {
		FUZZ_CHECK(m.len <= c.maxlen);
		FUZZ_CHECK(m.data >= c.rbuf + MSG_HDR_SIZE &&
			   m.data + m.len <= c.rbuf + c.rlen);
		fuzz_msg_check(&m);
		if (m.fd >= 0)
			close(m.fd);
	}
	FUZZ_CHECK(r == 0 || r == -1);
	msgchan_free(&c, false);
	return 0;
}
