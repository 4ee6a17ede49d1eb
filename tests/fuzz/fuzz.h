/* Shared by the fuzz targets (tests/fuzz/fuzz_*.c). Each target defines
 * LLVMFuzzerTestOneInput (and may define LLVMFuzzerInitialize); built with
 * clang -fsanitize=fuzzer it runs under libFuzzer (make fuzz), built with
 * replay.c it replays a corpus (make check). A target checks properties of
 * what it parses, not only that nothing crashes: FUZZ_CHECK aborts, so the
 * input is kept as a crash. */
#ifndef NEOSOCKSD_FUZZ_H
#define NEOSOCKSD_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                  \
	do {                                                              \
		if (!(cond)) {                                            \
			fprintf(stderr, "%s:%d: check failed: %s\n",      \
				__FILE__, __LINE__, #cond);               \
			abort();                                          \
		}                                                         \
	} while (0)

/* The input as a stream of choices and byte strings. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t fuzz_byte(struct fuzz_in *in)
{
	uint8_t b;

	if (in->n == 0)
		return 0;
	b = *in->p++;
	in->n--;
	return b;
}

/* Up to max bytes (a length byte first): a pointer into the input. */
static inline const uint8_t *fuzz_bytes(struct fuzz_in *in, size_t max,
					size_t *len)
{
	const uint8_t *p;
	size_t n = fuzz_byte(in);

	if (max < 255)
		n %= max + 1;
	if (n > in->n)
		n = in->n;
	p = in->p;
	in->p += n;
	in->n -= n;
	*len = n;
	return p;
}

/* A NUL-terminated copy of up to cap - 1 input bytes, cut at a NUL. */
static inline size_t fuzz_str(struct fuzz_in *in, char *out, size_t cap)
{
	size_t n;
	const uint8_t *p = fuzz_bytes(in, cap - 1, &n);

	memcpy(out, p, n);
	out[n] = '\0';
	return strlen(out);
}

#endif
