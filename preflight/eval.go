package preflight

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/haplan/haplan/dockerapi"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/manifests"
)

// Rancher HA's requirements (docs/rancher-1.0-ha.md, sections 2 and 5).
const (
	// connsPerNode is the upstream rule: 50 MySQL connections per node.
	connsPerNode = 50
	// maxClockSkew is the skew above which a clock gets a warning.
	maxClockSkew = 2 * time.Second
	// Memory: upstream asks for 4 GB (8 GB recommended); below 1 GB the
	// server cannot start at all. MemTotal excludes what the kernel
	// reserves, so a "4 GB" machine reports a little less: allow 10%.
	memRecommended = 8 << 30
	memMinimum     = 4 << 30
	memFloor       = 1 << 30
	memSlack       = 0.9
)

// minDocker is the oldest Docker that gets no warning.
func minDocker() []int { return []int{1, 10, 3} }

// haPorts are the node-to-node ports that answer only while rancher-ha
// runs; 2376 is included because the management stack's swarm LB may
// already listen.
func haPorts() []int { return layout.ClusterPorts() }

// evalUDP says what haplan cannot check: UDP 500 and 4500 (IPsec of the
// managed network) between the nodes. A closed UDP port and an open one
// that ignores a probe look the same, so it is reported, never skipped.
func evalUDP(nodes int) Finding {
	if nodes < 2 {
		return Finding{Severity: Info, Check: "udp", Message: "UDP 500 and 4500 between nodes: not needed with one node"}
	}
	return Finding{Severity: Info, Check: "udp",
		Message: "UDP 500 and 4500 between the nodes (IPsec of the managed network) cannot be checked: IPsec does not answer a probe, so open and filtered look the same",
		Hint:    "allow UDP 500 and 4500 between the nodes' cluster addresses in every firewall and security group"}
}

func evalSize(n int) Finding {
	f := Finding{Check: "size", Severity: OK, Message: fmt.Sprintf("%d node(s)", n)}
	if n != 1 && n != 3 && n != 5 {
		f.Severity = Error
		f.Message = fmt.Sprintf("the cluster has %d nodes; Rancher HA runs on 1, 3 or 5", n)
		f.Hint = "ZooKeeper needs an odd quorum: list 1, 3 or 5 nodes"
	}
	return f
}

// clusterManagerAPI is the Engine API version cluster-manager v0.1.4
// (inside rancher/server:v1.0.1) pins its Docker client to
// (docker/docker.go: client.NewClient(..., "v1.22", ...)).
const clusterManagerAPI = "1.22"

func evalDocker(host string, ev dockerapi.EngineVersion) []Finding {
	version := strings.TrimSpace(ev.Version)
	v, ok := parseVersion(version)
	if !ok {
		return []Finding{{Severity: Warning, Check: "docker", Host: host,
			Message: fmt.Sprintf("dockerd answered with an unreadable version %q", version)}}
	}
	msg := "Docker " + version
	if ev.MinAPIVersion != "" {
		msg += fmt.Sprintf(" (Engine API %s to %s)", ev.MinAPIVersion, ev.APIVersion)
	}
	out := []Finding{{Severity: Info, Check: "docker", Host: host, Message: msg}}
	if versionLess(v, minDocker()) {
		out = append(out, Finding{Severity: Warning, Check: "docker", Host: host,
			Message: fmt.Sprintf("Docker %s is older than 1.10.3, the oldest Docker Rancher v1.0.1 supports", version),
			Hint:    "upgrade Docker to 1.10.3 or later"})
	}
	if minAPI, ok := parseVersion(ev.MinAPIVersion); ok {
		if want, _ := parseVersion(clusterManagerAPI); versionLess(want, minAPI) {
			out = append(out, Finding{Severity: Error, Check: "docker", Host: host,
				Message: fmt.Sprintf("Docker %s accepts Engine API %s and later; cluster-manager inside Rancher Server v1.0.1 speaks only API %s, so it cannot create its containers on this node",
					version, ev.MinAPIVersion, clusterManagerAPI),
				Hint: "HA nodes need a dockerd that accepts API 1.22: Docker 1.10.3 to 24.x, or Docker 25.x started with DOCKER_MIN_API_VERSION=1.22 in its environment; Docker 26 and later cannot run Rancher 1.0 HA"})
		}
	}
	return out
}

// evalVersion refuses a downgrade: a node that runs a later release than
// the manifest's has migrated the database's schema to it, and the older
// version cannot run on that schema. Going back is a restore of the
// backup taken before the upgrade.
func evalVersion(host string, c dockerapi.Container, want string) []Finding {
	if c.Status == "absent" || c.Image == want {
		return nil
	}
	have, ok1 := manifests.ServerVersion(c.Image)
	target, ok2 := manifests.ServerVersion(want)
	switch {
	case ok1 && ok2 && target.Less(have):
		return []Finding{{Severity: Error, Check: "version", Host: host,
			Message: fmt.Sprintf("rancher-ha runs %s (Rancher %s); the manifest says %s (%s): a downgrade, which the database's migrated schema does not allow", c.Image, have, want, target),
			Hint:    "set rancher.image back to " + c.Image + ", or restore the backup taken before the upgrade with the older image (haplan restore)"}}
	case ok1 && ok2:
		return []Finding{{Severity: Info, Check: "version", Host: host,
			Message: fmt.Sprintf("upgrade from %s to %s: the Rancher server is down while every node restarts", have, target)}}
	}
	return nil
}

// agentAPI is the Engine API of the docker client the Rancher v1.0.1
// agent runs (rancher v1.0.1 agent/Dockerfile bundles docker-1.6.0, API
// 1.18, which run.sh uses; docker-1.9 is kept beside it).
const agentAPI = "1.18"

// evalHostDocker judges a registered host's Docker: the agent needs Docker
// 1.6 or later (agent/run.sh verify_docker_client_server_version), and a
// daemon that still accepts its client's API 1.18.
func evalHostDocker(host string, ev dockerapi.EngineVersion) []Finding {
	version := strings.TrimSpace(ev.Version)
	v, ok := parseVersion(version)
	if !ok {
		return []Finding{{Severity: Warning, Check: "docker", Host: host,
			Message: fmt.Sprintf("dockerd answered with an unreadable version %q", version)}}
	}
	out := []Finding{{Severity: Info, Check: "docker", Host: host, Message: "Docker " + version + " for the Rancher agent"}}
	if versionLess(v, []int{1, 6}) {
		out = append(out, Finding{Severity: Error, Check: "docker", Host: host,
			Message: fmt.Sprintf("Docker %s is older than 1.6, the oldest the Rancher agent runs on", version),
			Hint:    "upgrade Docker on the host, or set register: false for it"})
	}
	if minAPI, ok := parseVersion(ev.MinAPIVersion); ok {
		if want, _ := parseVersion(agentAPI); versionLess(want, minAPI) {
			out = append(out, Finding{Severity: Error, Check: "docker", Host: host,
				Message: fmt.Sprintf("Docker %s accepts Engine API %s and later; the Rancher v1.0.1 agent's docker client speaks API %s", version, ev.MinAPIVersion, agentAPI),
				Hint:    "start dockerd on the host with DOCKER_MIN_API_VERSION=" + agentAPI + " in its environment (Docker 25 and later), or set register: false for it"})
		}
	}
	return out
}

// portFacts is what one node's ports check read.
type portFacts struct {
	Listeners  []listener
	Containers []dockerapi.Container
}

func (p portFacts) running(name string) bool {
	return slices.ContainsFunc(p.Containers, func(c dockerapi.Container) bool { return c.Name == name })
}

// haRunning reports whether this cluster's rancher-ha container runs.
func (p portFacts) haRunning() bool { return p.running(layout.HA) }

// publisher returns the container publishing host port n.
func (p portFacts) publisher(n int) (string, bool) {
	for _, c := range p.Containers {
		if slices.Contains(c.Ports, n) {
			return c.Name, true
		}
	}
	return "", false
}

// peerListening returns the ports that accept connections from other
// nodes: listeners on a wildcard address or on clusterIP.
func (p portFacts) peerListening(clusterIP string) map[int]bool {
	out := map[int]bool{}
	for _, l := range p.Listeners {
		switch strings.Trim(l.Addr, "[]") {
		case "*", "0.0.0.0", "::", "00000000", "00000000000000000000000000000000", clusterIP:
			out[l.Port] = true
		}
	}
	return out
}

func ours(name string) bool {
	return name == layout.HA || strings.HasPrefix(name, layout.HA+"-") || name == layout.Bootstrap
}

// holder describes who holds a port, for a message.
func (p portFacts) holder(l listener) string {
	var s string
	switch {
	case l.Process != "" && l.PID > 0:
		s = fmt.Sprintf("%s (pid %d)", l.Process, l.PID)
	case l.Process != "":
		s = l.Process
	default:
		s = "an unknown process"
	}
	if c, ok := p.publisher(l.Port); ok {
		s += " for container " + c
	}
	return s
}

// evalPorts checks that the ports Rancher HA needs are free or held by
// this cluster's own containers. A port published by rancher-ha-* or
// haplan-bootstrap is ours; while rancher-ha runs (host networking), any
// process on the node's HA ports is taken to be the cluster's own. Port
// 22 may be held by sshd. On the bootstrap node 8080 must be free unless
// haplan-bootstrap publishes it (or the cluster already runs).
func evalPorts(host string, p portFacts, bootstrap bool) []Finding {
	byPort := map[int][]listener{}
	for _, l := range p.Listeners {
		byPort[l.Port] = append(byPort[l.Port], l)
	}
	ha := p.haRunning()
	foreign := func(n int) (listener, bool) {
		for _, l := range byPort[n] {
			if c, ok := p.publisher(n); ok && ours(c) {
				continue
			}
			if ha {
				continue
			}
			if n == 22 && l.Process == "sshd" {
				continue
			}
			return l, true
		}
		return listener{}, false
	}
	var out, held []Finding
	var free []string
	for _, n := range append(layout.OutsidePorts(), layout.ClusterPorts()...) {
		l, bad := foreign(n)
		if !bad {
			free = append(free, strconv.Itoa(n))
			continue
		}
		held = append(held, Finding{Severity: Error, Check: "ports", Host: host,
			Message: fmt.Sprintf("port %d/tcp is held by %s on %s", n, p.holder(l), l.Addr),
			Hint:    fmt.Sprintf("Rancher HA needs %d/tcp on every node: stop or move what holds it", n)})
	}
	out = append(out, held...)
	if len(held) == 0 {
		msg := "ports " + strings.Join(free, ", ") + " are free"
		if ha {
			msg = "ports " + strings.Join(free, ", ") + " are free or held by this cluster's rancher-ha"
		}
		out = append(out, Finding{Severity: OK, Check: "ports", Host: host, Message: msg})
	}
	if bootstrap {
		out = append(out, evalBootstrapPort(host, p, byPort[layout.BootstrapPort], ha))
	}
	return out
}

func evalBootstrapPort(host string, p portFacts, ls []listener, ha bool) Finding {
	if len(ls) == 0 {
		return Finding{Severity: OK, Check: "bootstrap.port", Host: host, Message: "8080/tcp is free for the bootstrap server"}
	}
	l := ls[0]
	if c, ok := p.publisher(layout.BootstrapPort); ok && c == layout.Bootstrap {
		return Finding{Severity: OK, Check: "bootstrap.port", Host: host,
			Message: "8080/tcp is held by haplan's own " + layout.Bootstrap}
	}
	if ha {
		return Finding{Severity: OK, Check: "bootstrap.port", Host: host,
			Message: fmt.Sprintf("8080/tcp is held by %s while rancher-ha runs", p.holder(l))}
	}
	return Finding{Severity: Error, Check: "bootstrap.port", Host: host,
		Message: fmt.Sprintf("port 8080/tcp is held by %s on %s", p.holder(l), l.Addr),
		Hint:    "the bootstrap server publishes 8080 on the bootstrap node: stop what holds it, or choose another rancher.bootstrapNode"}
}

func evalMemory(host string, total uint64) Finding {
	f := Finding{Check: "memory", Host: host, Severity: OK, Message: formatBytes(total) + " of memory"}
	switch {
	case float64(total) < memSlack*memFloor:
		f.Severity = Warning
		f.Message = fmt.Sprintf("only %s of memory, below the 1 GB the Rancher server needs to start", formatBytes(total))
		f.Hint = "give the node at least 4 GB; 8 GB is recommended"
	case float64(total) < memSlack*memMinimum:
		f.Severity = Warning
		f.Message = fmt.Sprintf("%s of memory, below 4 GB", formatBytes(total))
		f.Hint = "8 GB is recommended for a Rancher server node"
	case float64(total) < memSlack*memRecommended:
		f.Severity = Info
		f.Message = fmt.Sprintf("%s of memory (8 GB is recommended)", formatBytes(total))
	}
	return f
}

func evalClock(host string, skew, uncertainty time.Duration) Finding {
	dir := "ahead of"
	if skew < 0 {
		dir = "behind"
	}
	abs := skew.Abs().Round(time.Millisecond)
	msg := fmt.Sprintf("clock %s %s this machine's (±%s)", abs, dir, uncertainty.Round(time.Millisecond))
	if skew.Abs() > maxClockSkew {
		return Finding{Severity: Warning, Check: "clock", Host: host, Message: msg,
			Hint: "synchronise the clocks (ntpd, chrony or systemd-timesyncd) on every node"}
	}
	return Finding{Severity: OK, Check: "clock", Host: host, Message: msg}
}

// evalClockSpread warns when the nodes disagree among themselves by more
// than maxClockSkew even though each is close enough to this machine.
func evalClockSpread(skews map[string]time.Duration) (Finding, bool) {
	if len(skews) < 2 {
		return Finding{}, false
	}
	names := make([]string, 0, len(skews))
	for n := range skews {
		names = append(names, n)
	}
	slices.Sort(names)
	lo, hi := names[0], names[0]
	for _, n := range names {
		if skews[n] < skews[lo] {
			lo = n
		}
		if skews[n] > skews[hi] {
			hi = n
		}
	}
	spread := skews[hi] - skews[lo]
	if spread <= maxClockSkew {
		return Finding{}, false
	}
	return Finding{Severity: Warning, Check: "clock",
		Message: fmt.Sprintf("the nodes' clocks differ by %s (%s ahead of %s)", spread.Round(time.Millisecond), hi, lo),
		Hint:    "synchronise the clocks (ntpd, chrony or systemd-timesyncd) on every node"}, true
}

// neededConnections is the upstream rule: 50 per node.
func neededConnections(nodes int) int { return connsPerNode * nodes }

func evalMaxConnections(current, nodes int) Finding {
	need := neededConnections(nodes)
	if current >= need {
		return Finding{Severity: OK, Check: "max_connections", Host: "db",
			Message: fmt.Sprintf("max_connections is %d; %d node(s) need at least %d", current, nodes, need)}
	}
	return Finding{Severity: Error, Check: "max_connections", Host: "db",
		Message: fmt.Sprintf("max_connections is %d; %d nodes need at least %d (%d per node)", current, nodes, need, connsPerNode),
		Hint:    fmt.Sprintf("SET GLOBAL max_connections = %d and persist it in my.cnf", need)}
}

// reachTarget is one node-to-node probe.
type reachTarget struct {
	Node, Addr string
	Port       int
}

// evalReach reads the probe script's lines ("ADDR PORT RC") for the
// targets probed from host.
func evalReach(host string, targets []reachTarget, out string) []Finding {
	rc := map[string]int{}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		if n, err := strconv.Atoi(f[2]); err == nil {
			rc[f[0]+" "+f[1]] = n
		}
	}
	var out2, ok []string
	var res []Finding
	for _, t := range targets {
		key := t.Addr + " " + strconv.Itoa(t.Port)
		code, seen := rc[key]
		switch {
		case seen && code == 0:
			ok = append(ok, fmt.Sprintf("%s:%d", t.Node, t.Port))
		case seen && code == 127:
			res = append(res, Finding{Severity: Warning, Check: "reach", Host: host,
				Message: "cannot probe other nodes: neither nc nor bash is installed",
				Hint:    "install netcat (nc) to let haplan check node-to-node ports"})
			return res
		default:
			res = append(res, Finding{Severity: Error, Check: "reach", Host: host,
				Message: fmt.Sprintf("cannot reach %s at %s:%d/tcp", t.Node, t.Addr, t.Port),
				Hint:    "open TCP between the nodes' cluster addresses (firewall, security group, routing)"})
			out2 = append(out2, key)
		}
	}
	if len(out2) == 0 && len(ok) > 0 {
		res = append(res, Finding{Severity: OK, Check: "reach", Host: host,
			Message: "reaches " + strings.Join(ok, ", ")})
	}
	return res
}
