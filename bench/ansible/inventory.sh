#!/bin/sh
# inventory.sh FLEET_JSON N FIRST: an INI inventory of N fleet hosts starting
# at host index FIRST (1-based), with the lab's key and the fleet's
# known_hosts under strict checking.
set -eu
exec python3 - "$@" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))
n, first = int(sys.argv[2]), int(sys.argv[3])
hosts = f["hosts"][first - 1:first - 1 + n]
if len(hosts) != n:
    sys.exit("fleet has only %d hosts from %d" % (len(f["hosts"]) - first + 1, first))
print("[fleet]")
for h in hosts:
    print("%s ansible_host=%s" % (h["name"], h["ip"]))
print("[fleet:vars]")
print("ansible_user=root")
print("ansible_ssh_private_key_file=%s" % f["identityFile"])
print("ansible_ssh_common_args='-o StrictHostKeyChecking=yes -o UserKnownHostsFile=%s -o IdentitiesOnly=yes'" % f["knownHostsFile"])
PY
