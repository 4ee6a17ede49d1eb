/* unmarshal: a data-only parser of the marshal grammar, for RPC answers.
 *
 * A peer answers an RPC call with Lua source, "return true,<values>"
 * (docs/api.md, RPC wire format). Loading that text as a chunk would run
 * a peer's code; this parser reads it as data and never runs anything. It
 * accepts what our marshal and the reference's write, and is a strict
 * subset of Lua: whatever it accepts means exactly what Lua would make of
 * the same text (the fuzz target unmarshal_lua checks that claim).
 *
 *   answer  := "return" [ value { "," value } ] [ ";" ]
 *   value   := "nil" | "true" | "false" | string | number | table
 *   number  := numeral, with unary '-', parentheses and at most one '/'
 *              per level: "-0x1.cp+1", "-0.0", "1e9999", "0/0", "-1/0",
 *              "(0/0)", "0x8000000000000000" (wraps, as in Lua)
 *   string  := '"' or '\'' quoted, with every escape Lua has: \a \b \f
 *              \n \r \t \v \\ \" \' \<newline> \x.. \z \ddd \u{...}
 *   table   := "{" [ field { ("," | ";") field } [ "," | ";" ] ] "}"
 *   field   := value | "[" value "]" "=" value | name "=" value
 *
 * Anything else (other names, operators, calls, long strings, comments) is
 * an error. Numerals follow Lua's rules: decimal integers that overflow
 * become floats, hexadecimal ones wrap, '/' is a float division.
 *
 * Pure C: no Lua, no sockets. The parser is a push parser over bytes with
 * a caller-owned state: input may arrive in any pieces. It reports values
 * as events to a callback (a stack machine, see enum unmarshal_ev_kind),
 * in the order Lua's own code would store them, so a table constructor
 * with repeated keys ends up with the same contents. Bounds: nesting
 * (tables and parentheses) UNMARSHAL_DEPTH_MAX, top-level values
 * UNMARSHAL_VALUES_MAX, a decoded string str_max bytes (init), and
 * UNMARSHAL_SPARSE_MAX numeric keys outside a table's dense range per
 * input (Lua hashes integers by value, so many crafted ones make building
 * the tables quadratic). */
#ifndef NEOSOCKSD_UNMARSHAL_H
#define NEOSOCKSD_UNMARSHAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UNMARSHAL_DEPTH_MAX 200
#define UNMARSHAL_VALUES_MAX 250 /* Lua cannot return many more either */
#define UNMARSHAL_SPARSE_MAX 8192
#define UNMARSHAL_NAME_MAX 64    /* a name key */
#define UNMARSHAL_NUM_MAX 128    /* a numeral's characters */
#define UNMARSHAL_FLUSH 50       /* Lua's LFIELDS_PER_FLUSH */

enum unmarshal_ev_kind {
	/* a value: push it */
	UNMARSHAL_NIL = 1,
	UNMARSHAL_BOOLEAN, /* ev.b */
	UNMARSHAL_INTEGER, /* ev.i */
	UNMARSHAL_FLOAT,   /* ev.f */
	UNMARSHAL_STRING,  /* ev.s, ev.len: valid during the call only */
	UNMARSHAL_TABLE,   /* a new empty table: push it; the fields that
			    * follow go to it until its UNMARSHAL_CLOSE */
	/* pop a value, then a key, and set table[key] = value */
	UNMARSHAL_SET,
	/* pop ev.n values and set table[ev.first + k] = k-th of them (the
	 * deepest is k = 0) */
	UNMARSHAL_FLUSH_N,
	/* the table is complete; it stays pushed as a value of its parent */
	UNMARSHAL_CLOSE,
};

struct unmarshal_ev {
	uint8_t kind; /* enum unmarshal_ev_kind */
	bool b;
	int64_t i;
	double f;
	const char *s;
	size_t len;
	uint32_t n;
	int64_t first;
};

/* Return 0 to go on, -1 to stop (the parse then fails with "stopped"). */
typedef int (*unmarshal_fn)(void *ud, const struct unmarshal_ev *ev);

struct unmarshal_frame {
	uint8_t kind, state;
	bool neg, has_lhs, divided;
	bool lhs_int, cur_int;
	uint8_t pending;     /* table: positional values not yet flushed */
	int64_t lhs_i, cur_i;
	double lhs_f, cur_f;
	int64_t stored;      /* table: positional values flushed so far */
	uint64_t fields;     /* table: fields so far */
};

struct unmarshal {
	unmarshal_fn fn;
	void *ud;
	size_t str_max;
	/* lexer */
	uint8_t lx, quote;
	bool hex;       /* the numeral began with 0x */
	uint32_t esc;   /* escape value being read */
	uint8_t escn;   /* its digits so far */
	char *tok;      /* name, numeral or decoded string */
	size_t toklen, tokcap;
	size_t pos;     /* bytes fed so far */
	size_t tokpos;  /* where the current token began */
	/* grammar */
	struct unmarshal_frame st[UNMARSHAL_DEPTH_MAX + 2];
	unsigned depth; /* frames in st */
	unsigned nvalues;
	unsigned sparse;
	bool failed, done;
	char err[128];
};

/* Set up u; events go to fn(ud, ...). A decoded string longer than
 * str_max bytes is an error. unmarshal_free releases what feeding
 * allocated (the token buffer), whatever the outcome. */
void unmarshal_init(struct unmarshal *u, size_t str_max, unmarshal_fn fn,
		    void *ud);
void unmarshal_free(struct unmarshal *u);

/* Feed the next len bytes. 0: consumed, more may follow; -1: the input is
 * not an answer (u->err says why and where; the state is then spent). */
int unmarshal_feed(struct unmarshal *u, const void *buf, size_t len);

/* The input ended: how many top-level values it returned (0 or more; they
 * are the values the events left pushed), or -1 with u->err. */
int unmarshal_end(struct unmarshal *u);

/* The whole input at once: init, feed, end and free. The values' count
 * or -1 with the reason in err (if errcap > 0). */
int unmarshal_run(const void *buf, size_t len, size_t str_max,
		  unmarshal_fn fn, void *ud, char *err, size_t errcap);

#endif
