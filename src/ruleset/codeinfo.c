/* codeinfo: the sha256 and the applied time of the ruleset and of each
 * module, kept in a small sorted table. */
#include "ruleset/codeinfo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct {
	struct codeinfo e[CODEINFO_MAX];
	size_t n;
	struct codeinfo stash[CODEINFO_MAX];
	size_t nstash;
	bool stashed;
} codeinfo;

static int codeinfo_cmp(const void *a, const void *b)
{
	const struct codeinfo *x = a, *y = b;
	bool rx = strcmp(x->name, CODEINFO_RULESET) == 0;
	bool ry = strcmp(y->name, CODEINFO_RULESET) == 0;

	if (rx != ry)
		return rx ? -1 : 1;
	return strcmp(x->name, y->name);
}

void codeinfo_note(const char *name, const void *src, size_t len)
{
	char sha[SHA256_HEX];

	sha256_hex(src, len, sha);
	codeinfo_set(name, sha);
}

void codeinfo_set(const char *name, const char *sha256)
{
	struct timespec ts;
	struct codeinfo *e = NULL;

	if (name == NULL)
		name = CODEINFO_RULESET;
	if (strlen(name) > CODEINFO_NAME_MAX)
		return;
	for (size_t i = 0; i < codeinfo.n; i++)
		if (strcmp(codeinfo.e[i].name, name) == 0)
			e = &codeinfo.e[i];
	if (e == NULL) {
		if (codeinfo.n == CODEINFO_MAX)
			return;
		e = &codeinfo.e[codeinfo.n++];
		snprintf(e->name, sizeof(e->name), "%s", name);
	}
	memcpy(e->sha256, sha256, sizeof(e->sha256));
	clock_gettime(CLOCK_REALTIME, &ts);
	e->applied = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	qsort(codeinfo.e, codeinfo.n, sizeof(codeinfo.e[0]), codeinfo_cmp);
}

/* The reload reads the ruleset and its modules again: what it loads is
 * what runs after it, so the table starts empty. */
void codeinfo_stash(void)
{
	memcpy(codeinfo.stash, codeinfo.e, sizeof(codeinfo.e));
	codeinfo.nstash = codeinfo.n;
	codeinfo.n = 0;
	codeinfo.stashed = true;
}

void codeinfo_unstash(bool restore)
{
	if (codeinfo.stashed && restore) {
		memcpy(codeinfo.e, codeinfo.stash, sizeof(codeinfo.e));
		codeinfo.n = codeinfo.nstash;
	}
	codeinfo.stashed = false;
}

size_t codeinfo_list(const struct codeinfo **list)
{
	*list = codeinfo.e;
	return codeinfo.n;
}
