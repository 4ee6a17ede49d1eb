/* growbuf: one growable buffer with a hard bound, for text built up and
 * bytes taken in (the API's answers and /stats text, inflated bodies, the
 * RPC client's answers).
 *
 * It grows by doubling, but goes straight to the bound from half of it, so
 * a realloc that copies holds at most 1.5 times the bound; one byte more
 * than its room is always allocated, for a terminating NUL. What does not
 * fit, or memory running out, fails the buffer: the data stays as it was,
 * later appends do nothing, and failed (nomem: for lack of memory) says
 * so. */
#ifndef NEOSOCKSD_GROWBUF_H
#define NEOSOCKSD_GROWBUF_H

#include <stdbool.h>
#include <stddef.h>

struct growbuf {
	char *p;      /* NULL until something is added */
	size_t len;   /* bytes held */
	size_t cap;   /* room for bytes (p holds cap + 1) */
	size_t max;   /* cap never exceeds it */
	bool failed;  /* something did not fit, or memory ran out */
	bool nomem;   /* ... memory ran out */
};

#define GROWBUF_INIT(bound) { NULL, 0, 0, (bound), false, false }

/* Room for at least min more bytes (up to the bound): where it starts,
 * and in *avail how much there is (>= min). NULL, and the buffer failed,
 * when it cannot grow enough. Add what was written with growbuf_commit. */
char *growbuf_room(struct growbuf *b, size_t min, size_t *avail);
void growbuf_commit(struct growbuf *b, size_t n);
/* Append n bytes. 0, or -1 (the buffer failed). */
int growbuf_add(struct growbuf *b, const void *data, size_t n);
/* Append formatted text. */
void growbuf_printf(struct growbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* NUL-terminate the data (always possible once p is allocated) and
 * return it; "" when empty. */
const char *growbuf_str(struct growbuf *b);
/* Hand the allocation over (the caller frees it); the buffer is empty. */
char *growbuf_take(struct growbuf *b);
void growbuf_free(struct growbuf *b);

#endif
