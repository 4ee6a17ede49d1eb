/* main: role dispatch. The parent re-executes this binary for each child
 * with NEOSOCKSD_ROLE=<role> in the environment (the internal role marker)
 * and argv[0] set to "neosocksd: <role>" (the process title ps shows). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front/front.h"
#include "privsep/parent.h"
#include "ruleset/ruleset_main.h"

int main(int argc, char **argv)
{
	const char *role = getenv("NEOSOCKSD_ROLE");

	if (role != NULL) {
		char r[16];

		snprintf(r, sizeof(r), "%s", role);
		unsetenv("NEOSOCKSD_ROLE");
		if (strcmp(r, "front") == 0)
			return front_main();
		if (strcmp(r, "ruleset") == 0)
			return ruleset_main();
		fprintf(stderr, "neosocksd: unknown internal role '%s'\n", r);
		return 2;
	}
	(void)argc;
	return parent_main(argc, argv);
}
