// Package lab builds and controls haplan's real multi-host lab on one
// machine: a Docker network with real hosts (sshd, their own dockerd), a
// registry that mirrors the stand-in rancher/server image, a MariaDB server
// and an HAProxy host, all reachable by IP from the machine.
//
// Up is idempotent: it reuses the cached host image and running hosts, and
// writes lab/out (SSH key, known_hosts, secrets, cluster.yaml, lab.json).
// Load reads lab/out back so tests in other packages can find the lab, and
// the fault controls (Kill, Start, Partition, Heal, RegenerateHostKey) let
// tests break hosts the way an operator's network would.
//
// Every Docker object the lab creates carries the label haplan.lab=1, and
// Down removes exactly those objects. The lab talks to the Docker daemon
// through the docker CLI, so what it does can be replayed by hand.
package lab
