#!/bin/sh
# Installs and starts what the haplan lab needs on a Debian 12 machine:
# Docker's engine, debootstrap, the OpenSSH client and the MariaDB client.
# Idempotent: installs only what is missing, starts dockerd only if it does
# not answer. Runs without systemd (CI containers have none).
set -eu

missing=""
command -v dockerd >/dev/null 2>&1 || missing="$missing docker.io"
for pkg in debootstrap openssh-client mariadb-client; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
	echo "prereqs: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	# shellcheck disable=SC2086 # word splitting of the package list is intended
	apt-get install -y $missing
fi

if ! docker info >/dev/null 2>&1; then
	echo "prereqs: starting dockerd (log: /var/log/dockerd.log)"
	nohup dockerd >/var/log/dockerd.log 2>&1 </dev/null &
	i=0
	until docker info >/dev/null 2>&1; do
		i=$((i + 1))
		if [ "$i" -gt 60 ]; then
			echo "prereqs: dockerd did not answer within 60 s; see /var/log/dockerd.log" >&2
			exit 1
		fi
		sleep 1
	done
fi
echo "prereqs: ok (docker $(docker version --format '{{.Server.Version}}'))"
