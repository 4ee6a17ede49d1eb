/* parent_ruleset: the parent's end of the ruleset process's channel. */
#ifndef NEOSOCKSD_PARENT_RULESET_H
#define NEOSOCKSD_PARENT_RULESET_H

void parent_ruleset_init(void);
/* SIGHUP: read the -r/-c file again and try it. */
void parent_ruleset_reload(void);

#endif
