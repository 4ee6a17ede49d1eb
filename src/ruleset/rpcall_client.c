/* rpcall_client: await.invoke and neosocksd.invoke, the RPC client.
 *
 * The ruleset process has no network: it asks the front to dial the peer's
 * API through the given chain (MSG_DIAL_REQ) and gets the connected socket
 * back (MSG_DIAL_RES). It then speaks HTTP/1.1 over it: one POST of
 * /ruleset/rpcall (await.invoke) or /ruleset/invoke (neosocksd.invoke),
 * "Connection: close", the body deflated when it is 256 bytes or more, the
 * answer read whole (at most 4 MiB, also after inflating) within -t.
 *
 * A 2xx answer is data ("return true,<marshalled values>"): it is read by
 * the data-only parser (unmarshal.h) and never run, so a peer cannot spin
 * inside a C call where the CPU budget does not reach.
 *
 * A peer named "https://host:port" is called over TLS: its certificate must
 * chain to --rpc-tls-ca and name host (a name, or an IP address), and
 * --rpc-tls-cert is shown when it asks for one. The request is not
 * half-closed (TLS has no half-close the API would see as such); the
 * answer ends with the peer's close_notify, or is framed by its
 * Content-Length (a TCP close alone cannot cut it short unseen).
 *
 * A peer that wants a token gets the one the ruleset configured for it:
 * _G.rpc_tokens is a table indexed by the address given to invoke, or a
 * function called with the same arguments as invoke minus the code, that
 * returns the token or nil. */
#include "ruleset/rpcall_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <lauxlib.h>

#include "common/addr.h"
#include "common/chanev.h"
#include "common/growbuf.h"
#include "common/http1.h"
#include "common/log.h"
#include "common/route_wire.h"
#include "ruleset/api_tls.h"
#include "ruleset/aroutine.h"
#include "ruleset/rpcall.h"
#include "ruleset/ruleset_front.h"
#include "ruleset/ruleset_main.h"
#include "ruleset/stats.h"
#include "ruleset/unmarshal_lua.h"
#include "ruleset/vm.h"
#include "ruleset/zbody.h"

#define RPC_CALLS_MAX 16   /* in flight; each may buffer 4 MiB */
#define RPC_RESP_MAX API_BODY_MAX

enum rpc_state { RPC_DIALING, RPC_SENDING, RPC_RECEIVING };

struct rpc_call {
	struct rpc_call *next;
	uint32_t id;
	unsigned worker; /* the front worker that dials for it */
	enum rpc_state state;
	struct aroutine *ar; /* await.invoke; NULL for neosocksd.invoke */
	int fd;
	struct event ev, timer;
	bool watching;
	char *out;
	size_t outlen, outoff;
	struct growbuf in; /* the answer, read until the peer closes */
	char target[128]; /* for logs */
	bool tls;             /* an https:// peer */
	bool tls_clean_end;   /* it ended with close_notify */
	struct tlsconn *tlsc; /* once connected */
	char host[256];       /* the name its certificate must bear */
};

static struct {
	struct rpc_call *calls;
	unsigned n;
	uint32_t next_id;
} rpc_client;

/* ---- the outcome ---- */

struct rpc_outcome {
	bool ok;
	const char *err; /* !ok */
	size_t errlen;
	const char *body; /* ok: the chunk to load */
	size_t bodylen;
};

static void rpc_unlink(struct rpc_call *c)
{
	struct rpc_call **pp = &rpc_client.calls;

	while (*pp != NULL && *pp != c)
		pp = &(*pp)->next;
	if (*pp == c) {
		*pp = c->next;
		rpc_client.n--;
	}
}

/* Stop everything the call watches; its buffers stay until rpc_free. */
static void rpc_detach(struct rpc_call *c)
{
	rpc_unlink(c);
	if (c->watching)
		event_del(&c->ev);
	c->watching = false;
	evtimer_del(&c->timer);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->state == RPC_DIALING && ruleset_front(c->worker) != NULL)
		chanev_send(ruleset_front(c->worker), MSG_DIAL_CANCEL, c->id,
			    NULL, 0, -1);
	c->state = RPC_SENDING;
}

static void rpc_free(struct rpc_call *c)
{
	rpc_detach(c);
	tlsconn_free(c->tlsc);
	free(c->out);
	growbuf_free(&c->in);
	free(c);
}

/* The function await.invoke hands back: it returns the answer's values
 * (upvalues: a table of them and their count). */
static int rpc_results(lua_State *L)
{
	lua_Integer n = lua_tointeger(L, lua_upvalueindex(2));

	luaL_checkstack(L, (int)n, "too many results");
	for (lua_Integer k = 1; k <= n; k++)
		lua_rawgeti(L, lua_upvalueindex(1), k);
	return (int)n;
}

/* Protected: parse the answer (data only, never run) into rpc_results. */
static int rpc_answer(lua_State *L)
{
	const struct rpc_outcome *o = lua_touserdata(L, 1);
	int top = lua_gettop(L), n;

	n = unmarshal_lua(L, o->body, o->bodylen, RPC_RESP_MAX);
	if (n < 0)
		return luaL_error(L, "bad RPC answer: %s",
				  lua_isstring(L, -1) ? lua_tostring(L, -1)
						      : "stack overflow");
	lua_createtable(L, n, 0);
	lua_insert(L, top + 1);
	for (int k = n; k >= 1; k--)
		lua_rawseti(L, top + 1, k);
	lua_pushinteger(L, n);
	lua_pushcclosure(L, rpc_results, 2);
	return 1;
}

static int rpc_push(lua_State *co, void *ud)
{
	const struct rpc_outcome *o = ud;
	lua_State *L = vm_state();
	int top = lua_gettop(L), ok;

	if (!o->ok) {
		lua_pushboolean(co, 0);
		lua_pushlstring(co, o->err, o->errlen);
		return 2;
	}
	/* the answer is data ("return true,<marshalled values>"): read by a
	 * parser that builds values and runs nothing (a peer's chunk could
	 * spin inside one C call, where no CPU budget reaches) */
	luaL_checkstack(L, 3, NULL);
	lua_pushcfunction(L, rpc_answer);
	lua_pushlightuserdata(L, (void *)o);
	ok = lua_pcall(L, 1, 1, 0) == LUA_OK;
	lua_pushboolean(co, ok);
	lua_xmove(L, co, 1); /* the function, or the reason */
	lua_settop(L, top);
	return 2;
}

/* Report and free (o may point into c's buffers). For neosocksd.invoke a
 * failure is only logged. */
static void rpc_finish(struct rpc_call *c, const struct rpc_outcome *o)
{
	struct aroutine *ar = c->ar;

	if (ar == NULL && !o->ok)
		LOG_RL(LOGL_WARN, 10, "api invoke %s: %.*s", c->target,
		       (int)o->errlen, o->err);
	c->ar = NULL;
	rpc_detach(c);
	if (ar != NULL)
		ar_wake(ar, rpc_push, (void *)o);
	rpc_free(c);
}

static void rpc_fail(struct rpc_call *c, const char *why)
{
	struct rpc_outcome o = { .ok = false, .err = why,
				 .errlen = strlen(why) };

	rpc_finish(c, &o);
}

/* The routine was dropped while waiting. */
static void rpc_cancel(void *op)
{
	struct rpc_call *c = op;

	c->ar = NULL;
	rpc_free(c);
}

/* ---- the response ---- */

/* The whole response is in c->in (the peer closed). */
static void rpc_parse_response(struct rpc_call *c)
{
	struct http1_parser ps;
	struct http1_head *h = malloc(sizeof(*h));
	const struct http1_span *ct, *ce;
	struct rpc_outcome o = { 0 };
	char *inflated = NULL, status_line[96];
	const char *body;
	size_t bodylen;
	long hl;
	bool is_rpc;

	if (h == NULL) {
		rpc_fail(c, "out of memory");
		return;
	}
	http1_parser_init(&ps, HTTP1_RESPONSE);
	hl = http1_parse(&ps, c->in.p, c->in.len, h);
	if (hl <= 0) {
		free(h);
		rpc_fail(c, hl == 0 ? "unexpected EOF" : "malformed response");
		return;
	}
	if (h->chunked) {
		free(h);
		rpc_fail(c, "chunked response not supported");
		return;
	}
	if (c->tls && !c->tls_clean_end && h->content_length < 0) {
		free(h);
		rpc_fail(c, "TLS: the answer ended without close_notify or "
			    "Content-Length");
		return;
	}
	body = c->in.p + hl;
	bodylen = c->in.len - (size_t)hl;
	if (h->content_length >= 0) {
		if ((uint64_t)h->content_length > bodylen) {
			free(h);
			rpc_fail(c, "unexpected EOF");
			return;
		}
		bodylen = (size_t)h->content_length;
	}
	ct = http1_known_value(h, HTTP1_H_CONTENT_TYPE);
	ce = http1_known_value(h, HTTP1_H_CONTENT_ENCODING);
	is_rpc = ct != NULL && rpcall_mime_ok(c->in.p + ct->off, ct->len);
	if (ce != NULL && bodylen > 0) {
		size_t n;
		int gz = http1_span_eq_ci(c->in.p, *ce, "gzip");

		if (!gz && !http1_span_eq_ci(c->in.p, *ce, "deflate")) {
			free(h);
			rpc_fail(c, "unsupported content-encoding");
			return;
		}
		if (zbody_inflate(body, bodylen, gz, RPC_RESP_MAX, &inflated,
				  &n) != ZBODY_OK) {
			free(h);
			rpc_fail(c, "bad compressed response");
			return;
		}
		body = inflated;
		bodylen = n;
	}
	stats_count_rpc(c->in.len, c->outlen);
	if (h->status >= 200 && h->status < 300) {
		if (c->ar != NULL && !is_rpc) {
			o.err = "unsupported content-type";
			o.errlen = strlen(o.err);
		} else {
			o.ok = true;
			o.body = body;
			o.bodylen = bodylen;
		}
	} else if (is_rpc && bodylen > 0) {
		o.err = body;
		o.errlen = bodylen;
	} else {
		snprintf(status_line, sizeof(status_line), "HTTP/1.%d %d %s",
			 h->version_minor, h->status, http1_reason(h->status));
		o.err = status_line;
		o.errlen = strlen(status_line);
	}
	free(h);
	rpc_finish(c, &o);
	free(inflated);
}

/* ---- the exchange ---- */

static void rpc_watch(struct rpc_call *c, short flags);

static void rpc_fail_tls(struct rpc_call *c, const char *why)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "TLS: %s", why);
	rpc_fail(c, buf);
}

/* The request through the library until all of it is out. 0, or -1 when
 * the call failed (and is freed). */
static int rpc_send_tls(struct rpc_call *c)
{
	while (c->state == RPC_SENDING) {
		int sent = tlsconn_send_fd(c->tlsc, c->fd);
		ssize_t n;

		if (sent < 0) {
			rpc_fail(c, strerror(errno));
			return -1;
		}
		if (sent == 0)
			return 0; /* the socket is full */
		if (c->outoff == c->outlen) {
			c->state = RPC_RECEIVING;
			return 0;
		}
		n = tlsconn_write(c->tlsc, c->out + c->outoff,
				  c->outlen - c->outoff);
		if (n == TLSCONN_ERR) {
			rpc_fail_tls(c, tlsconn_error(c->tlsc));
			return -1;
		}
		if (n > 0)
			c->outoff += (size_t)n;
	}
	return 0;
}

/* Room for more of the answer, or NULL when the call failed (and is
 * freed): out of memory, or the answer over its bound. */
static char *rpc_in_room(struct rpc_call *c, size_t *room)
{
	char *p = growbuf_room(&c->in, 1, room);

	if (p == NULL)
		rpc_fail(c, c->in.nomem ? "out of memory" : "response too large");
	return p;
}

/* The answer until the peer's end. 1 when it is whole, 0 for more, -1
 * when the call failed (and is freed). */
static int rpc_recv_tls(struct rpc_call *c)
{
	for (;;) {
		size_t room;
		char *p = rpc_in_room(c, &room);
		ssize_t n;

		if (p == NULL)
			return -1;
		n = tlsconn_read(c->tlsc, p, room);
		if (n > 0) {
			growbuf_commit(&c->in, (size_t)n);
			continue;
		}
		if (n == TLSCONN_AGAIN)
			return 0;
		if (n == TLSCONN_EOF) {
			c->tls_clean_end = (SSL_get_shutdown(tlsconn_ssl(
						    c->tlsc)) &
					    SSL_RECEIVED_SHUTDOWN) != 0;
			return 1;
		}
		rpc_fail_tls(c, tlsconn_error(c->tlsc));
		return -1;
	}
}

/* An https:// peer: both directions each time (the handshake and the
 * library's own messages go either way). */
static void rpc_io_tls(struct rpc_call *c)
{
	ssize_t n = tlsconn_recv_fd(c->tlsc, c->fd);
	const char *p;
	int r;

	if (n < 0 && errno != EAGAIN && errno != EINTR && errno != ENOBUFS) {
		rpc_fail(c, strerror(errno));
		return;
	}
	if (!tlsconn_established(c->tlsc)) {
		r = tlsconn_handshake(c->tlsc);
		if (r == TLSCONN_EOF) {
			rpc_fail_tls(c, "the peer closed during the handshake");
			return;
		}
		if (r == TLSCONN_ERR) {
			(void)tlsconn_send_fd(c->tlsc, c->fd); /* the alert */
			rpc_fail_tls(c, tlsconn_error(c->tlsc));
			return;
		}
	}
	if (tlsconn_established(c->tlsc)) {
		if (rpc_send_tls(c) < 0)
			return;
		if (c->state == RPC_RECEIVING) {
			r = rpc_recv_tls(c);
			if (r < 0)
				return;
			if (r > 0) {
				rpc_parse_response(c);
				return;
			}
		}
	}
	if (tlsconn_send_fd(c->tlsc, c->fd) < 0) {
		rpc_fail(c, strerror(errno));
		return;
	}
	rpc_watch(c, EV_READ | (tlsconn_out_peek(c->tlsc, &p) > 0 ||
					  c->state == RPC_SENDING
				  ? EV_WRITE
				  : 0));
}

static void rpc_io(evutil_socket_t fd, short what, void *arg)
{
	struct rpc_call *c = arg;

	(void)what;
	if (c->tlsc != NULL) {
		rpc_io_tls(c);
		return;
	}
	if (c->state == RPC_SENDING) {
		while (c->outoff < c->outlen) {
			ssize_t n = send(fd, c->out + c->outoff,
					 c->outlen - c->outoff, MSG_NOSIGNAL);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return;
			if (n <= 0) {
				rpc_fail(c, strerror(errno));
				return;
			}
			c->outoff += (size_t)n;
		}
		c->state = RPC_RECEIVING;
		(void)shutdown(fd, SHUT_WR);
		rpc_watch(c, EV_READ);
		return;
	}
	for (;;) {
		size_t room;
		char *p = rpc_in_room(c, &room);
		ssize_t n;

		if (p == NULL)
			return;
		n = recv(fd, p, room, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			rpc_fail(c, strerror(errno));
			return;
		}
		if (n == 0)
			break;
		growbuf_commit(&c->in, (size_t)n);
	}
	rpc_parse_response(c);
}

static void rpc_watch(struct rpc_call *c, short flags)
{
	if (c->watching)
		event_del(&c->ev);
	event_assign(&c->ev, ruleset_base(), c->fd, flags | EV_PERSIST, rpc_io,
		     c);
	c->watching = event_add(&c->ev, NULL) == 0;
}

static void rpc_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	rpc_fail(arg, "timeout");
}

void rpcall_client_on_dial(const struct msg *m, unsigned worker)
{
	struct msg_result r;
	struct rpc_call *c = rpc_client.calls;

	while (c != NULL && !(c->id == m->id && c->worker == worker &&
			      c->state == RPC_DIALING))
		c = c->next;
	memcpy(&r, m->data, sizeof(r));
	if (c == NULL || (r.ok != 0) != (m->fd >= 0)) {
		if (m->fd >= 0)
			close(m->fd); /* the call gave up meanwhile */
		return;
	}
	if (!r.ok) {
		struct rpc_outcome o = {
			.err = m->len > sizeof(r) ? (const char *)m->data +
							    sizeof(r)
						  : "connection failed",
			.errlen = m->len > sizeof(r) ? m->len - sizeof(r)
						     : strlen("connection "
							      "failed"),
		};

		c->state = RPC_SENDING; /* finished: nothing to cancel */
		rpc_finish(c, &o);
		return;
	}
	c->fd = m->fd;
	c->state = RPC_SENDING;
	if (c->tls) {
		SSL_CTX *ctx = api_tls_client();

		c->tlsc = ctx != NULL ? tlsconn_new(ctx, false, c->host) : NULL;
		if (c->tlsc == NULL) {
			rpc_fail_tls(c, ctx == NULL ? "no --rpc-tls-ca"
						    : "out of memory");
			return;
		}
	}
	rpc_watch(c, EV_WRITE);
}

void rpcall_client_front_gone(unsigned worker)
{
	struct rpc_call *c = rpc_client.calls;

	while (c != NULL) {
		struct rpc_call *next = c->next;

		if (c->state == RPC_DIALING && c->worker == worker) {
			c->state = RPC_SENDING; /* nobody to cancel with */
			rpc_fail(c, "the front is restarting");
		}
		c = next;
	}
}

/* ---- starting a call from Lua ---- */

/* The token for this peer from _G.rpc_tokens, or NULL. Lua values at
 * 2..top are addr, proxyN, ..., proxy1. May raise. */
static const char *rpc_token(lua_State *L, int top, size_t *len)
{
	const char *tok = NULL;

	if (lua_getglobal(L, "rpc_tokens") == LUA_TFUNCTION) {
		for (int i = 2; i <= top; i++)
			lua_pushvalue(L, i);
		lua_call(L, top - 1, 1);
	} else if (lua_istable(L, -1)) {
		lua_pushvalue(L, 2);
		lua_gettable(L, -2);
		lua_remove(L, -2);
	}
	if (lua_type(L, -1) == LUA_TSTRING)
		tok = lua_tolstring(L, -1, len);
	/* left on the stack: it keeps the string alive */
	return tok;
}

/* The request into c->out; -1 when out of memory. Never raises. */
static int rpc_build(struct rpc_call *c, bool invoke, const char *code,
		     size_t codelen, const char *tok, size_t toklen)
{
	char head[1024];
	char *z = NULL;
	const char *body = code;
	size_t bodylen = codelen;
	int n;

	if (codelen >= RPC_COMPRESS_MIN &&
	    zbody_deflate(code, codelen, &z, &bodylen) == ZBODY_OK)
		body = z;
	else
		bodylen = codelen;
	n = snprintf(head, sizeof(head),
		     "POST %s HTTP/1.1\r\n"
		     "Accept-Encoding: deflate\r\n"
		     "Connection: close\r\n"
		     "Content-Type: " RPC_MIME "\r\n"
		     "%s"
		     "%s%.*s%s"
		     "Content-Length: %zu\r\n\r\n",
		     invoke ? "/ruleset/invoke" : "/ruleset/rpcall",
		     z != NULL ? "Content-Encoding: deflate\r\n" : "",
		     tok != NULL ? "Authorization: Bearer " : "",
		     tok != NULL ? (int)toklen : 0, tok != NULL ? tok : "",
		     tok != NULL ? "\r\n" : "", bodylen);
	if (n < 0 || (size_t)n >= sizeof(head) ||
	    (c->out = malloc((size_t)n + bodylen)) == NULL) {
		explicit_bzero(head, sizeof(head));
		free(z);
		return -1;
	}
	memcpy(c->out, head, (size_t)n);
	memcpy(c->out + n, body, bodylen);
	c->outlen = (size_t)n + bodylen;
	explicit_bzero(head, sizeof(head));
	free(z);
	return 0;
}

/* "https://" before an address: the peer is called over TLS ("http://"
 * is the default, and may be written). Moves *p past the scheme. */
static bool rpc_scheme_tls(const char **p, size_t *len)
{
	if (*len > 8 && strncasecmp(*p, "https://", 8) == 0) {
		*p += 8;
		*len -= 8;
		return true;
	}
	if (*len > 7 && strncasecmp(*p, "http://", 7) == 0) {
		*p += 7;
		*len -= 7;
	}
	return false;
}

/* An https:// peer's host: a name or an IP address its certificate must
 * bear, and the TLS client set up. Raises otherwise. */
static void rpc_check_tls_peer(lua_State *L, const char *host)
{
	unsigned char ip[16];

	if (inet_pton(AF_INET, host, ip) != 1 &&
	    inet_pton(AF_INET6, host, ip) != 1 &&
	    !addr_name_valid(host, strlen(host)))
		luaL_error(L, "invalid address");
	if (api_tls_client() == NULL)
		luaL_error(L, "https:// peers need --rpc-tls-ca");
}

/* code, addr, proxyN, ..., proxy1 -> a call that is dialing, or raises. */
static struct rpc_call *rpc_start(lua_State *L, bool invoke)
{
	struct route_decision d = { .result = ROUTE_GO };
	char buf[sizeof(struct msg_route) + MSG_ROUTE_STRS_MAX];
	int top = lua_gettop(L), len, worker;
	size_t codelen, sl;
	const char *code = luaL_checklstring(L, 1, &codelen);
	struct rpc_call *c;
	char host[256], port[8];
	struct timeval tv;
	double t = ruleset_conf()->timeout;
	const char *tok, *given;
	size_t toklen = 0;
	bool tls;

	if (top < 2 || lua_type(L, 2) != LUA_TSTRING)
		luaL_error(L, "invalid address");
	given = d.addr.p = lua_tolstring(L, 2, &sl);
	tls = rpc_scheme_tls(&d.addr.p, &sl);
	if (sl == 0 || sl > ROUTE_STR_MAX ||
	    addr_splithostport(d.addr.p, sl, host, sizeof(host), port,
			       sizeof(port)) < 0 ||
	    !host[0] || !port[0])
		luaL_error(L, "invalid address");
	if (tls)
		rpc_check_tls_peer(L, host);
	d.addr.len = (uint16_t)sl;
	if (top - 2 > ROUTE_HOPS_MAX)
		luaL_error(L, "too many proxies");
	d.nhops = (uint16_t)(top - 2);
	for (int i = 0; i < top - 2; i++) {
		d.hops[i].p = luaL_checklstring(L, top - i, &sl);
		if (sl == 0 || sl > ROUTE_STR_MAX)
			luaL_error(L, "invalid proxy");
		d.hops[i].len = (uint16_t)sl;
	}
	if (codelen > API_BODY_MAX)
		luaL_error(L, "invoke: code too long");
	len = route_wire_encode(buf, sizeof(buf), &d);
	if (len < 0)
		luaL_error(L, "invalid address");
	tok = rpc_token(L, top, &toklen); /* may raise: before allocating */
	if (tok != NULL && (toklen == 0 || toklen > 256 ||
			    strcspn(tok, "\r\n ") != toklen))
		luaL_error(L, "rpc_tokens: bad token for %s", host);
	worker = ruleset_front_pick();
	if (rpc_client.n >= RPC_CALLS_MAX || worker < 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		luaL_error(L, "out of memory");
	c->fd = -1;
	c->in = (struct growbuf)GROWBUF_INIT(RPC_RESP_MAX + HTTP1_MAX_HEAD);
	c->id = ++rpc_client.next_id;
	c->worker = (unsigned)worker;
	c->state = RPC_DIALING;
	c->tls = tls;
	snprintf(c->host, sizeof(c->host), "%s", host);
	{
		/* as given, scheme included, for logs */
		size_t tl = (size_t)(d.addr.p - given) + d.addr.len;

		if (tl > sizeof(c->target) - 1)
			tl = sizeof(c->target) - 1;
		memcpy(c->target, given, tl);
		c->target[tl] = '\0';
	}
	c->next = rpc_client.calls;
	rpc_client.calls = c;
	rpc_client.n++;
	evtimer_assign(&c->timer, ruleset_base(), rpc_timeout, c);
	/* nothing below raises: c cannot leak */
	if (rpc_build(c, invoke, code, codelen, tok, toklen) < 0 ||
	    chanev_send(ruleset_front(c->worker), MSG_DIAL_REQ, c->id, buf,
			(size_t)len, -1) < 0) {
		c->state = RPC_SENDING; /* nothing was asked of the front */
		rpc_free(c);
		return NULL;
	}
	tv.tv_sec = (time_t)t;
	tv.tv_usec = (suseconds_t)((t - (double)tv.tv_sec) * 1e6);
	evtimer_add(&c->timer, &tv);
	return c;
}

/* await.invoke(code, addr, proxyN, ..., proxy1) -> true, fn | false, err */
int rpcall_client_await_invoke(lua_State *L)
{
	struct aroutine *ar = ar_current(L);
	struct rpc_call *c;

	if (ar == NULL)
		return luaL_error(L, "not in asynchronous routine");
	c = rpc_start(L, false);
	if (c == NULL) {
		lua_pushboolean(L, 0);
		lua_pushstring(L, ruleset_front_pick() < 0
					  ? "the front is restarting"
					  : "too many RPC calls in flight");
		return 2;
	}
	c->ar = ar;
	return ar_wait(L, c, rpc_cancel, NULL);
}

/* neosocksd.invoke(code, addr, proxyN, ..., proxy1): fire and forget */
int rpcall_client_nsd_invoke(lua_State *L)
{
	if (rpc_start(L, true) == NULL)
		LOG_RL(LOGL_WARN, 10, "neosocksd.invoke: %s; the call is "
				      "dropped",
		       ruleset_front_pick() < 0 ? "the front is restarting"
					       : "too many RPC calls in flight");
	return 0;
}
