/* main: role dispatch. The parent re-executes this binary for each child
 * with argv[0] set to "neosocksd: <role>", which is both the internal role
 * marker and the process title that ps shows. */
#include <string.h>

#include "front/front.h"
#include "privsep/parent.h"

int main(int argc, char **argv)
{
	if (argc == 1 && strcmp(argv[0], "neosocksd: front") == 0)
		return front_main();
	return parent_main(argc, argv);
}
