#include "common/growbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GROWBUF_FIRST 4096

static void growbuf_fail(struct growbuf *b, bool nomem)
{
	b->failed = true;
	b->nomem |= nomem;
}

char *growbuf_room(struct growbuf *b, size_t min, size_t *avail)
{
	size_t ncap;
	char *np;

	if (b->failed)
		return NULL;
	if (b->cap - b->len < min) {
		if (min > b->max - b->len) {
			growbuf_fail(b, false);
			return NULL;
		}
		ncap = b->cap == 0 ? GROWBUF_FIRST : b->cap;
		while (ncap - b->len < min && ncap <= b->max / 2)
			ncap *= 2;
		/* from half the bound on, the bound itself */
		if (ncap > b->max / 2 || ncap - b->len < min)
			ncap = b->max;
		np = realloc(b->p, ncap + 1);
		if (np == NULL) {
			growbuf_fail(b, true);
			return NULL;
		}
		b->p = np;
		b->cap = ncap;
	}
	*avail = b->cap - b->len;
	return b->p + b->len;
}

void growbuf_commit(struct growbuf *b, size_t n)
{
	b->len += n;
}

int growbuf_add(struct growbuf *b, const void *data, size_t n)
{
	size_t avail;
	char *dst;

	if (n == 0)
		return b->failed ? -1 : 0;
	dst = growbuf_room(b, n, &avail);
	if (dst == NULL)
		return -1;
	memcpy(dst, data, n);
	b->len += n;
	return 0;
}

void growbuf_printf(struct growbuf *b, const char *fmt, ...)
{
	size_t avail = b->cap - b->len;
	char *dst = b->p != NULL ? b->p + b->len : NULL;
	va_list ap;
	int n;

	if (b->failed)
		return;
	/* p holds cap + 1 bytes: the NUL vsnprintf writes fits */
	va_start(ap, fmt);
	n = vsnprintf(dst, dst != NULL ? avail + 1 : 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		growbuf_fail(b, false);
		return;
	}
	if ((size_t)n <= avail && dst != NULL) {
		b->len += (size_t)n;
		return;
	}
	dst = growbuf_room(b, (size_t)n, &avail);
	if (dst == NULL)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(dst, avail + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

const char *growbuf_str(struct growbuf *b)
{
	if (b->p == NULL)
		return "";
	b->p[b->len] = '\0';
	return b->p;
}

char *growbuf_take(struct growbuf *b)
{
	char *p = b->p;

	if (p != NULL)
		p[b->len] = '\0';
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

void growbuf_free(struct growbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}
