/* manopts: print every option of --help (cli_help_entry(), from
 * src/common/settings.def) as scdoc markup, for the OPTIONS section of
 * neosocksd(8). Built and run by `make man`; not part of the daemon. */
#include <stdio.h>
#include <string.h>

#include "privsep/cli.h"

/* scdoc's markup characters, escaped */
static void manopts_text(const char *s, size_t n)
{
	for (size_t i = 0; i < n && s[i] != '\0'; i++) {
		if (s[i] == '*' || s[i] == '_' || s[i] == '\\')
			putchar('\\');
		putchar(s[i]);
	}
}

static void manopts_label(const struct cli_help *h)
{
	const char *p = h->label, *meta = h->meta;

	if (h->sname == NULL && h->lname == NULL) {
		/* a line of its own ("-4, -6"): every name in bold */
		while (*p != '\0') {
			size_t n = strcspn(p, ", ");

			printf("*");
			manopts_text(p, n);
			printf("*");
			p += n;
			n = strspn(p, ", ");
			fwrite(p, 1, n, stdout);
			p += n;
		}
		return;
	}
	if (h->sname != NULL)
		printf("*%s*%s", h->sname, h->lname != NULL ? ", " : "");
	if (h->lname != NULL)
		printf("*%s*", h->lname);
	if (meta == NULL)
		return;
	if (meta[0] == '[') {
		printf(" [_");
		manopts_text(meta + 1, strlen(meta) - 2);
		printf("_]");
	} else {
		printf(" _");
		manopts_text(meta, strlen(meta));
		printf("_");
	}
}

int main(void)
{
	struct cli_help h;

	for (size_t i = 0; cli_help_entry(i, &h) == 0; i++) {
		const char *t = h.help;

		manopts_label(&h);
		printf("\n\t");
		/* --help's lines joined into one paragraph */
		while (*t != '\0') {
			size_t n = strcspn(t, "\n");

			manopts_text(t, n);
			t += n;
			if (*t == '\n') {
				putchar(' ');
				t++;
			}
		}
		printf("\n\n");
	}
	return 0;
}
