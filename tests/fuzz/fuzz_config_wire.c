/* Fuzz target: the configuration as it travels to the children
 * (src/common/config.c): config_validate_wire on what a peer sent, then,
 * for a struct it accepts, everything a receiver does with it: the full
 * config_check (addresses, proxy URIs, API rules) and --dump-config.
 *
 * The input is laid over a default configuration (its size field kept
 * right, so that the string, number and range checks are reached), and is
 * also validated as it is, whatever its length. */
#include "fuzz.h"

#include <math.h>

#include "common/config.h"

/* Every string setting is terminated within its field (from the settings
 * table, so a new setting is covered as it is added). */
static bool fuzz_config_strings_ok(const struct config *c)
{
	for (size_t i = 0; i < config_nsettings; i++) {
		const struct config_setting *s = &config_settings[i];

		if (s->type == CONF_T_STR &&
		    memchr((const char *)c + s->off, '\0', s->cap) == NULL)
			return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *c = malloc(sizeof(*c));
	char err[512], *text = NULL;
	size_t textlen = 0;
	FILE *f;

	FUZZ_CHECK(c != NULL);
	/* as received: any length */
	if (size == sizeof(*c)) {
		memcpy(c, data, size);
		(void)config_validate_wire(c, size);
	}
	config_defaults(c);
	memcpy(c, data, size < sizeof(*c) ? size : sizeof(*c));
	c->size = sizeof(*c);
	if (config_validate_wire(c, sizeof(*c)) != 0) {
		free(c);
		return 0;
	}
	FUZZ_CHECK(fuzz_config_strings_ok(c));
	FUZZ_CHECK(isfinite(c->timeout) && isfinite(c->api_timeout));
	err[0] = '\0';
	if (config_check(c, err, sizeof(err)) != 0)
		FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)));
	f = open_memstream(&text, &textlen);
	FUZZ_CHECK(f != NULL);
	config_dump(c, f);
	fclose(f);
	FUZZ_CHECK(textlen > 0 && strncmp(text, "return {\n", 9) == 0);
	free(text);
	free(c);
	return 0;
}
