/* config: the effective settings. One plain struct with fixed-size
 * strings, so it travels to the children as one message of exact size.
 * An empty string means "not set". */
#ifndef NEOSOCKSD_CONFIG_H
#define NEOSOCKSD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CONF_ADDR_MAX 256
#define CONF_PROXY_MAX 4096
#define CONF_PATH_MAX 1024
#define CONF_NAME_MAX 128
#define CONF_IFNAME_MAX 16
#define CONF_CIDRS_MAX 1024

#define CONF_JAIL_DEFAULT "/run/neosocksd/empty"
#define CONF_TIMEOUT_MIN 5.0
#define CONF_TIMEOUT_MAX 86400.0
#define CONF_API_TIMEOUT 10.0 /* a request must arrive whole */
#define CONF_API_IDLE 60.0    /* keep-alive connections */
#define CONF_API_MAX_CONNS 64
#define CONF_API_MODE 0600

struct config {
	uint32_t size; /* sizeof(struct config): a sanity check on receipt */

	/* listeners and routing */
	char listen[CONF_ADDR_MAX];      /* -l */
	char http_listen[CONF_ADDR_MAX]; /* --http ADDR */
	bool http_only;                  /* --http without ADDR: -l is HTTP */
	char forward[CONF_ADDR_MAX];     /* -f */
	char proxy[CONF_PROXY_MAX];      /* -x */
	char restapi[CONF_ADDR_MAX];     /* --api */
	char api_allow[CONF_CIDRS_MAX];  /* --api-allow CIDR,... */
	char api_token_file[CONF_PATH_MAX];    /* --api-token-file */
	char api_ro_token_file[CONF_PATH_MAX]; /* --api-readonly-token-file */
	char state_dir[CONF_PATH_MAX];   /* --state-dir */
	double api_timeout; /* --api-timeout: a request must arrive whole */
	double api_idle;    /* --api-idle: keep-alive connections */
	int api_max_conns;  /* --api-max-conns */
	int api_mode;       /* --api-mode for a unix socket (octal) */
	char api_owner[CONF_NAME_MAX];   /* --api-owner for a unix socket */
	char nameserver[CONF_ADDR_MAX];  /* --nameserver */
	char netdev[CONF_IFNAME_MAX];    /* -i */
	char user_name[CONF_NAME_MAX];   /* -u */
	char ruleset_user[CONF_NAME_MAX]; /* --ruleset-user */
	char jail_dir[256];              /* --jail */
	char ruleset[CONF_PATH_MAX];     /* -r */
	char config_file[CONF_PATH_MAX]; /* -c */

	int loglevel;   /* 0..8 */
	int resolve_pf; /* 0, AF_INET (2) or AF_INET6 (10) */
	double timeout; /* -t, seconds */
	int memlimit;   /* MiB */

	bool auth_required;
	bool pipe; /* splice relay (default on here) */
	bool reuseport;
	bool tcp_fastopen;
	bool tcp_fastopen_connect;
	bool tcp_nodelay;
	bool tcp_keepalive;
	bool traceback;
	bool block_loopback;
	bool block_multicast;
	bool block_local;
	bool block_global;

	bool sandbox_debug; /* --sandbox-debug */
	bool enable_execute; /* --enable-execute: await.execute allowed */
	char lua_path[CONF_PATH_MAX]; /* --lua-path: module directories */
	double drain_timeout; /* seconds sessions may drain on SIGTERM */
	int mark;       /* --mark: SO_MARK on outbound sockets (0: none) */

	int tcp_sndbuf, tcp_rcvbuf;
	int max_sessions;
	int startup_limit_start, startup_limit_rate, startup_limit_full;
};

/* Defaults as the reference has them (splice on, which it makes opt-in). */
void config_defaults(struct config *c);

/* Check the whole configuration. Returns 0, or -1 with a message for the
 * operator in err (naming the flag). */
int config_check(const struct config *c, char *err, size_t errcap);

/* Check a received copy: size matches and every string is terminated
 * inside its array. 0 or -1. */
int config_validate_wire(const struct config *c, size_t len);

/* Print as a Lua table ("return { ... }"), --dump-config. */
void config_dump(const struct config *c, FILE *f);

#endif
