/* cli: command-line parsing into a struct config. The options and the
 * --help text are the rows of common/settings.def. */
#ifndef NEOSOCKSD_CLI_H
#define NEOSOCKSD_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "common/config.h"

enum cli_log_sink {
	CLI_LOG_STDERR = 0,
	CLI_LOG_STDOUT,
	CLI_LOG_SYSLOG,
	CLI_LOG_DISCARD,
};

struct cli {
	bool help, version, dump_config, check;
	/* given on the command line (else derived from RLIMIT_NOFILE) */
	bool max_sessions_given, startups_given;
	int log_sink; /* enum cli_log_sink */
	bool log_given; /* --log was given (-d then keeps that sink) */
};

/* Parse argv into c (which holds the defaults). Returns 0, or -1 with a
 * message in err that names the flag. */
int cli_parse(int argc, char **argv, struct config *c, struct cli *cl,
	      char *err, size_t errcap);

void cli_usage(FILE *f, const char *argv0);

/* The i-th entry of --help, in order (for a man page's option list too):
 * its options ("-l", "--listen"; either may be NULL), value ("ADDR",
 * "[ADDR]" when optional, or NULL), the label --help prints ("-l, --listen
 * ADDR") and the text ('\n' separates its lines). 0, or -1 past the end. */
struct cli_help {
	const char *sname, *lname, *meta, *help;
	char label[64];
};
int cli_help_entry(size_t i, struct cli_help *h);

/* Parse "[user][:[group]]" as -u takes it and check that the names exist.
 * uid/gid are set to (uid_t)-1 / (gid_t)-1 when not given; "user:" takes
 * the user's primary group. 0 or -1 (err filled). */
int cli_parse_user(const char *spec, unsigned *uid, unsigned *gid, char *err,
		   size_t errcap);

#endif
