/* base64 (RFC 4648, standard alphabet, with padding). Pure. */
#ifndef NEOSOCKSD_BASE64_H
#define NEOSOCKSD_BASE64_H

#include <stddef.h>

/* Encoded length for n input bytes, NUL excluded. */
#define BASE64_ENCLEN(n) ((((n) + 2) / 3) * 4)

/* Encode n bytes; writes a NUL. Returns the length, or -1 if cap is too
 * small. */
int base64_encode(char *out, size_t cap, const void *in, size_t n);

/* Decode; padding required, no whitespace. Returns the decoded length, or
 * -1 on malformed input or if cap is too small. */
int base64_decode(void *out, size_t cap, const char *in, size_t n);

#endif
