/* socks_bind: SOCKS5 BIND for the SOCKS driver (see socks_bind.c). */
#ifndef NEOSOCKSD_SOCKS_BIND_H
#define NEOSOCKSD_SOCKS_BIND_H

struct session;
struct socks_bind;

/* The request was decided (s->hs: target, hops): listen and reply. */
void socks_bind_start(struct session *s);
/* The listening socket (s->ufd) is readable. */
void socks_bind_on_event(struct session *s);
void socks_bind_free(struct socks_bind *b);

#endif
