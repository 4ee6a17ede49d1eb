/* msg: the one catalogue of messages between the processes.
 *
 * Every type has one channel, one sender, a payload size rule (exact, or
 * a bounded range) and an fd rule. The receiver checks a message against
 * the catalogue (msg_check) before looking at it; anything that does not
 * match is a protocol violation by the sender. */
#ifndef NEOSOCKSD_MSG_H
#define NEOSOCKSD_MSG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "common/msgchan.h"

enum role {
	ROLE_PARENT = 0,
	ROLE_FRONT,
	ROLE_RULESET,
	ROLE_COUNT
};

enum chan_kind {
	CHAN_PARENT_FRONT = 0,
	CHAN_PARENT_RULESET,
	CHAN_FRONT_RULESET,
	CHAN_COUNT
};

/* Largest payload on any channel (Lua sources up to the API's 4 MiB body
 * plus framing; resolv.conf/hosts). */
#define MSG_MAXLEN (8u << 20)
/* Most bytes a sender may queue on one channel. */
#define MSG_WMAX (64u << 20)
/* Most PRIV_SOCKET requests the front keeps unanswered; the parent kills a
 * front with more answers than this waiting to be read. */
#define MSG_PRIV_PENDING_MAX 4096

/* The PRIV_SOCKET requests one of `workers` front workers keeps
 * unanswered at most, and so the answers the parent lets it leave unread:
 * MSG_PRIV_PENDING_MAX, or the worker's share of a quarter of the
 * descriptor limit when that is less. The parent and the front compute it
 * alike (the front inherits the parent's limit). */
static inline unsigned msg_priv_pending_max(long nofile, unsigned workers)
{
	long q = nofile / 4 / (long)(workers > 0 ? workers : 1);

	if (q >= MSG_PRIV_PENDING_MAX)
		return MSG_PRIV_PENDING_MAX;
	return q > 0 ? (unsigned)q : 1;
}

/* Each type has exactly one channel and one sender. Messages sent by the
 * parent to both children exist twice (one type per channel), so the
 * catalogue stays a plain table. */
enum msg_type {
	MSG_INVALID = 0,

	/* parent -> front */
	MSG_CONFIG = 1,   /* struct config, exact */
	MSG_RESOLVCONF,   /* resolv.conf contents, 0..64 KiB */
	MSG_HOSTS,        /* hosts file contents, 0..1 MiB */
	MSG_LISTENER,     /* struct msg_listener + listening socket fd */
	MSG_START,        /* struct msg_sandbox: go (sandbox, then serve) */
	MSG_SHUTDOWN,     /* struct msg_shutdown: stop accepting, drain */
	MSG_PING,         /* struct msg_ping */
	MSG_PEER_CHAN,    /* empty + fd: a new front<->ruleset channel */
	MSG_PRIV_SOCKET_REPLY, /* struct msg_priv_socket_reply + fd or none */

	/* front -> parent */
	MSG_READY = 32,   /* empty: sandboxed and serving */
	MSG_PONG,         /* struct msg_ping, echoed */
	MSG_DRAINED,      /* empty: no sessions left after MSG_SHUTDOWN */
	MSG_PRIV_SOCKET,  /* struct msg_priv_socket: an outbound socket with
			   * the configured privileged options */
	MSG_PEER_FAULT,   /* empty: the ruleset process broke the protocol
			   * on the front<->ruleset channel */
	MSG_PRIV_UDP,     /* struct msg_priv_addr: a UDP relay socket bound
			   * to a SOCKS listener's address, port 0
			   * (answered by MSG_PRIV_SOCKET_REPLY) */
	MSG_PRIV_BIND,    /* struct msg_priv_addr: a listening TCP socket
			   * bound to this local address, port 0 (SOCKS5
			   * BIND; answered by MSG_PRIV_SOCKET_REPLY) */

	/* parent -> ruleset */
	MSG_R_CONFIG = 64, /* struct config, exact */
	MSG_R_START,       /* struct msg_sandbox */
	MSG_R_RULESET,     /* struct msg_ruleset_hdr + Lua source */
	MSG_R_SHUTDOWN,    /* struct msg_shutdown */
	MSG_R_PING,        /* struct msg_ping */
	MSG_R_PEER_CHAN,   /* struct msg_peer + fd: a channel to that worker */
	MSG_R_MODULE,      /* struct msg_module + Lua source (id: request) */
	MSG_R_CONFIGFILE,  /* struct msg_ruleset_hdr + the -c Lua source */
	MSG_R_EXECUTED,    /* struct msg_executed (id: request) */
	MSG_R_LISTENER,    /* struct msg_listener + the API's socket */
	MSG_R_TOKENS,      /* struct msg_tokens: the API's bearer tokens */
	MSG_R_STATUS,      /* struct msg_status: restarts, sandbox layers */
	MSG_R_UPDATE,      /* struct msg_update + source: replay a saved
			    * /ruleset/update (--state-dir) */
	MSG_R_TLS,         /* struct msg_tls + the PEM files it sizes: the
			    * API's and the RPC client's certificates and
			    * keys */

	/* ruleset -> parent */
	MSG_R_READY = 96,  /* empty */
	MSG_R_PONG,        /* struct msg_ping */
	MSG_R_LOADED,      /* struct msg_loaded + error text (bounded) */
	MSG_R_MODULE_REQ,  /* module name (id: request) */
	MSG_R_CONFIGURED,  /* struct msg_loaded + struct config, or + error */
	MSG_R_EXECUTE,     /* a shell command (id: request) */
	MSG_R_EXECUTE_CANCEL, /* empty: the routine waiting for that command
			       * is gone; kill it (id: request) */
	MSG_R_PERSIST,     /* struct msg_update + source: save an update */
	MSG_R_PEER_FAULT,  /* struct msg_peer: that worker broke the protocol
			    * on its front<->ruleset channel */
	MSG_R_FILE_REQ,    /* a relative file name for loadfile/dofile
			    * (id: request; answered by MSG_R_MODULE) */
	MSG_R_EXIT,        /* struct msg_exit: os.exit(), stop the daemon */

	/* front -> ruleset (id: the front's request id) */
	MSG_ROUTE_REQ = 128, /* struct msg_route_req + addr, user, pass */
	MSG_ROUTE_CANCEL,    /* empty: the session is gone */
	MSG_FORWARD_RES,     /* struct msg_result + error text */
	MSG_RESOLVE_RES,     /* struct msg_result + address text */
	MSG_STATS,           /* struct msg_stats (id: the request's) */
	MSG_DIAL_RES,        /* struct msg_result + error text; the socket
			      * when ok (id: the DIAL_REQ's) */

	/* ruleset -> front */
	MSG_ROUTE_REPLY = 160, /* struct msg_route + strings (below) */
	MSG_FORWARD_REQ,       /* struct msg_route + strings: dial now */
	MSG_RESOLVE_REQ,       /* host name (id: the ruleset's query id) */
	MSG_STATS_REQ,         /* empty: send MSG_STATS */
	MSG_DIAL_REQ,          /* struct msg_route + strings: dial for the
				* RPC client and hand the socket over */
	MSG_DIAL_CANCEL,       /* empty: the RPC call gave up */

	MSG_TYPE_MAX = 255
};

enum msg_fd_rule {
	MSG_FD_NONE = 0,
	MSG_FD_REQUIRED,
	MSG_FD_OPTIONAL,
};

struct msg_desc {
	uint16_t type;
	const char *name;
	uint8_t chan;   /* enum chan_kind */
	uint8_t sender; /* enum role */
	uint8_t fd;     /* enum msg_fd_rule */
	uint32_t minlen, maxlen; /* equal: exact size */
};

enum listener_kind {
	LISTENER_SOCKS = 1, /* SOCKS4/4A/5 (or -f forward) on -l */
	LISTENER_HTTP,      /* HTTP proxy */
	LISTENER_FORWARD,   /* -f: plain TCP forward on -l */
	LISTENER_API,       /* REST API */
	LISTENER_TPROXY,    /* --tproxy: transparent (IP_TRANSPARENT) on -l */
};

struct msg_listener {
	uint32_t kind; /* enum listener_kind */
};

struct msg_shutdown {
	double drain_seconds;
};

/* Who the child becomes and how it is jailed (decided by the parent). */
struct msg_sandbox {
	uint32_t uid, gid;
	uint8_t drop_user; /* running as root: switch to uid/gid */
	uint8_t netns;     /* ruleset: own network and IPC namespaces */
	uint8_t debug;     /* report forbidden syscalls instead of killing */
	uint8_t pad;
	char jail[256];    /* ruleset: empty root-owned dir; "" for none */
};

/* An outbound socket the front may not create itself (SO_MARK,
 * SO_BINDTODEVICE). The front names only the family; the options come from
 * the configuration. */
struct msg_priv_socket {
	uint32_t family; /* AF_INET or AF_INET6 */
	uint32_t type;   /* SOCK_STREAM (TCP) or SOCK_DGRAM (UDP) */
};

/* A local address for a socket the parent binds with port 0: the UDP
 * relay of a SOCKS5 UDP ASSOCIATE (PRIV_UDP) or the listening socket of a
 * SOCKS5 BIND (PRIV_BIND). The parent checks it (a listener's address for
 * PRIV_UDP) and chooses everything else. */
struct msg_priv_addr {
	uint32_t family;  /* AF_INET or AF_INET6 */
	uint8_t addr[16]; /* network order; IPv4 in the first 4 bytes */
};

struct msg_priv_socket_reply {
	int32_t err; /* 0 and an fd, or an errno value and none */
};

enum ruleset_load_kind {
	RULESET_LOAD_START = 1, /* at (re)start: the last good one */
	RULESET_LOAD_RELOAD,    /* SIGHUP: replace only if it loads */
	RULESET_LOAD_CONFIGURE, /* -c at the daemon's start: its settings
				 * count (later evaluations only give the
				 * ruleset) */
};

struct msg_ruleset_hdr {
	uint32_t kind;     /* enum ruleset_load_kind */
	uint32_t seq;      /* echoed in MSG_R_LOADED */
	char chunkname[128];
};

struct msg_loaded {
	uint32_t seq;
	int32_t ok; /* 1 loaded, 0 failed (the error text follows) */
};

#define MSG_ERRTEXT_MAX 4096
#define MSG_MODULE_NAME_MAX 64

#define MSG_COMMAND_MAX 4096

enum exec_kind {
	EXEC_EXIT = 1,   /* code: the exit status */
	EXEC_SIGNAL,     /* code: the signal */
	EXEC_REFUSED,    /* too many running, or fork failed */
};

struct msg_executed {
	int32_t kind; /* enum exec_kind */
	int32_t code;
};

enum module_found {
	MODULE_ERROR = -1,   /* could not be read (logged by the parent) */
	MODULE_ABSENT = 0,
	MODULE_FILE = 1,     /* name.lua (or the file named) */
	MODULE_INIT = 2,     /* name/init.lua */
	MODULE_REFUSED = 3,  /* a symlink, or not a regular file */
};

struct msg_module {
	int32_t found; /* enum module_found; the source follows when >= 1
			* and not MODULE_REFUSED */
};

/* A loadfile()/dofile() name: relative, '/'-separated */
#define MSG_FILE_NAME_MAX 255

struct msg_exit {
	int32_t code; /* 0..255 */
};

/* ---- routing between the front and the ruleset ---- */

enum route_kind {
	ROUTE_KIND_RESOLVE = 1, /* a host name (SOCKS4A/5 domain, HTTP) */
	ROUTE_KIND_ROUTE,       /* an IPv4 address */
	ROUTE_KIND_ROUTE6,      /* an IPv6 address */
};

#define ROUTE_F_USER 1u
#define ROUTE_F_PASS 2u
#define ROUTE_STR_MAX 1024 /* an address or a proxy URI */
#define ROUTE_CRED_MAX 255

struct msg_route_req {
	uint16_t kind; /* enum route_kind */
	uint16_t flags;
	uint16_t addrlen, userlen, passlen;
	uint16_t pad;
	/* followed by addr, user, pass (no NULs) */
};

enum route_result {
	ROUTE_GO = 1,       /* dial addr through the hops */
	ROUTE_REJECT,       /* the ruleset said no (nil, false, nothing) */
	ROUTE_ERROR,        /* the callback raised an error */
	ROUTE_NO_RULESET,   /* none loaded: go direct (as without -r) */
	ROUTE_DONE,         /* already forwarded by await.forward */
};

struct msg_route {
	uint16_t result; /* enum route_result (FORWARD_REQ: ROUTE_GO) */
	uint16_t nhops;  /* proxy URIs that follow addr, first hop first */
	/* followed by 1 + nhops strings, each a uint16_t length and bytes */
};

#define ROUTE_HOPS_MAX 16
/* addr and up to ROUTE_HOPS_MAX hops, each with a 2-byte length */
#define MSG_ROUTE_STRS_MAX ((ROUTE_HOPS_MAX + 1) * (2 + ROUTE_STR_MAX))

/* The front's counters (for /stats, /metrics, neosocksd.stats()). */
#define MSG_STATS_LAT_N 256 /* dial latencies a worker keeps */

struct msg_stats {
	uint64_t accepts, accept_drops;
	uint64_t requests, success;
	uint64_t reject_ruleset, reject_timeout, reject_upstream;
	uint64_t bytes_up, bytes_down;
	uint64_t hs_rx, hs_tx, dial_rx, dial_tx;
	uint64_t dns_queries, dns_success;
	uint64_t dials;      /* successful dials, ever */
	uint64_t dial_us_sum; /* their latencies summed */
	uint32_t active, halfopen, peak;
	uint32_t nlat;       /* samples in the percentiles (last 256) */
	uint32_t lat_p50_us, lat_p90_us, lat_p99_us, lat_max_us;
	/* the samples themselves (nlat of them, oldest first or not), so
	 * that the ruleset process can merge several workers' */
	uint32_t lat[MSG_STATS_LAT_N];
	uint32_t sandbox;    /* SANDBOX_* layers the front applied */
	uint32_t log_dropped;
	uint64_t cpu_ns;     /* the front's CPU time */
	/* SOCKS5 UDP ASSOCIATE: datagrams and payload bytes relayed (up:
	 * from clients), dropped, associations now and ever */
	uint64_t udp_pkts_up, udp_pkts_down, udp_bytes_up, udp_bytes_down;
	uint64_t udp_drops, udp_assocs;
	uint32_t udp_active, pad;
};

#define MSG_TOKEN_MAX 256

struct msg_tokens {
	char admin[MSG_TOKEN_MAX + 1]; /* "" when not set */
	char readonly[MSG_TOKEN_MAX + 1];
	char pad[6];
};

/* The TLS files the parent read, in this order after struct msg_tls;
 * a length of 0 is a file not configured. */
enum msg_tls_file {
	MSG_TLS_API_CERT = 0, /* --api-tls-cert: the leaf, then its chain */
	MSG_TLS_API_KEY,      /* --api-tls-key */
	MSG_TLS_API_CA,       /* --api-tls-client-ca */
	MSG_TLS_RPC_CA,       /* --rpc-tls-ca */
	MSG_TLS_RPC_CERT,     /* --rpc-tls-cert */
	MSG_TLS_RPC_KEY,      /* --rpc-tls-key */
	MSG_TLS_NFILES
};

#define MSG_TLS_PEM_MAX (256u << 10) /* one file */

struct msg_tls {
	uint32_t len[MSG_TLS_NFILES];
};

struct msg_status {
	uint64_t started_ns; /* CLOCK_MONOTONIC when the daemon started */
	uint32_t restarts_front, restarts_ruleset; /* front: all workers */
	uint32_t sandbox_parent; /* SANDBOX_* bits the parent applied */
	uint32_t workers;        /* --workers in force */
	uint32_t restarts_worker[CONF_WORKERS_MAX]; /* each worker's */
};

enum update_kind {
	UPDATE_RULESET = 1, /* /ruleset/update without module */
	UPDATE_MODULE,      /* with module=name */
};

struct msg_update {
	uint32_t kind; /* enum update_kind */
	uint32_t seq;
	char name[MSG_MODULE_NAME_MAX + 1]; /* UPDATE_MODULE */
	char chunkname[128];
	char pad[3];
};

struct msg_result {
	int32_t ok; /* 1 success; 0 failure (text is the reason) */
};
#define MSG_LUA_SRC_MAX (MSG_MAXLEN - 4096) /* a Lua source or module */

struct msg_ping {
	uint64_t seq;
};

/* Which front worker a front<->ruleset channel belongs to: 0 to
 * --workers - 1 (below CONF_WORKERS_MAX). */
struct msg_peer {
	uint32_t worker;
};

/* A module name: 1 to MSG_MODULE_NAME_MAX letters, digits, '_' or '-'
 * (so never a path). With dots, also single dots between such characters
 * ("lib.sub"), as require(), /ruleset/update and the saved updates accept
 * them; each dot is a directory level beneath the search directories. */
bool msg_module_name_ok(const char *name, size_t len, bool dots);

/* A loadfile()/dofile() name: 1 to MSG_FILE_NAME_MAX bytes, relative
 * (no leading '/'), components separated by single '/', each made of
 * letters, digits, '.', '_', '-', '+', and none of them "..". A "."
 * component means the directory itself. */
bool msg_file_name_ok(const char *name, size_t len);

/* A channel's control messages, handled by the shared channel code
 * (chanev.c): the parent's heartbeat and the child's answer, and the
 * child's readiness. All 0 on the front<->ruleset channel. */
struct msg_ctl {
	uint16_t ping, pong, ready;
};
const struct msg_ctl *msg_chan_ctl(enum chan_kind chan);

/* The descriptor of a type, or NULL for an unknown type. */
const struct msg_desc *msg_lookup(uint16_t type);
const char *msg_name(uint16_t type);
const char *role_name(enum role r);

/* Check a received message: known type, sent on this channel by this
 * sender, payload size within the rule, fd present exactly when required.
 * Returns 0, or -1 with a static reason in *why. */
int msg_check(enum chan_kind chan, enum role sender, const struct msg *m,
	      const char **why);

#endif
