#!/bin/sh
# Create the users sandbox/neosocksd.sysusers declares, when they are
# missing (the daemon started as root runs its children as them). Uses
# systemd-sysusers when installed, else useradd. Needs root.
# Usage: mk/users.sh
set -eu
file=$(cd "$(dirname "$0")/.." && pwd)/sandbox/neosocksd.sysusers
missing=""
for u in $(awk '$1 == "u" { print $2 }' "$file"); do
	getent passwd "$u" >/dev/null || missing="$missing $u"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "missing users:$missing; as root: systemd-sysusers $file" >&2
	exit 1
fi
echo "creating users:$missing" >&2
if command -v systemd-sysusers >/dev/null 2>&1; then
	systemd-sysusers "$file"
else
	for u in $missing; do
		useradd --system --user-group --no-create-home --home-dir / \
			--shell /usr/sbin/nologin --comment "neosocksd" "$u"
	done
fi
for u in $missing; do
	getent passwd "$u" >/dev/null || { echo "could not create $u" >&2; exit 1; }
done
