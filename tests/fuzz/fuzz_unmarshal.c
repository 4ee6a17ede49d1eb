/* Fuzz target: the data-only RPC answer parser (src/ruleset/unmarshal.c),
 * alone. Flag byte: where to cut the input. The answer is parsed whole and
 * again in pieces (of 1 to 16 bytes, and at the flag's cut): the same
 * events, the same count or the same error at the same byte. The events
 * must form a well-nested stack program: a table is closed once, a SET has
 * a key and a value above the open table, a FLUSH has its values, and
 * what is left at the end is exactly the values returned. */
#include "fuzz.h"

#include "ruleset/unmarshal.h"

struct fuzz_unmarshal_trace {
	uint64_t hash;   /* of every event */
	int depth;       /* values on the stack */
	int tables[UNMARSHAL_DEPTH_MAX + 2]; /* depth at each open table */
	int ntables;
};

static void fuzz_unmarshal_mix(struct fuzz_unmarshal_trace *t,
			       const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t k = 0; k < n; k++)
		t->hash = (t->hash ^ b[k]) * 0x100000001b3u;
}

static int fuzz_unmarshal_event(void *ud, const struct unmarshal_ev *ev)
{
	struct fuzz_unmarshal_trace *t = ud;
	int base = t->ntables > 0 ? t->tables[t->ntables - 1] : 0;

	fuzz_unmarshal_mix(t, &ev->kind, 1);
	switch (ev->kind) {
	case UNMARSHAL_NIL:
		t->depth++;
		break;
	case UNMARSHAL_BOOLEAN:
		fuzz_unmarshal_mix(t, &ev->b, sizeof(ev->b));
		t->depth++;
		break;
	case UNMARSHAL_INTEGER:
		fuzz_unmarshal_mix(t, &ev->i, sizeof(ev->i));
		t->depth++;
		break;
	case UNMARSHAL_FLOAT:
		fuzz_unmarshal_mix(t, &ev->f, sizeof(ev->f));
		t->depth++;
		break;
	case UNMARSHAL_STRING:
		FUZZ_CHECK(ev->s != NULL || ev->len == 0);
		fuzz_unmarshal_mix(t, &ev->len, sizeof(ev->len));
		fuzz_unmarshal_mix(t, ev->s, ev->len);
		t->depth++;
		break;
	case UNMARSHAL_TABLE:
		FUZZ_CHECK(t->ntables < UNMARSHAL_DEPTH_MAX + 1);
		t->depth++;
		t->tables[t->ntables++] = t->depth;
		break;
	case UNMARSHAL_SET:
		FUZZ_CHECK(t->ntables > 0 && t->depth >= base + 2);
		t->depth -= 2;
		break;
	case UNMARSHAL_FLUSH_N:
		FUZZ_CHECK(t->ntables > 0 && ev->n > 0 &&
			   ev->n <= UNMARSHAL_FLUSH && ev->first >= 1 &&
			   t->depth >= base + (int)ev->n);
		fuzz_unmarshal_mix(t, &ev->n, sizeof(ev->n));
		fuzz_unmarshal_mix(t, &ev->first, sizeof(ev->first));
		t->depth -= (int)ev->n;
		break;
	case UNMARSHAL_CLOSE:
		FUZZ_CHECK(t->ntables > 0 && t->depth == base);
		t->ntables--;
		break;
	default:
		FUZZ_CHECK(!"unknown event");
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_unmarshal_trace a = { 0 }, b = { 0 };
	struct unmarshal *u;
	char err[128];
	size_t cut, off = 0, piece;
	int na, nb;

	if (size == 0)
		return 0;
	cut = size > 1 ? data[0] % size : 0;
	piece = (size_t)(data[0] & 15) + 1;
	data++;
	size--;
	na = unmarshal_run(data, size, 1u << 20, fuzz_unmarshal_event, &a, err,
			   sizeof(err));
	if (na >= 0) {
		FUZZ_CHECK(a.ntables == 0 && a.depth == na);
		FUZZ_CHECK(na <= UNMARSHAL_VALUES_MAX);
	} else {
		FUZZ_CHECK(strstr(err, " at byte ") != NULL);
	}
	u = malloc(sizeof(*u));
	FUZZ_CHECK(u != NULL);
	unmarshal_init(u, 1u << 20, fuzz_unmarshal_event, &b);
	nb = 0;
	if (cut > 0 && cut < size) {
		nb = unmarshal_feed(u, data, cut);
		off = cut;
	}
	while (nb == 0 && off < size) {
		size_t k = size - off < piece ? size - off : piece;

		nb = unmarshal_feed(u, data + off, k);
		off += k;
	}
	if (nb == 0)
		nb = unmarshal_end(u);
	FUZZ_CHECK(nb == na && b.hash == a.hash && b.depth == a.depth);
	if (na < 0)
		FUZZ_CHECK(strcmp(u->err, err) == 0);
	unmarshal_free(u);
	free(u);
	return 0;
}
