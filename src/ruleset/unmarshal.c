/* unmarshal: a data-only parser of the marshal grammar (see unmarshal.h).
 *
 * Two layers, both resumable byte by byte: a lexer (Lua's lexical rules
 * for the tokens the grammar has) turns bytes into tokens; a pushdown
 * automaton with an explicit stack of frames (the top level, tables,
 * numeric expressions and their parentheses) turns tokens into events.
 * Nothing recurses, so nesting costs a frame, not C stack. */
#include "ruleset/unmarshal.h"

#include "common/hexdigit.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* lexer states */
enum {
	LX_SPACE = 0,
	LX_NAME,
	LX_NUM,
	LX_NUM_SIGN, /* after an exponent mark: an optional sign */
	LX_MINUS,    /* '-': "--" would be a comment */
	LX_LBRACKET, /* '[': "[[" or "[=" would be a long string */
	LX_DOT,      /* '.': a numeral only if a digit follows */
	LX_STR,
	LX_ESC,      /* after '\' */
	LX_ESC_X,    /* \xXX */
	LX_ESC_DEC,  /* \ddd */
	LX_ESC_Z,    /* \z: skipping white space */
	LX_ESC_NL,   /* after '\' and a newline: its pair is skipped */
	LX_ESC_U0,   /* \u: '{' must follow */
	LX_ESC_U,    /* \u{XXX} */
};

/* tokens: punctuation is its own character */
enum { T_EOF = 256, T_NAME, T_NUMBER, T_STRING };

/* frames */
enum { FR_TOP = 1, FR_TABLE, FR_NUM, FR_PAREN };
enum { TOP_RETURN, TOP_FIRST, TOP_NEXT, TOP_VALUE, TOP_AFTER, TOP_SEMI };
enum { TB_FIELD, TB_ITEM, TB_KEY, TB_KEYEND, TB_EQ, TB_VALUE, TB_SEP };
enum { NUM_OPERAND, NUM_AFTER };

#define AGAIN 1 /* a step's result: hand the same input to the new state */
#define TWO_TO_63 9223372036854775808.0 /* integral floats in [-2^63, 2^63)
					 * are integer keys in Lua */

struct unmarshal_tok {
	int kind;
	bool is_int;
	int64_t i;
	double f;
};

/* A complete value, as far as its parent needs to know it. */
enum { V_NIL = 1, V_BOOL, V_NUM, V_STR, V_TABLE };
struct unmarshal_val {
	uint8_t kind;
	bool is_int;
	int64_t i;
	double f;
};

static const char *const unmarshal_reserved[] = {
	"and", "break", "do", "else", "elseif", "end", "false", "for",
	"function", "goto", "if", "in", "local", "nil", "not", "or",
	"repeat", "return", "then", "true", "until", "while",
};

static bool unmarshal_isspace(int c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

static bool unmarshal_isdigit(int c)
{
	return c >= '0' && c <= '9';
}

static bool unmarshal_isalpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int unmarshal_fail(struct unmarshal *u, size_t at, const char *fmt,
			  ...) __attribute__((format(printf, 3, 4)));

static int unmarshal_fail(struct unmarshal *u, size_t at, const char *fmt,
			  ...)
{
	char where[32];
	va_list ap;
	int n, w;

	if (u->failed)
		return -1;
	u->failed = true;
	w = snprintf(where, sizeof(where), " at byte %zu", at);
	va_start(ap, fmt);
	n = vsnprintf(u->err, sizeof(u->err) - sizeof(where), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(u->err) - sizeof(where))
		n = (int)(sizeof(u->err) - sizeof(where) - 1);
	memcpy(u->err + n, where, (size_t)w + 1);
	return -1;
}

/* Copy a message into a caller's buffer of cap bytes (cut if need be). */
static void unmarshal_copy(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (cap == 0)
		return;
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* A token for messages: punctuation and names are printable by
 * construction. */
static int unmarshal_unexpected(struct unmarshal *u,
				const struct unmarshal_tok *t)
{
	switch (t->kind) {
	case T_EOF:
		return unmarshal_fail(u, u->pos, "unexpected end of input");
	case T_NAME:
		return unmarshal_fail(u, u->tokpos, "unexpected name '%.*s'",
				      (int)u->toklen, u->tok);
	case T_NUMBER:
		return unmarshal_fail(u, u->tokpos, "unexpected number");
	case T_STRING:
		return unmarshal_fail(u, u->tokpos, "unexpected string");
	default:
		return unmarshal_fail(u, u->tokpos, "unexpected '%c'", t->kind);
	}
}

static int unmarshal_tokadd(struct unmarshal *u, const void *p, size_t n,
			    size_t max, const char *what)
{
	if (n > max || u->toklen > max - n)
		return unmarshal_fail(u, u->tokpos, "%s longer than %zu bytes",
				      what, max);
	if (u->toklen + n > u->tokcap) {
		size_t cap = u->tokcap ? u->tokcap : 64;
		char *np;

		while (cap < u->toklen + n)
			cap *= 2;
		if (cap > max)
			cap = max;
		np = realloc(u->tok, cap);
		if (np == NULL)
			return unmarshal_fail(u, u->pos, "out of memory");
		u->tok = np;
		u->tokcap = cap;
	}
	memcpy(u->tok + u->toklen, p, n);
	u->toklen += n;
	return 0;
}

static int unmarshal_strbyte(struct unmarshal *u, uint32_t c)
{
	char b = (char)(unsigned char)c;

	return unmarshal_tokadd(u, &b, 1, u->str_max, "a string");
}

/* \u{X}: Lua's extended UTF-8, up to 6 bytes for values < 2^31. */
static int unmarshal_utf8(struct unmarshal *u, uint32_t x)
{
	unsigned char b[6];
	int n;

	if (x < 0x80)
		return unmarshal_strbyte(u, x);
	n = x < 0x800 ? 2 : x < 0x10000 ? 3 : x < 0x200000 ? 4 :
	    x < 0x4000000 ? 5 : 6;
	for (int k = n - 1; k > 0; k--) {
		b[k] = (unsigned char)(0x80 | (x & 0x3f));
		x >>= 6;
	}
	b[0] = (unsigned char)((0xff00u >> n) | x);
	return unmarshal_tokadd(u, b, (size_t)n, u->str_max, "a string");
}

/* ---- events ---- */

static int unmarshal_emit(struct unmarshal *u, struct unmarshal_ev *ev)
{
	if (u->fn(u->ud, ev) < 0)
		return unmarshal_fail(u, u->tokpos, "stopped");
	return 0;
}

static int unmarshal_emit_kind(struct unmarshal *u, uint8_t kind)
{
	struct unmarshal_ev ev = { .kind = kind };

	return unmarshal_emit(u, &ev);
}

static int unmarshal_emit_num(struct unmarshal *u, bool is_int, int64_t i,
			      double f)
{
	struct unmarshal_ev ev = { .kind = is_int ? UNMARSHAL_INTEGER
						  : UNMARSHAL_FLOAT,
				   .i = i, .f = f };

	return unmarshal_emit(u, &ev);
}

static int unmarshal_flush(struct unmarshal *u, struct unmarshal_frame *fr)
{
	struct unmarshal_ev ev = { .kind = UNMARSHAL_FLUSH_N,
				   .n = fr->pending, .first = fr->stored + 1 };

	if (fr->pending == 0)
		return 0;
	fr->stored += fr->pending;
	fr->pending = 0;
	return unmarshal_emit(u, &ev);
}

/* ---- grammar ---- */

static struct unmarshal_frame *unmarshal_top(struct unmarshal *u)
{
	return &u->st[u->depth - 1];
}

static struct unmarshal_frame *unmarshal_push(struct unmarshal *u,
					      uint8_t kind, uint8_t state)
{
	struct unmarshal_frame *fr;

	if (u->depth >= UNMARSHAL_DEPTH_MAX + 1) {
		unmarshal_fail(u, u->tokpos, "nested deeper than %d",
			       UNMARSHAL_DEPTH_MAX);
		return NULL;
	}
	fr = &u->st[u->depth++];
	memset(fr, 0, sizeof(*fr));
	fr->kind = kind;
	fr->state = state;
	return fr;
}

/* A table key: nil and NaN are errors in Lua too; numbers far from a
 * table's dense range are counted (see UNMARSHAL_SPARSE_MAX). */
static int unmarshal_key(struct unmarshal *u, struct unmarshal_frame *fr,
			 const struct unmarshal_val *v)
{
	int64_t k;

	if (v->kind == V_NIL)
		return unmarshal_fail(u, u->tokpos, "table index is nil");
	if (v->kind != V_NUM)
		return 0;
	if (v->is_int) {
		k = v->i;
	} else if (isnan(v->f)) {
		return unmarshal_fail(u, u->tokpos, "table index is NaN");
	} else if (v->f >= -TWO_TO_63 && v->f < TWO_TO_63 &&
		   v->f == floor(v->f)) {
		k = (int64_t)v->f; /* Lua stores it as this integer */
	} else {
		k = 0; /* a fractional or huge float: never dense */
	}
	if (k >= 1 && (uint64_t)k <= 2 * fr->fields + 64)
		return 0;
	if (++u->sparse > UNMARSHAL_SPARSE_MAX)
		return unmarshal_fail(u, u->tokpos,
				      "more than %d sparse numeric keys",
				      UNMARSHAL_SPARSE_MAX);
	return 0;
}

/* A value is complete: its parent moves on. */
static int unmarshal_done(struct unmarshal *u, const struct unmarshal_val *v)
{
	struct unmarshal_frame *fr = unmarshal_top(u);

	if (fr->kind == FR_TOP && fr->state == TOP_VALUE) {
		if (++u->nvalues > UNMARSHAL_VALUES_MAX)
			return unmarshal_fail(u, u->tokpos,
					      "more than %d values",
					      UNMARSHAL_VALUES_MAX);
		fr->state = TOP_AFTER;
		return 0;
	}
	if (fr->kind == FR_TABLE && fr->state == TB_ITEM) {
		fr->pending++;
		fr->state = TB_SEP;
		return 0;
	}
	if (fr->kind == FR_TABLE && fr->state == TB_KEY) {
		fr->state = TB_KEYEND;
		return unmarshal_key(u, fr, v);
	}
	if (fr->kind == FR_TABLE && fr->state == TB_VALUE) {
		fr->state = TB_SEP;
		return unmarshal_emit_kind(u, UNMARSHAL_SET);
	}
	return unmarshal_fail(u, u->tokpos, "internal error");
}

static bool unmarshal_name_is(const struct unmarshal *u, const char *s)
{
	return u->toklen == strlen(s) && memcmp(u->tok, s, u->toklen) == 0;
}

static bool unmarshal_name_reserved(const struct unmarshal *u)
{
	for (size_t k = 0; k < sizeof(unmarshal_reserved) /
				       sizeof(unmarshal_reserved[0]); k++)
		if (unmarshal_name_is(u, unmarshal_reserved[k]))
			return true;
	return false;
}

/* The first token of a value, in a state that expects one. */
static int unmarshal_value(struct unmarshal *u, const struct unmarshal_tok *t)
{
	struct unmarshal_val v = { 0 };
	struct unmarshal_ev ev = { 0 };

	switch (t->kind) {
	case T_NAME:
		if (unmarshal_name_is(u, "nil")) {
			v.kind = V_NIL;
			ev.kind = UNMARSHAL_NIL;
		} else if (unmarshal_name_is(u, "true") ||
			   unmarshal_name_is(u, "false")) {
			v.kind = V_BOOL;
			ev.kind = UNMARSHAL_BOOLEAN;
			ev.b = u->tok[0] == 't';
		} else {
			return unmarshal_unexpected(u, t);
		}
		break;
	case T_STRING:
		v.kind = V_STR;
		ev.kind = UNMARSHAL_STRING;
		ev.s = u->tok;
		ev.len = u->toklen;
		break;
	case '{':
		if (unmarshal_push(u, FR_TABLE, TB_FIELD) == NULL)
			return -1;
		return unmarshal_emit_kind(u, UNMARSHAL_TABLE);
	case T_NUMBER:
	case '-':
	case '(':
		if (unmarshal_push(u, FR_NUM, NUM_OPERAND) == NULL)
			return -1;
		return AGAIN;
	default:
		return unmarshal_unexpected(u, t);
	}
	if (unmarshal_emit(u, &ev) < 0)
		return -1;
	return unmarshal_done(u, &v);
}

static int unmarshal_step_top(struct unmarshal *u, struct unmarshal_frame *fr,
			      const struct unmarshal_tok *t)
{
	switch (fr->state) {
	case TOP_RETURN:
		if (t->kind != T_NAME || !unmarshal_name_is(u, "return"))
			return unmarshal_fail(u, u->tokpos,
					      "an answer begins with 'return'");
		fr->state = TOP_FIRST;
		return 0;
	case TOP_FIRST:
	case TOP_AFTER:
		if (t->kind == T_EOF) {
			u->done = true;
			return 0;
		}
		if (t->kind == ';') {
			fr->state = TOP_SEMI;
			return 0;
		}
		if (fr->state == TOP_FIRST) {
			fr->state = TOP_VALUE;
			return unmarshal_value(u, t);
		}
		if (t->kind != ',')
			return unmarshal_unexpected(u, t);
		fr->state = TOP_NEXT;
		return 0;
	case TOP_NEXT:
		fr->state = TOP_VALUE;
		return unmarshal_value(u, t);
	case TOP_SEMI:
		if (t->kind != T_EOF)
			return unmarshal_unexpected(u, t);
		u->done = true;
		return 0;
	default:
		return unmarshal_unexpected(u, t);
	}
}

/* The table is complete: store what is pending, close, and it is a value
 * of its parent. */
static int unmarshal_close(struct unmarshal *u, struct unmarshal_frame *fr)
{
	static const struct unmarshal_val table = { .kind = V_TABLE };

	if (unmarshal_flush(u, fr) < 0 ||
	    unmarshal_emit_kind(u, UNMARSHAL_CLOSE) < 0)
		return -1;
	u->depth--;
	return unmarshal_done(u, &table);
}

static int unmarshal_field(struct unmarshal *u, struct unmarshal_frame *fr,
			   const struct unmarshal_tok *t)
{
	struct unmarshal_ev ev = { .kind = UNMARSHAL_STRING };

	if (t->kind == '}')
		return unmarshal_close(u, fr);
	/* a field begins: Lua stores a full batch of positional values
	 * here, before the field */
	fr->fields++;
	if (fr->pending == UNMARSHAL_FLUSH && unmarshal_flush(u, fr) < 0)
		return -1;
	if (t->kind == '[') {
		fr->state = TB_KEY;
		return 0;
	}
	if (t->kind == T_NAME && !unmarshal_name_is(u, "nil") &&
	    !unmarshal_name_is(u, "true") && !unmarshal_name_is(u, "false")) {
		if (unmarshal_name_reserved(u))
			return unmarshal_unexpected(u, t);
		/* name = value: the key is the name as a string */
		ev.s = u->tok;
		ev.len = u->toklen;
		fr->state = TB_EQ;
		return unmarshal_emit(u, &ev);
	}
	fr->state = TB_ITEM;
	return unmarshal_value(u, t);
}

static int unmarshal_step_table(struct unmarshal *u,
				struct unmarshal_frame *fr,
				const struct unmarshal_tok *t)
{
	switch (fr->state) {
	case TB_FIELD:
		return unmarshal_field(u, fr, t);
	case TB_KEY:
	case TB_VALUE:
		return unmarshal_value(u, t);
	case TB_KEYEND:
		if (t->kind != ']')
			return unmarshal_unexpected(u, t);
		fr->state = TB_EQ;
		return 0;
	case TB_EQ:
		if (t->kind != '=')
			return unmarshal_unexpected(u, t);
		fr->state = TB_VALUE;
		return 0;
	case TB_SEP:
		if (t->kind == '}')
			return unmarshal_close(u, fr);
		if (t->kind != ',' && t->kind != ';')
			return unmarshal_unexpected(u, t);
		fr->state = TB_FIELD;
		return 0;
	default:
		return unmarshal_unexpected(u, t);
	}
}

/* An operand of a numeric expression: unary minus, then the division. */
static void unmarshal_operand(struct unmarshal_frame *fr, bool is_int,
			      int64_t i, double f)
{
	if (fr->neg) {
		if (is_int)
			i = (int64_t)(0u - (uint64_t)i); /* wraps, as in Lua */
		else
			f = -f;
		fr->neg = false;
	}
	if (fr->has_lhs) {
		double a = fr->lhs_int ? (double)fr->lhs_i : fr->lhs_f;
		double b = is_int ? (double)i : f;

		f = a / b;
		is_int = false;
		fr->has_lhs = false;
		fr->divided = true;
	}
	fr->cur_int = is_int;
	fr->cur_i = is_int ? i : 0;
	fr->cur_f = is_int ? 0 : f;
	fr->state = NUM_AFTER;
}

/* The expression of this frame is complete. */
static int unmarshal_num_end(struct unmarshal *u, struct unmarshal_frame *fr)
{
	struct unmarshal_val v = { .kind = V_NUM, .is_int = fr->cur_int,
				   .i = fr->cur_i, .f = fr->cur_f };

	u->depth--;
	if (fr->kind == FR_PAREN) {
		unmarshal_operand(unmarshal_top(u), v.is_int, v.i, v.f);
		return 0;
	}
	if (unmarshal_emit_num(u, v.is_int, v.i, v.f) < 0)
		return -1;
	return unmarshal_done(u, &v);
}

static int unmarshal_step_num(struct unmarshal *u, struct unmarshal_frame *fr,
			      const struct unmarshal_tok *t)
{
	if (fr->state == NUM_OPERAND) {
		switch (t->kind) {
		case '-':
			fr->neg = !fr->neg;
			return 0;
		case '(':
			return unmarshal_push(u, FR_PAREN, NUM_OPERAND) ? 0
									: -1;
		case T_NUMBER:
			unmarshal_operand(fr, t->is_int, t->i, t->f);
			return 0;
		default:
			return unmarshal_fail(u, u->tokpos,
					      "a number expected");
		}
	}
	if (t->kind == '/') {
		if (fr->divided)
			return unmarshal_fail(u, u->tokpos,
					      "one '/' at most (use "
					      "parentheses)");
		fr->lhs_int = fr->cur_int;
		fr->lhs_i = fr->cur_i;
		fr->lhs_f = fr->cur_f;
		fr->has_lhs = true;
		fr->state = NUM_OPERAND;
		return 0;
	}
	if (fr->kind == FR_PAREN) {
		if (t->kind != ')')
			return unmarshal_fail(u, u->tokpos, "')' expected");
		return unmarshal_num_end(u, fr);
	}
	/* the token belongs to the enclosing frame */
	if (unmarshal_num_end(u, fr) < 0)
		return -1;
	return AGAIN;
}

static int unmarshal_token(struct unmarshal *u, const struct unmarshal_tok *t)
{
	int r;

	do {
		struct unmarshal_frame *fr = unmarshal_top(u);

		if (u->done)
			return unmarshal_fail(u, u->tokpos,
					      "data after the end");
		if (fr->kind == FR_TOP)
			r = unmarshal_step_top(u, fr, t);
		else if (fr->kind == FR_TABLE)
			r = unmarshal_step_table(u, fr, t);
		else
			r = unmarshal_step_num(u, fr, t);
	} while (r == AGAIN);
	return r;
}

static int unmarshal_punct(struct unmarshal *u, int c)
{
	struct unmarshal_tok t = { .kind = c };

	return unmarshal_token(u, &t);
}

/* ---- lexer ---- */

/* The numeral in tok is complete: Lua's conversion rules. */
static int unmarshal_numeral(struct unmarshal *u)
{
	char buf[UNMARSHAL_NUM_MAX + 1], *end;
	struct unmarshal_tok t = { .kind = T_NUMBER, .is_int = true };
	size_t k = u->hex ? 2 : 0;
	uint64_t a = 0;

	memcpy(buf, u->tok, u->toklen);
	buf[u->toklen] = '\0';
	if (k == u->toklen)
		t.is_int = false; /* "0x" alone: malformed below */
	for (; k < u->toklen && t.is_int; k++) {
		int d = u->hex ? hex_digit(buf[k])
			       : (unmarshal_isdigit(buf[k]) ? buf[k] - '0'
							    : -1);

		if (d < 0)
			t.is_int = false;
		else if (u->hex)
			a = a * 16 + (uint64_t)d; /* wraps, as in Lua */
		else if (a > ((uint64_t)INT64_MAX - (uint64_t)d) / 10)
			t.is_int = false; /* too big: a float */
		else
			a = a * 10 + (uint64_t)d;
	}
	if (t.is_int) {
		t.i = (int64_t)a;
	} else {
		t.f = strtod(buf, &end);
		if (end == buf || *end != '\0')
			return unmarshal_fail(u, u->tokpos, "malformed number");
	}
	u->lx = LX_SPACE;
	return unmarshal_token(u, &t);
}

static int unmarshal_name(struct unmarshal *u)
{
	struct unmarshal_tok t = { .kind = T_NAME };

	u->lx = LX_SPACE;
	return unmarshal_token(u, &t);
}

static int unmarshal_lex_space(struct unmarshal *u, int c)
{
	u->tokpos = u->pos;
	u->toklen = 0;
	if (unmarshal_isspace(c))
		return 0;
	if (unmarshal_isalpha(c)) {
		u->lx = LX_NAME;
		return AGAIN;
	}
	if (unmarshal_isdigit(c)) {
		u->lx = LX_NUM;
		u->hex = false;
		return AGAIN;
	}
	switch (c) {
	case '.':
		u->lx = LX_DOT;
		u->hex = false;
		return unmarshal_tokadd(u, ".", 1, UNMARSHAL_NUM_MAX,
					"a numeral");
	case '"':
	case '\'':
		u->lx = LX_STR;
		u->quote = (uint8_t)c;
		return 0;
	case '-':
		u->lx = LX_MINUS;
		return 0;
	case '[':
		u->lx = LX_LBRACKET;
		return 0;
	case '{': case '}': case ']': case '=': case ',': case ';':
	case '/': case '(': case ')':
		return unmarshal_punct(u, c);
	default:
		if (c > ' ' && c < 0x7f)
			return unmarshal_fail(u, u->pos, "unexpected '%c'", c);
		return unmarshal_fail(u, u->pos, "unexpected byte 0x%02x", c);
	}
}

static int unmarshal_lex_num(struct unmarshal *u, int c)
{
	char ch = (char)c;

	if (u->lx == LX_NUM_SIGN) {
		u->lx = LX_NUM;
		if (c == '+' || c == '-')
			return unmarshal_tokadd(u, &ch, 1, UNMARSHAL_NUM_MAX,
						"a numeral");
		return AGAIN;
	}
	if (u->toklen == 1 && u->tok[0] == '0' && !u->hex &&
	    (c == 'x' || c == 'X')) {
		u->hex = true;
	} else if (u->hex ? (c == 'p' || c == 'P') : (c == 'e' || c == 'E')) {
		u->lx = LX_NUM_SIGN;
	} else if (hex_digit((char)c) < 0 && c != '.') {
		if (unmarshal_isalpha(c))
			return unmarshal_fail(u, u->tokpos,
					      "malformed number");
		if (unmarshal_numeral(u) < 0)
			return -1;
		return AGAIN;
	}
	return unmarshal_tokadd(u, &ch, 1, UNMARSHAL_NUM_MAX, "a numeral");
}

static int unmarshal_lex_esc(struct unmarshal *u, int c)
{
	static const char from[] = "abfnrtv\\\"'", to[] = "\a\b\f\n\r\t\v\\\"'";
	const char *p = c != 0 ? strchr(from, c) : NULL;

	u->lx = LX_STR;
	if (p != NULL)
		return unmarshal_strbyte(u, (unsigned char)to[p - from]);
	u->esc = 0;
	u->escn = 0;
	switch (c) {
	case 'x':
		u->lx = LX_ESC_X;
		return 0;
	case 'z':
		u->lx = LX_ESC_Z;
		return 0;
	case 'u':
		u->lx = LX_ESC_U0;
		return 0;
	case '\n':
	case '\r':
		u->lx = LX_ESC_NL;
		u->esc = (uint32_t)c;
		return unmarshal_strbyte(u, '\n');
	default:
		if (!unmarshal_isdigit(c))
			return unmarshal_fail(u, u->pos,
					      "invalid escape sequence");
		u->lx = LX_ESC_DEC;
		return AGAIN;
	}
}

/* \ddd ends after three digits or at the first other byte. */
static int unmarshal_lex_dec(struct unmarshal *u, int c)
{
	if (u->escn < 3 && unmarshal_isdigit(c)) {
		u->esc = u->esc * 10 + (uint32_t)(c - '0');
		if (++u->escn < 3)
			return 0;
		c = -1; /* consumed: finish now */
	}
	if (u->esc > 255)
		return unmarshal_fail(u, u->pos, "decimal escape too large");
	u->lx = LX_STR;
	if (unmarshal_strbyte(u, u->esc) < 0)
		return -1;
	return c < 0 ? 0 : AGAIN;
}

static int unmarshal_lex_u(struct unmarshal *u, int c)
{
	int d = hex_digit((char)c);

	if (u->lx == LX_ESC_U0) {
		if (c != '{')
			return unmarshal_fail(u, u->pos,
					      "missing '{' in \\u{xxxx}");
		u->lx = LX_ESC_U;
		return 0;
	}
	if (d >= 0) {
		if (u->escn > 0 && u->esc > (0x7FFFFFFFu >> 4))
			return unmarshal_fail(u, u->pos,
					      "UTF-8 value too large");
		u->esc = (u->esc << 4) + (uint32_t)d;
		u->escn = 1;
		return 0;
	}
	if (u->escn == 0)
		return unmarshal_fail(u, u->pos,
				      "hexadecimal digit expected");
	if (c != '}')
		return unmarshal_fail(u, u->pos, "missing '}' in \\u{xxxx}");
	u->lx = LX_STR;
	return unmarshal_utf8(u, u->esc);
}

static int unmarshal_lex_str(struct unmarshal *u, int c)
{
	struct unmarshal_tok t = { .kind = T_STRING };
	int d;

	switch (u->lx) {
	case LX_ESC:
		return unmarshal_lex_esc(u, c);
	case LX_ESC_X:
		d = hex_digit((char)c);
		if (d < 0)
			return unmarshal_fail(u, u->pos,
					      "hexadecimal digit expected");
		u->esc = u->esc * 16 + (uint32_t)d;
		if (++u->escn < 2)
			return 0;
		u->lx = LX_STR;
		return unmarshal_strbyte(u, u->esc);
	case LX_ESC_DEC:
		return unmarshal_lex_dec(u, c);
	case LX_ESC_Z:
		if (unmarshal_isspace(c))
			return 0;
		u->lx = LX_STR;
		return AGAIN;
	case LX_ESC_NL:
		u->lx = LX_STR;
		if ((c == '\n' || c == '\r') && (uint32_t)c != u->esc)
			return 0; /* "\r\n" and "\n\r" are one newline */
		return AGAIN;
	case LX_ESC_U0:
	case LX_ESC_U:
		return unmarshal_lex_u(u, c);
	default:
		break;
	}
	if (c == u->quote) {
		u->lx = LX_SPACE;
		return unmarshal_token(u, &t);
	}
	if (c == '\n' || c == '\r')
		return unmarshal_fail(u, u->tokpos, "unfinished string");
	if (c == '\\') {
		u->lx = LX_ESC;
		return 0;
	}
	return unmarshal_strbyte(u, (uint32_t)c);
}

/* One byte; c < 0 is the end of the input. */
static int unmarshal_lex(struct unmarshal *u, int c)
{
	char ch = (char)c;

	switch (u->lx) {
	case LX_SPACE:
		if (c < 0) {
			u->tokpos = u->pos;
			return unmarshal_punct(u, T_EOF);
		}
		return unmarshal_lex_space(u, c);
	case LX_NAME:
		if (c >= 0 && (unmarshal_isalpha(c) || unmarshal_isdigit(c)))
			return unmarshal_tokadd(u, &ch, 1, UNMARSHAL_NAME_MAX,
						"a name");
		if (unmarshal_name(u) < 0)
			return -1;
		return AGAIN;
	case LX_NUM:
	case LX_NUM_SIGN:
		if (c < 0) {
			if (unmarshal_numeral(u) < 0)
				return -1;
			return AGAIN;
		}
		return unmarshal_lex_num(u, c);
	case LX_MINUS:
	case LX_LBRACKET:
		if (c == '-' && u->lx == LX_MINUS)
			return unmarshal_fail(u, u->pos,
					      "comments are not data");
		if ((c == '[' || c == '=') && u->lx == LX_LBRACKET)
			return unmarshal_fail(u, u->pos,
					      "long strings are not data");
		ch = u->lx == LX_MINUS ? '-' : '[';
		u->lx = LX_SPACE;
		if (unmarshal_punct(u, ch) < 0)
			return -1;
		return AGAIN;
	case LX_DOT:
		if (c < 0 || !unmarshal_isdigit(c))
			return unmarshal_fail(u, u->tokpos, "unexpected '.'");
		u->lx = LX_NUM;
		return AGAIN;
	default:
		if (c < 0)
			return unmarshal_fail(u, u->tokpos,
					      "unfinished string");
		return unmarshal_lex_str(u, c);
	}
}

static int unmarshal_byte(struct unmarshal *u, int c)
{
	int r;

	do
		r = unmarshal_lex(u, c);
	while (r == AGAIN);
	return r;
}

/* ---- the interface ---- */

void unmarshal_init(struct unmarshal *u, size_t str_max, unmarshal_fn fn,
		    void *ud)
{
	memset(u, 0, sizeof(*u));
	u->fn = fn;
	u->ud = ud;
	u->str_max = str_max;
	u->depth = 1;
	u->st[0].kind = FR_TOP;
	u->st[0].state = TOP_RETURN;
}

void unmarshal_free(struct unmarshal *u)
{
	free(u->tok);
	u->tok = NULL;
	u->tokcap = u->toklen = 0;
}

int unmarshal_feed(struct unmarshal *u, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	for (size_t k = 0; k < len; k++) {
		if (u->failed || unmarshal_byte(u, p[k]) < 0)
			return -1;
		u->pos++;
	}
	return u->failed ? -1 : 0;
}

int unmarshal_end(struct unmarshal *u)
{
	if (u->failed || unmarshal_byte(u, -1) < 0)
		return -1;
	if (!u->done)
		return unmarshal_fail(u, u->pos, "unexpected end of input");
	return (int)u->nvalues;
}

int unmarshal_run(const void *buf, size_t len, size_t str_max,
		  unmarshal_fn fn, void *ud, char *err, size_t errcap)
{
	struct unmarshal *u = malloc(sizeof(*u));
	int n;

	if (u == NULL) {
		unmarshal_copy(err, errcap, "out of memory");
		return -1;
	}
	unmarshal_init(u, str_max, fn, ud);
	n = unmarshal_feed(u, buf, len);
	if (n == 0)
		n = unmarshal_end(u);
	if (n < 0)
		unmarshal_copy(err, errcap, u->err);
	unmarshal_free(u);
	free(u);
	return n;
}
