/* config: the effective settings. One plain struct with fixed-size
 * strings, so it travels to the children as one message of exact size.
 * An empty string means "not set". Its fields, defaults, ranges, keys and
 * options are the rows of settings.def. */
#ifndef NEOSOCKSD_CONFIG_H
#define NEOSOCKSD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONF_ADDR_MAX 256
#define CONF_PROXY_MAX 4096
#define CONF_PATH_MAX 1024
#define CONF_NAME_MAX 128
#define CONF_IFNAME_MAX 16
#define CONF_CIDRS_MAX 1024
#define CONF_JAIL_MAX 256

#define CONF_JAIL_DEFAULT "/run/neosocksd/empty"
#define CONF_WORKERS_MAX 64 /* --workers: front processes at most */
#define CONF_TIMEOUT_MIN 5.0
#define CONF_TIMEOUT_MAX 86400.0
#define CONF_API_TIMEOUT 10.0 /* a request must arrive whole */
#define CONF_API_IDLE 60.0    /* keep-alive connections */
#define CONF_API_MAX_CONNS 64
#define CONF_API_HEAD_TIMEOUT 3.0 /* the first head, before authentication */
#define CONF_API_MAX_PER_ADDR 8
#define CONF_API_RESERVED_AUTO (-1) /* --api-max-conns / 16 */
#define CONF_API_MODE 0600

#define CONFIG_FIELD_STR(f, cap) char f[cap]
#define CONFIG_FIELD_INT(f, cap) int f
#define CONFIG_FIELD_OCT(f, cap) int f
#define CONFIG_FIELD_NUM(f, cap) double f
#define CONFIG_FIELD_BOOL(f, cap) bool f

struct config {
	uint32_t size; /* sizeof(struct config): a sanity check on receipt */
#define SETTING(field, type, cap, ...) CONFIG_FIELD_##type(field, cap);
#include "common/settings.def"
};

/* A setting's row of settings.def, as data. */
enum config_type {
	CONF_T_STR,
	CONF_T_INT,
	CONF_T_OCT,
	CONF_T_NUM,
	CONF_T_BOOL,
	CONF_T_UNSUPPORTED, /* a key without a field: false only */
};

enum config_flag {
	CONF_CLI = 1,     /* only the command line sets it */
	CONF_LUA = 2,     /* neosocksd.config() shows it */
	CONF_SECRETS = 4, /* proxy URIs: config() hides their passwords */
};

struct config_setting {
	const char *key;        /* -c key and --dump-config name, or NULL */
	const char *sopt, *lopt; /* its own option, or NULL */
	uint8_t type;           /* enum config_type */
	uint8_t flags;          /* enum config_flag */
	size_t off, cap;        /* the field in struct config */
	double lo, hi;          /* a number's range */
	double def;             /* a number's or a bool's default */
	const char *defstr;     /* a string's default */
	/* own checks of the value, in config_check(); 0 or -1 with err */
	int (*check)(const struct config *c, char *err, size_t errcap);
};

extern const struct config_setting config_settings[];
extern const size_t config_nsettings;

/* The row whose key is key, or NULL. */
const struct config_setting *config_find(const char *key);

/* A setting's value (by its row's type). */
const char *config_str(const struct config *c, const struct config_setting *s);
int config_int(const struct config *c, const struct config_setting *s);
double config_num(const struct config *c, const struct config_setting *s);
bool config_bool(const struct config *c, const struct config_setting *s);

/* Defaults as the reference has them (splice on, which it makes opt-in). */
void config_defaults(struct config *c);

/* Every number within its range (or its default). Returns 0, or -1 with a
 * message naming the option and the key. */
int config_check_ranges(const struct config *c, char *err, size_t errcap);

/* Check the whole configuration: the ranges, each value's own checks, then
 * the rules between settings. Returns 0, or -1 with a message for the
 * operator in err (naming the flag). */
int config_check(const struct config *c, char *err, size_t errcap);

/* Check a received copy: its size, every string terminated inside its
 * array, every bool 0 or 1, every number finite and within its range.
 * 0 or -1. */
int config_validate_wire(const struct config *c, size_t len);

/* Copy into dst the settings only the command line sets (CONF_CLI) from
 * cli: what a config file evaluated by a child cannot change. */
void config_keep_cli(struct config *dst, const struct config *cli);

/* Is an --api address reachable only from this host (loopback, or a
 * unix socket)? */
bool config_api_local(const char *addr);

/* Print as a Lua table ("return { ... }"), --dump-config. */
void config_dump(const struct config *c, FILE *f);

#endif
