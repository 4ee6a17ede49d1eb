/* Fuzz target: the address parsers (src/common/addr.c).
 *
 * Flag byte: which default port addr_parse gets. "host:port" that parses
 * is formatted and parsed back to the same address (encode then decode);
 * an IP address also goes to a sockaddr and back, and is classified. A
 * listen address that parses is formatted from its sockaddr and parsed
 * back to the same sockaddr. A CIDR that parses has a prefix length within
 * its family's. */
#include "fuzz.h"

#include <netinet/in.h>

#include "common/addr.h"

static void fuzz_addr_netaddr(const struct netaddr *a)
{
	struct netaddr back;
	struct sockaddr_storage ss;
	char text[ADDR_STRLEN + 1], host[ADDR_STRLEN + 1];
	int len, hlen;

	FUZZ_CHECK(a->type == ADDR_IPV4 || a->type == ADDR_IPV6 ||
		   a->type == ADDR_DOMAIN);
	if (a->type == ADDR_DOMAIN)
		FUZZ_CHECK(a->namelen > 0 && strlen(a->u.name) == a->namelen);
	len = addr_format(a, text, sizeof(text));
	FUZZ_CHECK(len > 0 && (size_t)len == strlen(text));
	FUZZ_CHECK(addr_parse(&back, text, (size_t)len, -1) == 0);
	FUZZ_CHECK(addr_equal(a, &back));
	hlen = addr_format_host(a, host, sizeof(host));
	FUZZ_CHECK(hlen > 0 && hlen < len);
	FUZZ_CHECK(addr_set_host(&back, host, (size_t)hlen, a->port) == 0);
	FUZZ_CHECK(addr_equal(a, &back));
	if (a->type == ADDR_DOMAIN) {
		FUZZ_CHECK(addr_to_sockaddr(a, &ss) < 0);
		return;
	}
	FUZZ_CHECK(addr_to_sockaddr(a, &ss) > 0);
	FUZZ_CHECK(addr_from_sockaddr(&back, (struct sockaddr *)&ss) == 0);
	FUZZ_CHECK(addr_equal(a, &back));
	FUZZ_CHECK(addr_class_name(addr_classify((struct sockaddr *)&ss)) !=
		   NULL);
}

static void fuzz_addr_listen(const char *s)
{
	struct sockaddr_storage ss, back;
	char text[ADDR_STRLEN + 1];
	int len = addr_parse_listen(s, &ss), len2;

	if (len < 0)
		return;
	FUZZ_CHECK(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
	FUZZ_CHECK(addr_format_sockaddr((struct sockaddr *)&ss, text,
					sizeof(text)) > 0);
	len2 = addr_parse_listen(text, &back);
	FUZZ_CHECK(len2 == len && memcmp(&ss, &back, (size_t)len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s;
	char host[ADDR_STRLEN + 1], port[8], *z;
	struct netaddr a;
	uint8_t net[16];
	int family, bits, def;
	uint16_t p16;

	if (size == 0)
		return 0;
	def = data[0] & 1 ? -1 : (int)data[0] * 257;
	s = (const char *)data + 1;
	size--;
	if (addr_splithostport(s, size, host, sizeof(host), port,
			       sizeof(port)) == 0)
		FUZZ_CHECK(strlen(host) < sizeof(host) &&
			   strlen(port) < sizeof(port));
	if (addr_parse_port(s, size, &p16) == 0)
		FUZZ_CHECK(size > 0 && size <= 5);
	if (addr_parse(&a, s, size, def) == 0)
		fuzz_addr_netaddr(&a);
	if (addr_set_host(&a, s, size, 80) == 0)
		fuzz_addr_netaddr(&a);
	if (addr_parse_cidr(s, size, &family, net, &bits) == 0)
		FUZZ_CHECK((family == AF_INET && bits >= 0 && bits <= 32) ||
			   (family == AF_INET6 && bits >= 0 && bits <= 128));
	z = malloc(size + 1);
	FUZZ_CHECK(z != NULL);
	memcpy(z, s, size);
	z[size] = '\0';
	fuzz_addr_listen(z);
	free(z);
	return 0;
}
