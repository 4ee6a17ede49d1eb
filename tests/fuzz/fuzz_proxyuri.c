/* Fuzz target: proxy URIs and chains (src/common/proxyuri.c), with the
 * address parser they use.
 *
 * A URI that parses is formatted again (the log form: user kept, password
 * never) and parsed back: the same scheme, address, port and user; the
 * formatted text never holds the password. A chain that parses has as
 * many hops as elements, each one as the URI alone would give. */
#include "fuzz.h"

#include "common/proxyuri.h"

static void fuzz_proxyuri_one(const struct proxy_hop *hop)
{
	struct proxy_hop back;
	const char *err = NULL;
	char text[PROXYURI_MAX + 1];
	int len;

	FUZZ_CHECK(hop->scheme >= PROXY_SOCKS4A && hop->scheme <= PROXY_SOCKS4);
	FUZZ_CHECK(proxyuri_scheme_name(hop->scheme) != NULL);
	FUZZ_CHECK(strlen(hop->user) <= PROXY_CRED_MAX &&
		   strlen(hop->pass) <= PROXY_CRED_MAX);
	len = proxyuri_format(hop, text, sizeof(text));
	FUZZ_CHECK(len > 0 && (size_t)len == strlen(text));
	{
		/* userinfo "user", never "user:pass" */
		const char *ui = strstr(text, "://"), *at = strchr(text, '@');

		FUZZ_CHECK(ui != NULL);
		FUZZ_CHECK((at != NULL) == (bool)hop->has_user);
		if (at != NULL)
			FUZZ_CHECK(memchr(ui + 3, ':', (size_t)(at - ui - 3)) ==
				   NULL);
	}
	FUZZ_CHECK(proxyuri_parse(&back, text, (size_t)len, &err) == 0);
	FUZZ_CHECK(back.scheme == hop->scheme);
	FUZZ_CHECK(addr_equal(&back.addr, &hop->addr));
	FUZZ_CHECK(back.has_user == hop->has_user);
	if (hop->has_user)
		FUZZ_CHECK(strcmp(back.user, hop->user) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *err = NULL;
	struct proxy_hop *hops = calloc(PROXYCHAIN_MAX, sizeof(*hops));
	size_t nhops = 0, start = 0, k = 0;

	FUZZ_CHECK(hops != NULL);
	if (proxyuri_parse(&hops[0], s, size, &err) == 0)
		fuzz_proxyuri_one(&hops[0]);
	else
		FUZZ_CHECK(err != NULL);
	err = NULL;
	if (proxyuri_parse_chain(hops, PROXYCHAIN_MAX, &nhops, s, size,
				 &err) == 0) {
		FUZZ_CHECK(nhops >= 1 && nhops <= PROXYCHAIN_MAX);
		for (size_t i = 0; i <= size; i++) {
			struct proxy_hop one;

			if (i < size && s[i] != ',')
				continue;
			FUZZ_CHECK(k < nhops);
			FUZZ_CHECK(proxyuri_parse(&one, s + start, i - start,
						  &err) == 0);
			FUZZ_CHECK(one.scheme == hops[k].scheme &&
				   addr_equal(&one.addr,
							   &hops[k].addr));
			fuzz_proxyuri_one(&hops[k]);
			k++;
			start = i + 1;
		}
		FUZZ_CHECK(k == nhops);
	} else {
		FUZZ_CHECK(err != NULL);
	}
	free(hops);
	return 0;
}
