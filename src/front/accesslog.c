/* accesslog: one key=value access line for every driver (session.c's
 * close path, httpfwd.c's per-request lines). Pure but for the log call. */
#include "front/accesslog.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/addr.h"
#include "common/log.h"

struct al_buf {
	char *p;
	size_t cap, len;
	bool cut;
};

static void al_put(struct al_buf *b, const char *s, size_t n)
{
	if (b->len + n >= b->cap) {
		b->cut = true;
		n = b->len < b->cap - 1 ? b->cap - 1 - b->len : 0;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static bool al_bare(const char *v)
{
	if (*v == '\0')
		return false;
	for (; *v != '\0'; v++) {
		unsigned char c = (unsigned char)*v;

		if (c <= ' ' || c >= 0x7f || c == '"' || c == '\\')
			return false;
	}
	return true;
}

/* " key=value", the value quoted and escaped when it must be. */
static void al_field(struct al_buf *b, const char *key, const char *v)
{
	static const char hex[] = "0123456789ABCDEF";

	if (v == NULL)
		return;
	al_put(b, " ", 1);
	al_put(b, key, strlen(key));
	al_put(b, "=", 1);
	if (al_bare(v)) {
		al_put(b, v, strlen(v));
		return;
	}
	al_put(b, "\"", 1);
	for (; *v != '\0'; v++) {
		unsigned char c = (unsigned char)*v;
		char e[3] = { '%', hex[c >> 4], hex[c & 15] };

		if (c < ' ' || c >= 0x7f || c == '"' || c == '\\' || c == '%')
			al_put(b, e, 3);
		else
			al_put(b, v, 1);
	}
	al_put(b, "\"", 1);
}

static void al_fieldf(struct al_buf *b, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void al_fieldf(struct al_buf *b, const char *key, const char *fmt, ...)
{
	char v[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v, sizeof(v), fmt, ap);
	va_end(ap);
	al_field(b, key, v);
}

/* A user name from the network, made one safe log field: percent-encoded
 * like a URL's userinfo (space, '%', quotes, backslash and bytes outside
 * printable ASCII), so that neither a separator nor the log's own escapes
 * can appear in it. */
void accesslog_user_text(const char *in, char *out, size_t cap)
{
	size_t o = 0;

	for (; *in != '\0' && o + 4 < cap; in++) {
		unsigned char c = (unsigned char)*in;

		if (c > ' ' && c < 0x7f && c != '\\' && c != '"' && c != '%' &&
		    c != '\'')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, cap - o, "%%%02X", c);
	}
	if (*in != '\0' && o + 4 <= cap) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

int accesslog_format(const struct accesslog *a, char *buf, size_t cap)
{
	struct al_buf b = { buf, cap, 0, false };
	char client[ADDR_STRLEN] = "?";

	if (cap == 0)
		return -1;
	buf[0] = '\0';
	if (a->client != NULL &&
	    addr_format_sockaddr(a->client, client, sizeof(client)) < 0)
		snprintf(client, sizeof(client), "?");
	al_field(&b, "client", client);
	al_field(&b, "proto", a->proto);
	al_field(&b, "user", a->user);
	al_field(&b, "method", a->method);
	al_field(&b, "url", a->url);
	al_field(&b, "target", a->target);
	al_field(&b, "route", a->route != NULL ? a->route : "-");
	al_field(&b, "to", a->to);
	al_field(&b, "block", a->block);
	if (a->status > 0)
		al_fieldf(&b, "status", "%d", a->status);
	if (a->reply >= 0)
		al_fieldf(&b, "reply", a->socks_version == 4 ? "%d" : "%02x",
			  a->reply);
	for (size_t i = 0; i < a->nmore; i++)
		al_field(&b, a->more[i].key, a->more[i].value);
	al_fieldf(&b, "up", "%llu", (unsigned long long)a->up);
	al_fieldf(&b, "down", "%llu", (unsigned long long)a->down);
	al_fieldf(&b, "dur", "%.3f", a->dur);
	al_field(&b, "outcome", a->outcome != NULL ? a->outcome : "ok");
	/* without the leading space */
	memmove(buf, buf + (b.len > 0), b.len);
	return b.cut ? -1 : (int)b.len - (b.len > 0);
}

void accesslog_write(const struct accesslog *a)
{
	char line[2048];

	if (log_level < LOGL_INFO)
		return;
	(void)accesslog_format(a, line, sizeof(line));
	LOGI("[#%s] %s", a->id, line);
}
