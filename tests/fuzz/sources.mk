# Sources each fuzz target links (pure modules; fuzz_api stubs the router
# and ruleset_base()). One line per target: tests/fuzz/fuzz_NAME.c.
FZ_SRCS_socks       := src/front/socks_proto.c src/common/addr.c
FZ_SRCS_http1       := src/common/http1.c src/common/base64.c
FZ_SRCS_proxyuri    := src/common/proxyuri.c src/common/addr.c
FZ_SRCS_addr        := src/common/addr.c
FZ_SRCS_msg         := src/common/msgchan.c src/common/msg.c src/common/config.c src/common/route_wire.c src/common/addr.c src/common/proxyuri.c
FZ_SRCS_config_wire := src/common/config.c src/common/addr.c src/common/proxyuri.c
FZ_SRCS_route_wire  := src/common/route_wire.c
FZ_SRCS_unmarshal   := src/ruleset/unmarshal.c
FZ_SRCS_unmarshal_lua := src/ruleset/unmarshal.c src/ruleset/unmarshal_lua.c
FZ_SRCS_marshal     := src/ruleset/lib_marshal.c src/ruleset/unmarshal.c src/ruleset/unmarshal_lua.c
FZ_SRCS_api         := src/ruleset/api_conn.c src/ruleset/api_access.c src/ruleset/zbody.c src/common/growbuf.c src/common/http1.c src/common/base64.c src/common/addr.c src/common/log.c src/common/config.c src/common/proxyuri.c src/ruleset/api_tls.c src/ruleset/tlsconn.c src/common/tlsconf.c
FZ_SRCS_http1fwd    := src/common/http1fwd.c src/common/http1.c src/common/base64.c src/common/addr.c
