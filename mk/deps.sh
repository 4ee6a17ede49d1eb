#!/bin/sh
# Install the Debian packages a make target needs, or say exactly what to install.
# Usage: mk/deps.sh [check] build|test|bench|doc|fuzz
#   check: never install; name what is missing and fail (a plain make)
set -eu
install=yes
if [ "${1:-}" = check ]; then
	install=no
	shift
fi
build_pkgs="gcc make pkg-config libevent-dev liblua5.4-dev zlib1g-dev libseccomp-dev libcap-dev libssl-dev"
test_pkgs="$build_pkgs libcmocka-dev python3 python3-pytest python3-socks curl proxychains4 microsocks iproute2 procps util-linux valgrind cppcheck openssl"
# the HTTP forward proxy's real clients (tests/integration/test_forward_clients.py)
test_pkgs="$test_pkgs wget git apt-utils python3-websockets chromium"
# the man pages (make man, make install)
doc_pkgs="scdoc"
# make check: the man pages, and systemd-analyze for the units' exposure
test_pkgs="$test_pkgs $doc_pkgs systemd groff-base bsdextrautils"
# SOCKS5 UDP and --tproxy (test_udp.py, test_tproxy_daemon.py): a DNS server
# and client on loopback, nft tproxy rules in the test's namespaces
test_pkgs="$test_pkgs dnsmasq-base python3-dnspython nftables"
# libev4 and libc-ares2: the reference neosocksd's runtime (../shared/peers)
bench_pkgs="$build_pkgs microsocks dante-server tinyproxy procps openssl libev4 libc-ares2"
fuzz_pkgs="$build_pkgs clang libclang-rt-14-dev"
case "${1:-build}" in
build) want=$build_pkgs ;;
test) want=$test_pkgs ;;
bench) want=$bench_pkgs ;;
doc) want=$doc_pkgs ;;
fuzz) want=$fuzz_pkgs ;;
*) echo "usage: $0 [check] build|test|bench|doc|fuzz" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in *"install ok installed"*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0
if [ "$install" = no ]; then
	echo "missing Debian packages:$missing" >&2
	echo "install them with 'make deps' (as root) or: sudo apt-get install -y$missing" >&2
	exit 1
fi
if [ "$(id -u)" != 0 ]; then
	echo "missing Debian packages:$missing" >&2
	echo "install them with: sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
if ! apt-get install -y -q --no-install-recommends $missing >&2; then
	apt-get update -q >&2
	apt-get install -y -q --no-install-recommends $missing >&2
fi
