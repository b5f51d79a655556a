// Package layout names what haplan and Rancher put on the machines: the
// containers, the ports they listen on, the files haplan keeps, and the
// name the load balancer goes by. It is the one definition the steps
// (resources) and the checks (preflight) share; it holds constants only.
package layout

// The name the managed load balancer goes by wherever a machine is named
// (plans, findings, errors): nodes and hosts go by their manifest names.
const LBHost = "lb"

// Containers.
const (
	// Bootstrap is haplan's own bootstrap server, the Rancher server that
	// generates rancher-ha.sh and is removed once it has.
	Bootstrap = "haplan-bootstrap"
	// HA is the container rancher-ha.sh starts on a node; cluster-manager
	// names everything it starts after it, with a "-" (rancher-ha-parent,
	// rancher-ha-zk, ...).
	HA = "rancher-ha"
)

// Ports.
const (
	// BootstrapPort is the bootstrap server's API, published on its
	// node's loopback only.
	BootstrapPort = 8080
	// HAAPIPort is each HA node's own API and UI (and the load balancer's
	// health check).
	HAAPIPort = 18080
)

// OutsidePorts are reached from clients, the load balancer and the node
// itself (81 and 444 are the PROXY-protocol variants of 80 and 443 that
// the management stack's load balancer binds on every node too, rancher
// v1.0.1 server/artifacts/compose/docker-compose.yml).
func OutsidePorts() []int { return []int{22, 80, 81, 443, 444, HAAPIPort} }

// ClusterPorts are reached between nodes: ZooKeeper (2181, 2888, 3888),
// the HA node's Docker (2376) and Redis (6379).
func ClusterPorts() []int { return []int{2181, 2376, 2888, 3888, 6379} }

// Files on the nodes and hosts.
const (
	// Dir is where haplan keeps its own files on a node.
	Dir = "/var/lib/rancher/etc/haplan"
	// Script is the cluster's rancher-ha.sh, the same on every node.
	Script = Dir + "/rancher-ha.sh"
	// ScriptMeta records what the script was generated from.
	ScriptMeta = Dir + "/script.json"
	// Started records which script and image rancher-ha was started from.
	Started = Dir + "/started.json"
	// BootstrapEnv is the bootstrap server's database settings, present
	// only while docker run reads it.
	BootstrapEnv = Dir + "/bootstrap.env"
	// AgentConf is what rancher-ha.sh writes for cluster-manager.
	AgentConf = "/var/lib/rancher/etc/agent.conf"
	// CA is the cluster CA on nodes (written by the server) and on hosts
	// (copied by haplan, mode 0400).
	CA = "/var/lib/rancher/etc/ssl/ca.crt"
)
