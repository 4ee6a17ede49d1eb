/* sha256: SHA-256 (FIPS 180-4), for telling which code a daemon runs
 * (ruleset_info in /stats, /metrics, /healthy). Pure. */
#ifndef NEOSOCKSD_SHA256_H
#define NEOSOCKSD_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32
#define SHA256_HEX (2 * SHA256_LEN + 1)

struct sha256 {
	uint32_t h[8];
	uint64_t total; /* bytes so far */
	uint8_t block[64];
	size_t fill;
};

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *data, size_t len);
void sha256_final(struct sha256 *c, uint8_t out[SHA256_LEN]);
/* The digest of data[0..len) in lower-case hex (SHA256_HEX bytes). */
void sha256_hex(const void *data, size_t len, char out[SHA256_HEX]);

#endif
