#include "common/msg.h"

#include <stddef.h>

#include "common/config.h"

#define EXACT(t) sizeof(t), sizeof(t)

static const struct msg_desc msg_table[] = {
	{ MSG_CONFIG, "CONFIG", CHAN_PARENT_FRONT, ROLE_PARENT, MSG_FD_NONE,
	  EXACT(struct config) },
	{ MSG_RESOLVCONF, "RESOLVCONF", CHAN_PARENT_FRONT, ROLE_PARENT,
	  MSG_FD_NONE, 0, 64u << 10 },
	{ MSG_HOSTS, "HOSTS", CHAN_PARENT_FRONT, ROLE_PARENT, MSG_FD_NONE, 0,
	  1u << 20 },
	{ MSG_LISTENER, "LISTENER", CHAN_PARENT_FRONT, ROLE_PARENT,
	  MSG_FD_REQUIRED, EXACT(struct msg_listener) },
	{ MSG_START, "START", CHAN_PARENT_FRONT, ROLE_PARENT, MSG_FD_NONE,
	  EXACT(struct msg_sandbox) },
	{ MSG_SHUTDOWN, "SHUTDOWN", CHAN_PARENT_FRONT, ROLE_PARENT,
	  MSG_FD_NONE, EXACT(struct msg_shutdown) },
	{ MSG_PING, "PING", CHAN_PARENT_FRONT, ROLE_PARENT, MSG_FD_NONE,
	  EXACT(struct msg_ping) },
	{ MSG_PEER_CHAN, "PEER_CHAN", CHAN_PARENT_FRONT, ROLE_PARENT,
	  MSG_FD_REQUIRED, 0, 0 },
	{ MSG_PRIV_SOCKET_REPLY, "PRIV_SOCKET_REPLY", CHAN_PARENT_FRONT,
	  ROLE_PARENT, MSG_FD_OPTIONAL, EXACT(struct msg_priv_socket_reply) },
	{ MSG_READY, "READY", CHAN_PARENT_FRONT, ROLE_FRONT, MSG_FD_NONE, 0,
	  0 },
	{ MSG_PONG, "PONG", CHAN_PARENT_FRONT, ROLE_FRONT, MSG_FD_NONE,
	  EXACT(struct msg_ping) },
	{ MSG_DRAINED, "DRAINED", CHAN_PARENT_FRONT, ROLE_FRONT, MSG_FD_NONE,
	  0, 0 },
	{ MSG_PRIV_SOCKET, "PRIV_SOCKET", CHAN_PARENT_FRONT, ROLE_FRONT,
	  MSG_FD_NONE, EXACT(struct msg_priv_socket) },
	{ MSG_PEER_FAULT, "PEER_FAULT", CHAN_PARENT_FRONT, ROLE_FRONT,
	  MSG_FD_NONE, 0, 0 },
	{ MSG_PRIV_UDP, "PRIV_UDP", CHAN_PARENT_FRONT, ROLE_FRONT, MSG_FD_NONE,
	  EXACT(struct msg_priv_addr) },
	{ MSG_PRIV_BIND, "PRIV_BIND", CHAN_PARENT_FRONT, ROLE_FRONT,
	  MSG_FD_NONE, EXACT(struct msg_priv_addr) },

	{ MSG_R_CONFIG, "R_CONFIG", CHAN_PARENT_RULESET, ROLE_PARENT,
	  MSG_FD_NONE, EXACT(struct config) },
	{ MSG_R_START, "R_START", CHAN_PARENT_RULESET, ROLE_PARENT, MSG_FD_NONE,
	  EXACT(struct msg_sandbox) },
	{ MSG_R_RULESET, "R_RULESET", CHAN_PARENT_RULESET, ROLE_PARENT,
	  MSG_FD_NONE, sizeof(struct msg_ruleset_hdr),
	  sizeof(struct msg_ruleset_hdr) + MSG_LUA_SRC_MAX },
	{ MSG_R_SHUTDOWN, "R_SHUTDOWN", CHAN_PARENT_RULESET, ROLE_PARENT,
	  MSG_FD_NONE, EXACT(struct msg_shutdown) },
	{ MSG_R_PING, "R_PING", CHAN_PARENT_RULESET, ROLE_PARENT, MSG_FD_NONE,
	  EXACT(struct msg_ping) },
	{ MSG_R_PEER_CHAN, "R_PEER_CHAN", CHAN_PARENT_RULESET, ROLE_PARENT,
	  MSG_FD_REQUIRED, EXACT(struct msg_peer) },
	{ MSG_R_MODULE, "R_MODULE", CHAN_PARENT_RULESET, ROLE_PARENT,
	  MSG_FD_NONE, sizeof(struct msg_module),
	  sizeof(struct msg_module) + MSG_LUA_SRC_MAX },
	{ MSG_R_CONFIGFILE, "R_CONFIGFILE", CHAN_PARENT_RULESET, ROLE_PARENT,
	  MSG_FD_NONE, sizeof(struct msg_ruleset_hdr),
	  sizeof(struct msg_ruleset_hdr) + MSG_LUA_SRC_MAX },
	{ MSG_R_CONFIGURED, "R_CONFIGURED", CHAN_PARENT_RULESET, ROLE_RULESET,
	  MSG_FD_NONE, sizeof(struct msg_loaded),
	  sizeof(struct msg_loaded) +
		  (sizeof(struct config) > MSG_ERRTEXT_MAX ? sizeof(struct config)
							   : MSG_ERRTEXT_MAX) },
	{ MSG_R_EXECUTED, "R_EXECUTED", CHAN_PARENT_RULESET, ROLE_PARENT,
	  MSG_FD_NONE, EXACT(struct msg_executed) },
	{ MSG_R_LISTENER, "R_LISTENER", CHAN_PARENT_RULESET, ROLE_PARENT,
	  MSG_FD_REQUIRED, EXACT(struct msg_listener) },
	{ MSG_R_TOKENS, "R_TOKENS", CHAN_PARENT_RULESET, ROLE_PARENT,
	  MSG_FD_NONE, EXACT(struct msg_tokens) },
	{ MSG_R_STATUS, "R_STATUS", CHAN_PARENT_RULESET, ROLE_PARENT,
	  MSG_FD_NONE, EXACT(struct msg_status) },
	{ MSG_R_UPDATE, "R_UPDATE", CHAN_PARENT_RULESET, ROLE_PARENT,
	  MSG_FD_NONE, sizeof(struct msg_update),
	  sizeof(struct msg_update) + MSG_LUA_SRC_MAX },
	{ MSG_R_TLS, "R_TLS", CHAN_PARENT_RULESET, ROLE_PARENT, MSG_FD_NONE,
	  sizeof(struct msg_tls),
	  sizeof(struct msg_tls) + MSG_TLS_NFILES * MSG_TLS_PEM_MAX },
	{ MSG_R_PERSIST, "R_PERSIST", CHAN_PARENT_RULESET, ROLE_RULESET,
	  MSG_FD_NONE, sizeof(struct msg_update),
	  sizeof(struct msg_update) + MSG_LUA_SRC_MAX },
	{ MSG_R_PEER_FAULT, "R_PEER_FAULT", CHAN_PARENT_RULESET, ROLE_RULESET,
	  MSG_FD_NONE, EXACT(struct msg_peer) },
	{ MSG_R_EXECUTE, "R_EXECUTE", CHAN_PARENT_RULESET, ROLE_RULESET,
	  MSG_FD_NONE, 1, MSG_COMMAND_MAX },
	{ MSG_R_EXECUTE_CANCEL, "R_EXECUTE_CANCEL", CHAN_PARENT_RULESET,
	  ROLE_RULESET, MSG_FD_NONE, 0, 0 },
	{ MSG_R_FILE_REQ, "R_FILE_REQ", CHAN_PARENT_RULESET, ROLE_RULESET,
	  MSG_FD_NONE, 1, MSG_FILE_NAME_MAX },
	{ MSG_R_EXIT, "R_EXIT", CHAN_PARENT_RULESET, ROLE_RULESET,
	  MSG_FD_NONE, EXACT(struct msg_exit) },
	{ MSG_R_MODULE_REQ, "R_MODULE_REQ", CHAN_PARENT_RULESET, ROLE_RULESET,
	  MSG_FD_NONE, 1, MSG_MODULE_NAME_MAX },
	{ MSG_R_READY, "R_READY", CHAN_PARENT_RULESET, ROLE_RULESET,
	  MSG_FD_NONE, 0, 0 },
	{ MSG_R_PONG, "R_PONG", CHAN_PARENT_RULESET, ROLE_RULESET, MSG_FD_NONE,
	  EXACT(struct msg_ping) },
	{ MSG_R_LOADED, "R_LOADED", CHAN_PARENT_RULESET, ROLE_RULESET,
	  MSG_FD_NONE, sizeof(struct msg_loaded),
	  sizeof(struct msg_loaded) + MSG_ERRTEXT_MAX },

	{ MSG_ROUTE_REQ, "ROUTE_REQ", CHAN_FRONT_RULESET, ROLE_FRONT,
	  MSG_FD_NONE, sizeof(struct msg_route_req),
	  sizeof(struct msg_route_req) + ROUTE_STR_MAX + 2 * ROUTE_CRED_MAX },
	{ MSG_ROUTE_CANCEL, "ROUTE_CANCEL", CHAN_FRONT_RULESET, ROLE_FRONT,
	  MSG_FD_NONE, 0, 0 },
	{ MSG_FORWARD_RES, "FORWARD_RES", CHAN_FRONT_RULESET, ROLE_FRONT,
	  MSG_FD_NONE, sizeof(struct msg_result),
	  sizeof(struct msg_result) + 256 },
	{ MSG_RESOLVE_RES, "RESOLVE_RES", CHAN_FRONT_RULESET, ROLE_FRONT,
	  MSG_FD_NONE, sizeof(struct msg_result),
	  sizeof(struct msg_result) + 64 },
	{ MSG_STATS, "STATS", CHAN_FRONT_RULESET, ROLE_FRONT, MSG_FD_NONE,
	  EXACT(struct msg_stats) },
	{ MSG_STATS_REQ, "STATS_REQ", CHAN_FRONT_RULESET, ROLE_RULESET,
	  MSG_FD_NONE, 0, 0 },
	{ MSG_DIAL_RES, "DIAL_RES", CHAN_FRONT_RULESET, ROLE_FRONT,
	  MSG_FD_OPTIONAL, sizeof(struct msg_result),
	  sizeof(struct msg_result) + 200 },
	{ MSG_DIAL_REQ, "DIAL_REQ", CHAN_FRONT_RULESET, ROLE_RULESET,
	  MSG_FD_NONE, sizeof(struct msg_route),
	  sizeof(struct msg_route) + MSG_ROUTE_STRS_MAX },
	{ MSG_DIAL_CANCEL, "DIAL_CANCEL", CHAN_FRONT_RULESET, ROLE_RULESET,
	  MSG_FD_NONE, 0, 0 },
	{ MSG_ROUTE_REPLY, "ROUTE_REPLY", CHAN_FRONT_RULESET, ROLE_RULESET,
	  MSG_FD_NONE, sizeof(struct msg_route),
	  sizeof(struct msg_route) + MSG_ROUTE_STRS_MAX },
	{ MSG_FORWARD_REQ, "FORWARD_REQ", CHAN_FRONT_RULESET, ROLE_RULESET,
	  MSG_FD_NONE, sizeof(struct msg_route),
	  sizeof(struct msg_route) + MSG_ROUTE_STRS_MAX },
	{ MSG_RESOLVE_REQ, "RESOLVE_REQ", CHAN_FRONT_RULESET, ROLE_RULESET,
	  MSG_FD_NONE, 1, 255 },
};

const struct msg_desc *msg_lookup(uint16_t type)
{
	for (size_t i = 0; i < sizeof(msg_table) / sizeof(msg_table[0]); i++)
		if (msg_table[i].type == type)
			return &msg_table[i];
	return NULL;
}

const char *msg_name(uint16_t type)
{
	const struct msg_desc *d = msg_lookup(type);
	return d != NULL ? d->name : "UNKNOWN";
}

const char *role_name(enum role r)
{
	switch (r) {
	case ROLE_PARENT:
		return "main";
	case ROLE_FRONT:
		return "front";
	case ROLE_RULESET:
		return "ruleset";
	default:
		return "?";
	}
}

static const struct msg_ctl msg_ctls[CHAN_COUNT] = {
	[CHAN_PARENT_FRONT] = { MSG_PING, MSG_PONG, MSG_READY },
	[CHAN_PARENT_RULESET] = { MSG_R_PING, MSG_R_PONG, MSG_R_READY },
	[CHAN_FRONT_RULESET] = { 0, 0, 0 },
};

const struct msg_ctl *msg_chan_ctl(enum chan_kind chan)
{
	return &msg_ctls[chan < CHAN_COUNT ? chan : CHAN_FRONT_RULESET];
}

int msg_check(enum chan_kind chan, enum role sender, const struct msg *m,
	      const char **why)
{
	const struct msg_desc *d = msg_lookup(m->type);

	if (d == NULL) {
		*why = "unknown message type";
		return -1;
	}
	if (d->chan != chan || d->sender != sender) {
		*why = "message not permitted from this sender";
		return -1;
	}
	if (m->len < d->minlen || m->len > d->maxlen) {
		*why = "wrong payload size";
		return -1;
	}
	switch (d->fd) {
	case MSG_FD_NONE:
		if (m->fd >= 0 || m->fd_lost) {
			*why = "unexpected file descriptor";
			return -1;
		}
		break;
	case MSG_FD_REQUIRED:
		if (m->fd < 0 && !m->fd_lost) {
			*why = "file descriptor missing";
			return -1;
		}
		break;
	default:
		break;
	}
	return 0;
}

bool msg_module_name_ok(const char *name, size_t len, bool dots)
{
	if (len == 0 || len > MSG_MODULE_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (c == '.' && dots && i > 0 && i + 1 < len &&
		    name[i + 1] != '.')
			continue;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

bool msg_file_name_ok(const char *name, size_t len)
{
	size_t comp = 0; /* length of the component so far */

	if (len == 0 || len > MSG_FILE_NAME_MAX || name[0] == '/')
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? name[i] : '/';

		if (c == '/') {
			if (comp == 0 ||
			    (comp == 2 && name[i - 1] == '.' &&
			     name[i - 2] == '.'))
				return false;
			comp = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		      c == '.' || c == '+'))
			return false;
		comp++;
	}
	return true;
}
