/* Fuzz target: the RPC answer parser against Lua itself. Whatever the
 * data-only parser accepts (src/ruleset/unmarshal.c with the builder in
 * unmarshal_lua.c), Lua's own loader must accept too and produce the same
 * values, type for type: the parser is a strict subset of Lua that reads
 * data exactly as the reference's loader would. (Lua may refuse for its
 * implementation limits, register or nesting counts, that the parser does
 * not share; nothing else.) */
#include "fuzz_lua.h"

#include "ruleset/unmarshal_lua.h"

static bool fuzz_unmarshal_lua_limit(const char *why)
{
	return strstr(why, "too many registers") != NULL ||
	       strstr(why, "C levels") != NULL ||
	       strstr(why, "stack overflow") != NULL ||
	       strstr(why, "not enough memory") != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lua_State *L = fuzz_lua_state(); /* per input: nothing carries over */
	int n;
	const char *why = NULL;

	n = unmarshal_lua(L, (const char *)data, size, 1u << 20);
	if (n < 0) {
		FUZZ_CHECK(lua_isstring(L, -1));
		lua_close(L);
		return 0;
	}
	fuzz_lua_pack(L, n);
	if (!fuzz_lua_load_packed(L, (const char *)data, size, &why)) {
		if (!fuzz_unmarshal_lua_limit(why)) {
			fprintf(stderr, "accepted, but Lua says: %s\n", why);
			abort();
		}
		lua_close(L);
		return 0;
	}
	FUZZ_CHECK(fuzz_lua_same(L));
	lua_close(L);
	return 0;
}
