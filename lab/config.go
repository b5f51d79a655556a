package lab

import (
	"fmt"
	"net/netip"
	"strconv"
)

// Fixed names and addresses of the lab. They are constants, not options:
// every developer, demo and CI run sees the same lab.
const (
	NetworkName  = "haplan-lab"
	Subnet       = "10.213.0.0/16"
	Gateway      = "10.213.0.1"
	LabelKey     = "haplan.lab"
	RegistryAddr = "127.0.0.1:5000"
	RancherImage = "rancher/server:v1.0.1"
	// NextRancherImage is the release upgrade tests go to; the lab
	// registry serves it too (the same stand-in, another tag).
	NextRancherImage = "rancher/server:v1.0.2"
	// AgentImage is what an HA node pulls at run time (setting
	// bootstrap.required.image); the lab registry serves its stand-in.
	AgentImage = "rancher/agent:v1.0.1"
	// AgentInstanceImage is the network agent image (setting
	// agent.instance.image); haplan pre-pulls it, so the registry has it.
	AgentInstanceImage = "rancher/agent-instance:v0.8.1"
	// agentImageLabel is the label of every container of the agent image
	// (its LABEL, rancher/rancher v1.0.1 agent/Dockerfile).
	agentImageLabel = "io.rancher.container.system=rancher-agent"
	containerPfx    = "haplan-lab-"
	labelRole       = "haplan.lab.role"
	labelName       = "haplan.lab.name"
	labelImage      = "haplan.lab.image"
	labelSpec       = "haplan.lab.spec"
	maxAgentHosts   = 1000
	maxSpares       = 4
)

// Role is what a lab host is for.
type Role string

// The roles of lab hosts.
const (
	RoleRegistry Role = "registry"
	RoleDB       Role = "db"
	RoleLB       Role = "lb"
	RoleNode     Role = "node"  // a Rancher server node: sshd + dockerd
	RoleAgent    Role = "agent" // a host that joins Rancher: sshd + dockerd
	// RoleSpare is a machine like a node (sshd + dockerd) that is not in
	// the lab's manifest: what an operator adds when a cluster grows or a
	// dead node is replaced by a machine at another address.
	RoleSpare Role = "spare"
)

// HasSSH reports whether hosts of this role run sshd.
func (r Role) HasSSH() bool { return r == RoleLB || r.HasDockerd() }

// HasDockerd reports whether hosts of this role run their own dockerd (with
// the lab registry as mirror, /var/lib/docker on a volume): server nodes
// and spares, and agent hosts, where the registration command runs
// rancher/agent.
func (r Role) HasDockerd() bool { return r == RoleNode || r == RoleSpare || r == RoleAgent }

// Host is one container of the lab.
type Host struct {
	Name      string `json:"name"`
	Role      Role   `json:"role"`
	IP        string `json:"ip"`
	Container string `json:"container"`
}

// Options selects the size of the lab.
type Options struct {
	Nodes int // Rancher server nodes: 1, 3 or 5
	Hosts int // agent hosts: 0..1000
	// Spares are machines like nodes outside the manifest, named and
	// addressed after the nodes (rs4, rs5 at 10.213.1.4, .5 with three
	// nodes): 0..maxSpares.
	Spares int
	// Dir is the output directory (lab/out). Empty means DefaultDir().
	Dir string
	// RepoRoot is the module root, where lab/standin/build.sh lives. Empty
	// means the directory found by walking up from Dir.
	RepoRoot string
	// Log receives progress lines; nil discards them.
	Log func(format string, args ...any)
}

// Validate checks the sizes.
func (o Options) Validate() error {
	switch o.Nodes {
	case 1, 3, 5:
	default:
		return fmt.Errorf("nodes must be 1, 3 or 5, not %d: %w", o.Nodes, ErrInvalidOptions)
	}
	if o.Spares < 0 || o.Spares > maxSpares {
		return fmt.Errorf("spares must be 0..%d, not %d: %w", maxSpares, o.Spares, ErrInvalidOptions)
	}
	if o.Hosts < 0 || o.Hosts > maxAgentHosts {
		return fmt.Errorf("hosts must be 0..%d, not %d: %w", maxAgentHosts, o.Hosts, ErrInvalidOptions)
	}
	return nil
}

// ContainerName is the Docker container name of the lab host name.
func ContainerName(name string) string { return containerPfx + name }

// NodeName is the name of server node i (1-based).
func NodeName(i int) string { return "rs" + strconv.Itoa(i) }

// AgentName is the name of agent host i (1-based).
func AgentName(i int) string { return "h" + strconv.Itoa(i) }

// NodeIP is the address of server node i (1-based): 10.213.1.i.
func NodeIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 213, 1, byte(i)}) }

// AgentIP is the address of agent host i (1-based): 10.213.2.1 ..
// 10.213.2.254, then 10.213.3.1 and on, skipping .0 and .255.
func AgentIP(i int) netip.Addr {
	off := i - 1
	return netip.AddrFrom4([4]byte{10, 213, byte(2 + off/254), byte(off%254 + 1)})
}

// Layout returns the hosts of a lab of the given size, in a stable order:
// registry, db, lb, nodes, spares, agent hosts.
func Layout(o Options) []Host {
	hs := []Host{
		{Name: "registry", Role: RoleRegistry, IP: "10.213.0.2"},
		{Name: "db", Role: RoleDB, IP: "10.213.0.3"},
		{Name: "lb", Role: RoleLB, IP: "10.213.0.4"},
	}
	for i := 1; i <= o.Nodes; i++ {
		hs = append(hs, Host{Name: NodeName(i), Role: RoleNode, IP: NodeIP(i).String()})
	}
	for i := o.Nodes + 1; i <= o.Nodes+o.Spares; i++ {
		hs = append(hs, Host{Name: NodeName(i), Role: RoleSpare, IP: NodeIP(i).String()})
	}
	for i := 1; i <= o.Hosts; i++ {
		hs = append(hs, Host{Name: AgentName(i), Role: RoleAgent, IP: AgentIP(i).String()})
	}
	for i := range hs {
		hs[i].Container = ContainerName(hs[i].Name)
	}
	return hs
}
