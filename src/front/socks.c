/* socks: the SOCKS4/4A/5 driver. Moves bytes between the session and the
 * pure parser (socks_proto) and sends the encoded replies. */
#include "front/socks.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "common/http1.h"
#include "common/log.h"
#include "front/front.h"
#include "front/session.h"
#include "front/socks_bind.h"
#include "front/socks_proto.h"
#include "front/udp_assoc.h"

static bool socks_auth_required, socks_bind_on, socks_udp_on;

void socks_set_auth_required(bool on)
{
	socks_auth_required = on;
}

void socks_set_commands(bool bind, bool udp)
{
	socks_bind_on = bind;
	socks_udp_on = udp;
}

static bool socks_is5(const struct session *s)
{
	return s->proto == PROTO_SOCKS5 || s->proto == PROTO_SOCKS5_BIND ||
	       s->proto == PROTO_SOCKS5_UDP;
}

/* The SOCKS5 REP for a failed dial (the reference's table). */
static uint8_t socks_rep_for(const struct dial_result *r)
{
	switch (r->err) {
	case DIAL_ERR_RESOLVE:
		return SOCKS5_REP_HOST_UNREACH;
	case DIAL_ERR_CONNECT:
		switch (r->sys_errno) {
		case ENETUNREACH:
			return SOCKS5_REP_NET_UNREACH;
		case EHOSTUNREACH:
		case ETIMEDOUT:
			return SOCKS5_REP_HOST_UNREACH;
		case ECONNREFUSED:
			return SOCKS5_REP_REFUSED;
		default:
			return SOCKS5_REP_FAIL;
		}
	case DIAL_ERR_PROXY_AUTH:
	case DIAL_ERR_PROXY_REJECTED:
	case DIAL_ERR_BLOCKED:
		return SOCKS5_REP_NOT_ALLOWED;
	case DIAL_ERR_PROXY_REFUSED:
		/* pass on what the last proxy said (04 for its failed name
		 * lookup, ...) when it is a code SOCKS5 defines */
		if (r->upstream_rep >= SOCKS5_REP_FAIL &&
		    r->upstream_rep <= SOCKS5_REP_ATYP_UNSUPPORTED)
			return r->upstream_rep;
		return SOCKS5_REP_REFUSED;
	case DIAL_ERR_TIMEOUT:
		return SOCKS5_REP_TTL_EXPIRED;
	default:
		return SOCKS5_REP_FAIL;
	}
}

/* Reply to a failed request in the client's dialect. */
static void socks_fail(struct session *s, uint8_t rep)
{
	uint8_t out[22];
	size_t n;

	if (socks_is5(s))
		n = socks_proto_s5_reply(out, rep, NULL);
	else
		n = socks_proto_s4_reply(out, SOCKS4_REJECTED);
	s->reply = socks_is5(s) ? rep : SOCKS4_REJECTED;
	(void)session_reply(s, out, n);
}

static void socks_parse_error(struct session *s)
{
	const struct socks_parser *p = &s->hs->p.socks;
	uint8_t out[22];
	size_t n = 0;
	char why[96];

	switch (p->reply) {
	case SOCKS_REPLY_NONE:
		break;
	case SOCKS_REPLY_NOMETHOD:
		n = socks_proto_s5_method_reply(out, SOCKS5_METHOD_NONE);
		break;
	case SOCKS_REPLY_AUTHFAIL:
		n = socks_proto_s5_auth_reply(out, 1);
		break;
	default:
		if (s->proto == PROTO_SOCKS5)
			n = socks_proto_s5_reply(out, (uint8_t)p->reply, NULL);
		else
			n = socks_proto_s4_reply(out, (uint8_t)p->reply);
		s->reply = (int16_t)p->reply;
	}
	if (n > 0)
		(void)session_reply(s, out, n);
	snprintf(why, sizeof(why), "bad request: %s", p->why ? p->why : "?");
	session_close(s, why);
}

static void socks_take_creds(struct hs *hs, const struct socks_msg *m)
{
	memcpy(hs->user, m->user, (size_t)m->ulen + 1);
	hs->has_user = m->ulen > 0;
	if (m->kind == SOCKS_MSG_S5_AUTH) {
		memcpy(hs->pass, m->pass, (size_t)m->plen + 1);
		hs->has_pass = true;
	}
}

/* Handle one decoded message. Returns true to keep parsing. */
static bool socks_handle(struct session *s, const struct socks_msg *m)
{
	struct hs *hs = s->hs;
	uint8_t out[2];

	switch (m->kind) {
	case SOCKS_MSG_S4_REQUEST:
		s->proto = m->socks4a ? PROTO_SOCKS4A : PROTO_SOCKS4;
		if (m->cmd != SOCKS4_CMD_CONNECT) {
			socks_fail(s, 0);
			session_close(s, "command not supported");
			return false;
		}
		socks_take_creds(hs, m);
		hs->target = m->target;
		session_request(s);
		return false;
	case SOCKS_MSG_S5_GREETING:
		s->proto = PROTO_SOCKS5;
		hs->p.socks.method =
			socks_proto_select_method(m, socks_auth_required);
		socks_proto_s5_method_reply(out, hs->p.socks.method);
		if (session_reply(s, out, 2) < 0) {
			session_close(s, "client write error");
			return false;
		}
		if (hs->p.socks.method == SOCKS5_METHOD_NONE) {
			session_close(s, "no acceptable auth method");
			return false;
		}
		return true;
	case SOCKS_MSG_S5_AUTH:
		/* credentials are judged later, by the ruleset */
		socks_take_creds(hs, m);
		socks_proto_s5_auth_reply(out, 0);
		if (session_reply(s, out, 2) < 0) {
			session_close(s, "client write error");
			return false;
		}
		return true;
	case SOCKS_MSG_S5_REQUEST:
		if (m->cmd == SOCKS5_CMD_UDP_ASSOCIATE && socks_udp_on) {
			udp_assoc_request(s, &m->target);
			return false;
		}
		if (m->cmd == SOCKS5_CMD_BIND && socks_bind_on) {
			/* decided like a CONNECT, then before_dial */
			s->proto = PROTO_SOCKS5_BIND;
			hs->target = m->target;
			session_request(s);
			return false;
		}
		if (m->cmd != SOCKS5_CMD_CONNECT) {
			socks_fail(s, SOCKS5_REP_CMD_UNSUPPORTED);
			session_close(s, "command not supported");
			return false;
		}
		hs->target = m->target;
		session_request(s);
		return false;
	}
	return false;
}

static void socks_on_accept(struct session *s)
{
	socks_proto_init(&s->hs->p.socks);
}

/* A client that speaks HTTP to the SOCKS port (a browser or curl given
 * the wrong port) gets one line saying so instead of a silent close.
 * Returns true when answered (or when more bytes are needed to tell). */
static bool socks_http_client(struct session *s)
{
	static const char why[] =
		"this port speaks SOCKS4/5; use the HTTP proxy port";
	struct hs *hs = s->hs;
	char buf[512], outcome[96];
	int r, n;

	if (hs->off != 0)
		return false;
	r = http1_sniff_request((const char *)hs->buf, hs->len);
	if (r < 0)
		return false;
	if (r == 0) {
		/* all letters so far: wait for the space, then judge the
		 * bytes afresh */
		socks_proto_init(&hs->p.socks);
		return true;
	}
	n = http1_error_response_text(buf, sizeof(buf), 400, NULL, why);
	if (n > 0)
		(void)session_reply(s, buf, (size_t)n);
	snprintf(outcome, sizeof(outcome), "bad request: HTTP on the SOCKS "
					   "port (400 %s)",
		 why);
	session_linger(s, outcome);
	return true;
}

static void socks_on_read(struct session *s)
{
	struct hs *hs = s->hs;
	struct socks_msg m;

	for (;;) {
		int r = socks_proto_parse(&hs->p.socks, hs->buf + hs->off,
					  (size_t)(hs->len - hs->off), &m);
		if (r == 0)
			return;
		if (r < 0) {
			if (socks_http_client(s))
				return;
			socks_parse_error(s);
			return;
		}
		hs->off += (uint16_t)r;
		if (!socks_handle(s, &m))
			return;
	}
}

static int socks_on_dialed(struct session *s, const struct dial_result *r)
{
	uint8_t out[22];
	size_t n;

	if (r->err != DIAL_OK) {
		/* BIND: the ruleset's refusal is "not allowed" */
		socks_fail(s, s->proto == PROTO_SOCKS5_BIND &&
					      r->err == DIAL_ERR_RULESET_REJECT
				      ? SOCKS5_REP_NOT_ALLOWED
				      : socks_rep_for(r));
		return -1;
	}
	if (socks_is5(s)) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);

		if (getsockname(s->ufd, (struct sockaddr *)&ss, &len) < 0)
			n = socks_proto_s5_reply(out, SOCKS5_REP_SUCCEEDED, NULL);
		else
			n = socks_proto_s5_reply(out, SOCKS5_REP_SUCCEEDED,
						 (struct sockaddr *)&ss);
	} else {
		n = socks_proto_s4_reply(out, SOCKS4_GRANTED);
	}
	s->reply = socks_is5(s) ? SOCKS5_REP_SUCCEEDED : SOCKS4_GRANTED;
	return session_reply(s, out, n);
}

static void socks_on_timeout(struct session *s)
{
	if (s->hs->request_done)
		socks_fail(s, SOCKS5_REP_TTL_EXPIRED);
}

/* BIND listens instead of dialing. */
static bool socks_before_dial(struct session *s)
{
	if (s->proto != PROTO_SOCKS5_BIND)
		return false;
	socks_bind_start(s);
	return true;
}

/* BIND's listening socket; a UDP association's control connection. */
static void socks_on_event(struct session *s, short what, bool client)
{
	(void)what;
	if (s->udp != NULL && client)
		udp_assoc_on_control(s);
	else if (s->bind != NULL && !client && s->state == SS_DIAL)
		socks_bind_on_event(s);
}

static void socks_log(struct session *s, const char *outcome)
{
	if (s->udp != NULL)
		udp_assoc_log(s, outcome);
	else
		session_log_line(s, outcome);
}

static void socks_on_close(struct session *s)
{
	udp_assoc_free(s->udp);
	s->udp = NULL;
	socks_bind_free(s->bind);
	s->bind = NULL;
}

const struct sess_driver socks_driver = {
	.bufsize = 2048,
	.on_accept = socks_on_accept,
	.on_read = socks_on_read,
	.on_dialed = socks_on_dialed,
	.on_timeout = socks_on_timeout,
	.before_dial = socks_before_dial,
	.on_event = socks_on_event,
	.log = socks_log,
	.on_close = socks_on_close,
};
