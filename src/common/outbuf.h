/* outbuf: bounded text output into a caller's buffer (addresses, proxy
 * URIs). It fails instead of truncating and keeps the buffer
 * NUL-terminated; on failure out_end() leaves it empty. */
#ifndef NEOSOCKSD_OUTBUF_H
#define NEOSOCKSD_OUTBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct outbuf {
	char *buf;
	size_t cap;
	size_t len;
	bool fail;
};

static inline void out_init(struct outbuf *o, char *buf, size_t cap)
{
	o->buf = buf;
	o->cap = cap;
	o->len = 0;
	o->fail = buf == NULL || cap == 0;
	if (!o->fail)
		buf[0] = '\0';
}

static inline void out_put(struct outbuf *o, const char *s, size_t n)
{
	if (o->fail)
		return;
	if (n >= o->cap - o->len) {
		o->fail = true;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static inline void out_str(struct outbuf *o, const char *s)
{
	out_put(o, s, strlen(s));
}

/* The length written, or -1 (and an empty buffer) if anything failed. */
static inline int out_end(struct outbuf *o)
{
	if (o->fail) {
		if (o->buf != NULL && o->cap > 0)
			o->buf[0] = '\0';
		return -1;
	}
	return (int)o->len;
}

#endif
