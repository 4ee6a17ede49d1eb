/* notify: systemd's readiness protocol, written directly to
 * $NOTIFY_SOCKET (no libsystemd). A no-op when the variable is unset. */
#ifndef NEOSOCKSD_NOTIFY_H
#define NEOSOCKSD_NOTIFY_H

/* Remember $NOTIFY_SOCKET and remove it from the environment, so only the
 * parent ever notifies. */
void notify_init(void);
/* Send one datagram of newline-separated assignments, e.g. "READY=1". */
void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "RELOADING=1\nMONOTONIC_USEC=..." */
void notify_reloading(void);

#endif
