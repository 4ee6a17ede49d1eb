/* ruleset: the jailed Lua process. */
#ifndef NEOSOCKSD_RULESET_H
#define NEOSOCKSD_RULESET_H

int ruleset_main(void);

#endif
