/* vm: the ruleset process's Lua 5.4 state. A counting allocator with a
 * hard cap, a safe standard library, text chunks only. */
#ifndef NEOSOCKSD_VM_H
#define NEOSOCKSD_VM_H

#include <stdbool.h>
#include <stddef.h>

#include <lua.h>

/* memlimit: bytes the Lua heap may hold (0: the default). 0 or -1. */
int vm_init(size_t memlimit);
void vm_close(void);
lua_State *vm_state(void);
size_t vm_memory(void);
size_t vm_memlimit(void);

/* Load a ruleset: compile src as a text chunk (a UTF-8 BOM and a "#!"
 * first line are skipped; bytecode is refused), call it with "ruleset",
 * and if it returns a table make it _G.ruleset. On any error the previous
 * ruleset stays and err holds "chunk:line: message". 0 or -1. */
int vm_load_ruleset(const char *src, size_t len, const char *chunkname,
		    char *err, size_t errcap);
bool vm_has_ruleset(void);

#endif
