/* Unit tests of the shared channel code (chanev.c): dispatch by table and
 * state, PING/PONG/READY handled once for every channel, violations
 * reported to the end, and chanev_await() holding what else arrives. The
 * peer is a bare msgchan on the other end of a socketpair. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/chanev.h"
#include "common/msg.h"
#include "common/msgchan.h"

/* What the end under test saw. */
struct seen {
	int nmsg;
	uint16_t types[16];
	uint32_t ids[16];
	int nerr, err;
	char why[64];
	int nready;
	int reject_next; /* the next handled message is refused */
};

struct fixture {
	int fd[2];
	struct event_base *base;
	struct msgchan peer; /* fd[0]: the other process */
	struct chanev ce;    /* fd[1]: the end under test */
	struct seen seen;
};

static void on_msg(struct chanev *ce, struct msg *m, void *arg)
{
	struct seen *s = arg;

	if (s->nmsg < 16) {
		s->types[s->nmsg] = m->type;
		s->ids[s->nmsg] = m->id;
	}
	s->nmsg++;
	if (s->reject_next) {
		s->reject_next = 0;
		chanev_reject(ce, m, "refused by the handler");
		return;
	}
	if (m->fd >= 0)
		close(m->fd);
}

static void on_err(struct chanev *ce, int err, const char *why, void *arg)
{
	struct seen *s = arg;

	s->nerr++;
	s->err = err;
	snprintf(s->why, sizeof(s->why), "%s", why);
	chanev_close(ce);
}

static void on_ready(struct chanev *ce, void *arg)
{
	struct seen *s = arg;

	(void)ce;
	s->nready++;
}

enum { ST_A = 1, ST_B = 2 };

/* the front's end of the ruleset channel: two rows, one only in ST_B */
static const struct chanev_row front_rows[] = {
	{ MSG_ROUTE_REPLY, ST_A | ST_B, on_msg },
	{ MSG_FORWARD_REQ, ST_B, on_msg },
};
static const struct chanev_end front_end = { CHANEV_ROWS(front_rows), on_err,
					     NULL };

/* a child's end of its parent channel */
static const struct chanev_row child_rows[] = {
	{ MSG_R_STATUS, ST_A, on_msg },
	{ MSG_R_UPDATE, ST_A, on_msg },
	{ MSG_R_TOKENS, ST_A, on_msg },
	{ MSG_R_MODULE, ST_A, on_msg },
};
static const struct chanev_end child_end = { CHANEV_ROWS(child_rows), on_err,
					     NULL };

/* the parent's end of the front's channel */
static const struct chanev_row parent_rows[] = {
	{ MSG_DRAINED, ST_A, on_msg },
};
static const struct chanev_end parent_end = { CHANEV_ROWS(parent_rows),
					      on_err, on_ready };

static struct fixture *fixture_new(enum chan_kind kind, enum role peer,
				   const struct chanev_end *end)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, f.fd), 0);
	f.base = event_base_new();
	assert_non_null(f.base);
	assert_int_equal(msgchan_init(&f.peer, f.fd[0], MSG_MAXLEN, MSG_WMAX),
			 0);
	assert_int_equal(chanev_init(&f.ce, f.base, f.fd[1], kind, peer, end,
				     ST_A, &f.seen),
			 0);
	return &f;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	chanev_close(&f->ce);
	msgchan_free(&f->peer, true);
	event_base_free(f->base);
	return 0;
}

static void peer_send(struct fixture *f, uint16_t type, uint32_t id,
		      const void *data, size_t len)
{
	assert_int_equal(msgchan_compose(&f->peer, type, id, data, len, -1), 0);
	assert_int_equal(msgchan_flush(&f->peer), 1);
}

/* Run the loop until nothing more happens at once. */
static void pump(struct fixture *f)
{
	for (int i = 0; i < 8; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
}

/* The next message the end under test sent, or type 0. */
static struct msg peer_recv(struct fixture *f)
{
	struct msg m = { 0 };

	(void)msgchan_read(&f->peer);
	if (msgchan_get(&f->peer, &m) != 1)
		m.type = 0;
	return m;
}

static int setup_front(void **state)
{
	*state = fixture_new(CHAN_FRONT_RULESET, ROLE_RULESET, &front_end);
	return 0;
}

static int setup_child(void **state)
{
	*state = fixture_new(CHAN_PARENT_RULESET, ROLE_PARENT, &child_end);
	return 0;
}

static int setup_parent(void **state)
{
	*state = fixture_new(CHAN_PARENT_FRONT, ROLE_FRONT, &parent_end);
	return 0;
}

static const uint8_t route_go[] = { 1, 0, 0, 0, 3, 0, 'a', ':', '1' };

/* A message with a row lands on its handler, in order. */
static void test_rows_dispatch(void **state)
{
	struct fixture *f = *state;

	peer_send(f, MSG_ROUTE_REPLY, 11, route_go, sizeof(route_go));
	peer_send(f, MSG_ROUTE_REPLY, 12, route_go, sizeof(route_go));
	pump(f);
	assert_int_equal(f->seen.nmsg, 2);
	assert_int_equal(f->seen.ids[0], 11);
	assert_int_equal(f->seen.ids[1], 12);
	assert_int_equal(f->seen.nerr, 0);
}

/* A type the catalogue allows here but the end has no row for is a
 * violation; nothing after it is dispatched. */
static void test_no_row_is_a_violation(void **state)
{
	struct fixture *f = *state;

	peer_send(f, MSG_STATS_REQ, 1, NULL, 0);
	peer_send(f, MSG_ROUTE_REPLY, 2, route_go, sizeof(route_go));
	pump(f);
	assert_int_equal(f->seen.nmsg, 0);
	assert_int_equal(f->seen.nerr, 1);
	assert_int_equal(f->seen.err, EPROTO);
	assert_string_equal(f->seen.why, "unexpected STATS_REQ");
}

/* A row's states bound when its message may come. */
static void test_state_not_allowed(void **state)
{
	struct fixture *f = *state;

	peer_send(f, MSG_FORWARD_REQ, 5, route_go, sizeof(route_go));
	pump(f);
	assert_int_equal(f->seen.nmsg, 0);
	assert_int_equal(f->seen.nerr, 1);
	assert_string_equal(f->seen.why, "FORWARD_REQ not allowed now");
}

static void test_state_allowed_after_change(void **state)
{
	struct fixture *f = *state;

	chanev_set_state(&f->ce, ST_B);
	peer_send(f, MSG_FORWARD_REQ, 5, route_go, sizeof(route_go));
	pump(f);
	assert_int_equal(f->seen.nmsg, 1);
	assert_int_equal(f->seen.types[0], MSG_FORWARD_REQ);
	assert_int_equal(f->seen.nerr, 0);
}

/* A handler refusing its message reports it as a violation. */
static void test_handler_rejects(void **state)
{
	struct fixture *f = *state;

	f->seen.reject_next = 1;
	peer_send(f, MSG_ROUTE_REPLY, 1, route_go, sizeof(route_go));
	peer_send(f, MSG_ROUTE_REPLY, 2, route_go, sizeof(route_go));
	pump(f);
	assert_int_equal(f->seen.nmsg, 1);
	assert_int_equal(f->seen.nerr, 1);
	assert_string_equal(f->seen.why, "refused by the handler");
}

/* The catalogue's check comes first: a wrong size never reaches a row. */
static void test_catalogue_before_rows(void **state)
{
	struct fixture *f = *state;

	peer_send(f, MSG_STATS_REQ, 1, "x", 1); /* STATS_REQ is empty */
	pump(f);
	assert_int_equal(f->seen.nerr, 1);
	assert_string_equal(f->seen.why, "wrong payload size");
}

/* A child answers PING with PONG (same id and payload) by itself. */
static void test_ping_answered(void **state)
{
	struct fixture *f = *state;
	struct msg_ping ping = { .seq = 0x1122334455667788ull };
	struct msg m;

	peer_send(f, MSG_R_PING, 9, &ping, sizeof(ping));
	pump(f);
	m = peer_recv(f);
	assert_int_equal(m.type, MSG_R_PONG);
	assert_int_equal(m.id, 9);
	assert_int_equal(m.len, sizeof(ping));
	assert_memory_equal(m.data, &ping, sizeof(ping));
	assert_int_equal(f->seen.nmsg, 0);
	assert_int_equal(f->seen.nerr, 0);
}

/* The parent's end: READY once (on_ready), a second one is a violation;
 * PONG notes the time. */
static void test_ready_once(void **state)
{
	struct fixture *f = *state;
	struct msg_ping pong = { .seq = 1 };

	assert_false(f->ce.ready);
	peer_send(f, MSG_READY, 0, NULL, 0);
	pump(f);
	assert_int_equal(f->seen.nready, 1);
	assert_true(f->ce.ready);
	assert_true(f->ce.last_pong_ms > 0);
	f->ce.last_pong_ms = 0;
	peer_send(f, MSG_PONG, 0, &pong, sizeof(pong));
	pump(f);
	assert_true(f->ce.last_pong_ms > 0);
	assert_int_equal(f->seen.nerr, 0);
	peer_send(f, MSG_READY, 0, NULL, 0);
	pump(f);
	assert_int_equal(f->seen.nready, 1);
	assert_int_equal(f->seen.nerr, 1);
	assert_string_equal(f->seen.why, "READY twice");
}

/* chanev_ping sends the channel's PING. */
static void test_ping_sent(void **state)
{
	struct fixture *f = *state;
	struct msg m;
	uint64_t seq;

	assert_int_equal(chanev_ping(&f->ce, 77), 0);
	pump(f);
	m = peer_recv(f);
	assert_int_equal(m.type, MSG_PING);
	memcpy(&seq, m.data, sizeof(seq));
	assert_int_equal(seq, 77);
}

static void send_status(struct fixture *f, uint32_t id)
{
	struct msg_status st = { .restarts_front = id };

	peer_send(f, MSG_R_STATUS, id, &st, sizeof(st));
}

/* While awaiting an answer: PINGs are answered, the rest is held and
 * dispatched afterwards in the order it came, ahead of what comes after
 * the answer; answers to other requests are held too. */
static void test_await_holds_in_order(void **state)
{
	struct fixture *f = *state;
	struct msg_ping ping = { .seq = 3 };
	struct msg_module found = { .found = 1 };
	uint8_t ans[sizeof(found) + 3];
	struct msg_tokens tok = { .admin = "a" };
	struct msg m;
	int r;

	memcpy(ans, &found, sizeof(found));
	memcpy(ans + sizeof(found), "src", 3);
	send_status(f, 1);
	peer_send(f, MSG_R_PING, 2, &ping, sizeof(ping));
	peer_send(f, MSG_R_MODULE, 6, ans, sizeof(ans)); /* not this one */
	send_status(f, 3);
	peer_send(f, MSG_R_MODULE, 7, ans, sizeof(ans));
	peer_send(f, MSG_R_TOKENS, 8, &tok, sizeof(tok));
	r = chanev_await(&f->ce, MSG_R_MODULE, 7, 5000, &m);
	assert_int_equal(r, 1);
	assert_int_equal(m.id, 7);
	assert_int_equal(m.len, sizeof(ans));
	assert_memory_equal((const uint8_t *)m.data + sizeof(found), "src", 3);
	assert_int_equal(f->seen.nmsg, 0); /* nothing dispatched inside */
	assert_int_equal(peer_recv(f).type, MSG_R_PONG);
	pump(f);
	assert_int_equal(f->seen.nmsg, 4);
	assert_int_equal(f->seen.ids[0], 1);
	assert_int_equal(f->seen.ids[1], 6);
	assert_int_equal(f->seen.ids[2], 3);
	assert_int_equal(f->seen.ids[3], 8);
	assert_int_equal(f->seen.nerr, 0);
}

/* Held messages stay ahead of what arrives later, even if the loop
 * reads again before it dispatches them. */
static void test_held_before_later(void **state)
{
	struct fixture *f = *state;
	struct msg_module none = { .found = 0 };
	struct msg m;

	send_status(f, 1);
	peer_send(f, MSG_R_MODULE, 2, &none, sizeof(none));
	assert_int_equal(chanev_await(&f->ce, MSG_R_MODULE, 2, 5000, &m), 1);
	send_status(f, 3);
	pump(f);
	assert_int_equal(f->seen.nmsg, 2);
	assert_int_equal(f->seen.ids[0], 1);
	assert_int_equal(f->seen.ids[1], 3);
}

static void test_await_timeout(void **state)
{
	struct fixture *f = *state;
	struct msg m;

	send_status(f, 1);
	assert_int_equal(chanev_await(&f->ce, MSG_R_MODULE, 1, 50, &m), 0);
	assert_int_equal(f->seen.nerr, 0);
	pump(f);
	assert_int_equal(f->seen.nmsg, 1); /* held, then dispatched */
}

/* The peer goes away while awaited: -1, and the end hears of it. */
static void test_await_eof(void **state)
{
	struct fixture *f = *state;
	struct msg m;

	msgchan_free(&f->peer, true);
	assert_int_equal(chanev_await(&f->ce, MSG_R_MODULE, 1, 5000, &m), -1);
	assert_int_equal(f->seen.nerr, 1);
	assert_int_equal(f->seen.err, 0);
	assert_int_equal(msgchan_init(&f->peer, -1, 1, 1), 0); /* teardown */
}

/* A violation while awaiting is reported as any other. */
static void test_await_violation(void **state)
{
	struct fixture *f = *state;
	struct msg m;

	peer_send(f, MSG_R_STATUS, 1, "short", 5);
	assert_int_equal(chanev_await(&f->ce, MSG_R_MODULE, 1, 5000, &m), -1);
	assert_int_equal(f->seen.nerr, 1);
	assert_int_equal(f->seen.err, EPROTO);
}

/* Each channel's control messages are its own: PING from the parent,
 * PONG and READY from the child; none on the front<->ruleset channel. */
static void test_control_catalogue(void **state)
{
	static const struct {
		enum chan_kind kind;
		enum role child;
	} chans[] = { { CHAN_PARENT_FRONT, ROLE_FRONT },
		      { CHAN_PARENT_RULESET, ROLE_RULESET } };
	const struct msg_ctl *none = msg_chan_ctl(CHAN_FRONT_RULESET);

	(void)state;
	for (size_t i = 0; i < sizeof(chans) / sizeof(chans[0]); i++) {
		const struct msg_ctl *ctl = msg_chan_ctl(chans[i].kind);
		const struct msg_desc *ping = msg_lookup(ctl->ping);
		const struct msg_desc *pong = msg_lookup(ctl->pong);
		const struct msg_desc *ready = msg_lookup(ctl->ready);

		assert_non_null(ping);
		assert_non_null(pong);
		assert_non_null(ready);
		assert_int_equal(ping->chan, chans[i].kind);
		assert_int_equal(pong->chan, chans[i].kind);
		assert_int_equal(ready->chan, chans[i].kind);
		assert_int_equal(ping->sender, ROLE_PARENT);
		assert_int_equal(pong->sender, chans[i].child);
		assert_int_equal(ready->sender, chans[i].child);
		/* the answer carries the question's payload */
		assert_int_equal(ping->minlen, pong->minlen);
		assert_int_equal(ping->maxlen, pong->maxlen);
	}
	assert_int_equal(none->ping + none->pong + none->ready, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f, s) cmocka_unit_test_setup_teardown(f, s, teardown)
		T(test_rows_dispatch, setup_front),
		T(test_no_row_is_a_violation, setup_front),
		T(test_state_not_allowed, setup_front),
		T(test_state_allowed_after_change, setup_front),
		T(test_handler_rejects, setup_front),
		T(test_catalogue_before_rows, setup_front),
		T(test_ping_answered, setup_child),
		T(test_ready_once, setup_parent),
		T(test_ping_sent, setup_parent),
		T(test_await_holds_in_order, setup_child),
		T(test_held_before_later, setup_child),
		T(test_await_timeout, setup_child),
		T(test_await_eof, setup_child),
		T(test_await_violation, setup_child),
#undef T
		cmocka_unit_test(test_control_catalogue),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
