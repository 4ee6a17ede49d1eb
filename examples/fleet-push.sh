#!/bin/sh
# fleet-push.sh: push a ruleset (or a module) to several neosocksd daemons
# through their REST API, then check that every one of them runs it.
#
#   fleet-push.sh [-m MODULE] [-n] FILE URL...
#     FILE    the ruleset (or, with -m, the module) to push
#     URL     each daemon's API, e.g. http://proxy1.corp:9080
#     -m      push FILE as module MODULE (/ruleset/update?module=MODULE)
#     -n      push nothing: only check that every daemon runs FILE
#
# The admin token is read from $NEOSOCKSD_TOKEN_FILE (default
# /etc/neosocksd/api-admin.token) into a header file only this user can
# read, so that it never appears on a command line. Exit status: 0 when
# every daemon runs FILE, 1 when one does not (or cannot be reached), 2
# for a usage error. See docs/fleet.md.
set -eu

module=
push=yes
while getopts m:n opt; do
	case $opt in
	m) module=$OPTARG ;;
	n) push=no ;;
	*) echo "usage: $0 [-m MODULE] [-n] FILE URL..." >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
if [ $# -lt 2 ]; then
	echo "usage: $0 [-m MODULE] [-n] FILE URL..." >&2
	exit 2
fi
file=$1
shift
token_file=${NEOSOCKSD_TOKEN_FILE:-/etc/neosocksd/api-admin.token}

umask 077
hdr=$(mktemp)
trap 'rm -f "$hdr"' EXIT
printf 'Authorization: Bearer %s\n' "$(cat "$token_file")" >"$hdr"

# what each daemon must report: the sha256 of the bytes pushed
want=$(sha256sum "$file" | cut -d' ' -f1)
label=${module:-(ruleset)}
query=${module:+?module=$module}

if [ "$push" = yes ]; then
	for url in "$@"; do
		if ! curl -fsS -H @"$hdr" --data-binary @"$file" \
			"$url/ruleset/update$query" >/dev/null; then
			echo "$url: push failed" >&2
		fi
	done
fi

bad=0
for url in "$@"; do
	got=$(curl -fsS -H @"$hdr" "$url/metrics" |
		sed -n "s/^neosocksd_ruleset_info{module=\"$label\",sha256=\"\([0-9a-f]*\)\"} 1\$/\1/p") || got=
	if [ "$got" = "$want" ]; then
		echo "$url: ok $label $want"
	else
		echo "$url: runs ${got:-nothing known} for $label, not $want" >&2
		bad=1
	fi
done
exit $bad
