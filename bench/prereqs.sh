#!/bin/sh
# Prerequisites of `make bench`: Debian's ansible-core on this machine, and
# Python's standard library on the fleet hosts. The lab's host image has
# only python3-minimal, which lacks modules Ansible's modules import
# (shutil): the package's files are added to each fleet container, from the
# Debian mirror through apt on this machine. Idempotent.
set -eu
if ! command -v ansible-playbook >/dev/null 2>&1; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y ansible-core
fi
containers=$(docker ps -q --filter label=haplan.lab.role=fleet)
[ -n "$containers" ] || { echo "no fleet: run go run ./cmd/haplab fleet up --hosts 1001" >&2; exit 1; }
deb=
for c in $containers; do
	docker exec "$c" python3 -c 'import shutil, json, tempfile, hashlib' 2>/dev/null && continue
	if [ -z "$deb" ]; then
		dir=$(mktemp -d)
		trap 'rm -rf "$dir"' EXIT
		(cd "$dir" && apt-get download -q libpython3.11-stdlib >/dev/null)
		deb=$(ls "$dir"/*.deb)
	fi
	docker cp "$deb" "$c:/tmp/stdlib.deb"
	docker exec "$c" sh -c 'dpkg -i --force-depends /tmp/stdlib.deb >/dev/null 2>&1; rm -f /tmp/stdlib.deb; python3 -c "import shutil"'
	echo "fleet container $c: python3 standard library installed"
done
