/* listener: accept loop with the admission limits (-m, --max-startups) and
 * a pause on descriptor exhaustion that neither spins nor floods the log. */
#include "front/listener.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/log.h"
#include "common/msg.h"
#include "front/front.h"
#include "front/session.h"
#include "front/stats.h"

#define LISTENER_MAX 4
#define ACCEPT_BATCH 64

struct listener {
	int fd;
	int kind;
	bool deferred; /* TCP_DEFER_ACCEPT: a new connection has bytes */
	struct event *ev;
};

static struct listener listeners[LISTENER_MAX];
static int nlisteners;
static struct event_base *listen_base;
static const struct front_conf *listen_fc;
static struct event *resume_timer;
static bool paused, stopped;
static uint64_t rng_state;

int listener_add(int fd, int kind)
{
	int defer = 0;
	socklen_t len = sizeof(defer);

	if (nlisteners == LISTENER_MAX)
		return -1;
	listeners[nlisteners].fd = fd;
	listeners[nlisteners].kind = kind;
	/* set by the parent on SOCKS and HTTP listeners */
	listeners[nlisteners].deferred =
		getsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, &len) ==
			0 &&
		defer > 0;
	nlisteners++;
	return 0;
}

static uint32_t listener_rand(void)
{
	/* xorshift64*: only for the --max-startups coin */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

/* --max-startups start:rate:full, as sshd: refuse with a probability that
 * grows linearly from rate% at start pending handshakes to 100% at full. */
static bool listener_admit(void)
{
	const struct config *c = &listen_fc->c;
	uint32_t pending = front_stats.halfopen;
	unsigned p;

	if (c->max_sessions > 0 &&
	    front_stats.active + front_stats.halfopen >=
		    (uint32_t)c->max_sessions)
		return false;
	if (c->startup_limit_full > 0 &&
	    pending >= (uint32_t)c->startup_limit_full)
		return false;
	if (c->startup_limit_start <= 0 ||
	    pending < (uint32_t)c->startup_limit_start)
		return true;
	p = (unsigned)c->startup_limit_rate;
	if (c->startup_limit_full > c->startup_limit_start)
		p += (100 - p) * (pending - (uint32_t)c->startup_limit_start) /
		     (uint32_t)(c->startup_limit_full -
				c->startup_limit_start);
	return listener_rand() % 100 >= p;
}

static void listener_pause(void)
{
	static const struct timeval retry = { 0, 500000 };

	if (paused)
		return;
	paused = true;
	for (int i = 0; i < nlisteners; i++)
		event_del(listeners[i].ev);
	evtimer_add(resume_timer, &retry);
}

static void listener_resume(void)
{
	if (!paused || stopped)
		return;
	paused = false;
	evtimer_del(resume_timer);
	for (int i = 0; i < nlisteners; i++)
		event_add(listeners[i].ev, NULL);
}

void listener_session_closed(void)
{
	listener_resume();
}

static void listener_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	listener_resume();
}

static void listener_accept_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;
	union sockaddr_u sa;

	(void)what;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		socklen_t len = sizeof(sa);
		int cfd = accept4(fd, &sa.sa, &len,
				  SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0) {
			switch (errno) {
			case EAGAIN:
				return;
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
			case EPERM:
				continue;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				LOG_RL(LOGL_WARN, 10,
				       "accept: %s; pausing for a while",
				       strerror(errno));
				listener_pause();
				return;
			default:
				LOG_RL(LOGL_ERROR, 10, "accept: %s",
				       strerror(errno));
				listener_pause();
				return;
			}
		}
		front_stats.accepts++;
		if (!listener_admit()) {
			front_stats.accept_drops++;
			close(cfd);
			continue;
		}
		/* TCP_NODELAY, SO_KEEPALIVE and buffer sizes were set on
		 * the listener by the parent: accepted sockets inherit them */
		session_accept(cfd, &sa.sa, len, l->kind, l->deferred);
	}
}

int listener_start(struct event_base *base, const struct front_conf *fc)
{
	listen_base = base;
	listen_fc = fc;
	if (getrandom(&rng_state, sizeof(rng_state), GRND_NONBLOCK) !=
		    sizeof(rng_state) ||
	    rng_state == 0)
		rng_state = 0x9e3779b97f4a7c15ull;
	resume_timer = evtimer_new(base, listener_resume_cb, NULL);
	if (resume_timer == NULL)
		return -1;
	for (int i = 0; i < nlisteners; i++) {
		listeners[i].ev =
			event_new(base, listeners[i].fd, EV_READ | EV_PERSIST,
				  listener_accept_cb, &listeners[i]);
		if (listeners[i].ev == NULL ||
		    event_add(listeners[i].ev, NULL) < 0)
			return -1;
	}
	return 0;
}

void listener_stop(void)
{
	stopped = true;
	if (resume_timer != NULL)
		evtimer_del(resume_timer);
	for (int i = 0; i < nlisteners; i++) {
		if (listeners[i].ev != NULL) {
			event_free(listeners[i].ev);
			listeners[i].ev = NULL;
		}
		close(listeners[i].fd);
	}
	nlisteners = 0;
}

int listener_count(void)
{
	return nlisteners;
}
