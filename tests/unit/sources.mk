# Sources each unit test links (pure modules only). One line per test.
UT_SRCS_http1      := src/common/http1.c src/common/base64.c
UT_SRCS_socks_proto := src/front/socks_proto.c src/common/addr.c
UT_SRCS_addr       := src/common/addr.c
UT_SRCS_proxyuri   := src/common/proxyuri.c src/common/addr.c
UT_SRCS_msgchan    := src/common/msgchan.c src/common/msg.c
UT_SRCS_lualibs    := src/ruleset/lib_regex.c src/ruleset/lib_time.c src/ruleset/lib_zlib.c src/ruleset/zbody.c src/common/growbuf.c src/ruleset/lib_marshal.c
UT_SRCS_sandbox    := src/privsep/sandbox.c src/privsep/sandbox_policy.c
UT_SRCS_u32sort    := src/common/u32sort.c
UT_SRCS_config     := src/common/config.c src/common/addr.c src/common/proxyuri.c
UT_SRCS_cli        := src/privsep/cli.c $(UT_SRCS_config)
UT_SRCS_confload   := src/ruleset/confload.c $(UT_SRCS_config)
UT_SRCS_readfile   := src/privsep/readfile.c
UT_SRCS_log        := src/common/log.c
UT_SRCS_http1fwd   := src/common/http1fwd.c src/common/http1.c src/common/base64.c src/common/addr.c
UT_SRCS_chanev     := src/common/chanev.c src/common/msgchan.c src/common/msg.c src/common/log.c
UT_SRCS_api_access := src/ruleset/api_access.c src/common/addr.c src/common/http1.c src/common/base64.c
UT_SRCS_growbuf    := src/common/growbuf.c
