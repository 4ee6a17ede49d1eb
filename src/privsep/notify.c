#include "privsep/notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/monotime.h"

static struct sockaddr_un notify_addr;
static socklen_t notify_len;

void notify_init(void)
{
	const char *p = getenv("NOTIFY_SOCKET");
	size_t n;

	if (p == NULL)
		return;
	n = strlen(p);
	if (n == 0 || n >= sizeof(notify_addr.sun_path) ||
	    (p[0] != '/' && p[0] != '@')) {
		LOGW("NOTIFY_SOCKET: unsupported address, not notifying");
	} else {
		notify_addr.sun_family = AF_UNIX;
		memcpy(notify_addr.sun_path, p, n);
		if (p[0] == '@')
			notify_addr.sun_path[0] = '\0'; /* abstract */
		notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	}
	unsetenv("NOTIFY_SOCKET");
}

void notify_send(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int fd, n;

	if (notify_len == 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, buf, (size_t)n, MSG_NOSIGNAL,
		   (struct sockaddr *)&notify_addr, notify_len) < 0)
		LOG_RL(LOGL_WARN, 60, "sd_notify: %s", strerror(errno));
	close(fd);
}

void notify_reloading(void)
{
	notify_send("RELOADING=1\nMONOTONIC_USEC=%llu",
		    (unsigned long long)monotime_us());
}
