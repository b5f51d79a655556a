// Package manifests loads and validates a haplan manifest (cluster.yaml or
// cluster.hcl) into a Cluster with every default applied.
//
// Both formats are parsed into one format-neutral tree that keeps source
// positions; a single decoder turns it into the Go types below, refusing
// unknown keys (with a "did you mean") and wrong types. Validation works on
// the decoded Cluster and reports value paths such as "nodes[2].address";
// one place (Loader) turns those paths back into file:line:col ranges, so
// YAML and HCL get the same checks and the same quality of positions.
//
// Secrets are references ({env: NAME} or {file: PATH}), checked at load
// time but only read through Secret.Resolve, and their values travel as
// Sensitive, which never prints.
package manifests

import (
	"time"
)

// Defaults applied by the loader.
const (
	DefaultImage = "rancher/server:v1.0.1"
	// DefaultAgentImage and DefaultAgentInstanceImage are the images a
	// v1.0.1 node pulls while the cluster forms (cattle v0.159.7
	// cattle-global.properties: bootstrap.required.image,
	// agent.instance.image).
	DefaultAgentImage              = "rancher/agent:v1.0.1"
	DefaultAgentInstanceImage      = "rancher/agent-instance:v0.8.1"
	DefaultSSHUser                 = "root"
	DefaultSSHPort                 = 22
	DefaultIdentityFile            = "~/.ssh/id_ed25519"
	DefaultKnownHostsFile          = "~/.ssh/known_hosts"
	DefaultHostKeyPolicy           = HostKeyStrict
	DefaultDatabasePort            = 3306
	DefaultDatabaseName            = "cattle"
	DefaultDatabaseUser            = "cattle"
	DefaultHAProxyConfigPath       = "/etc/haproxy/haproxy.cfg"
	DefaultHAProxyReloadCommand    = "service haproxy reload || service haproxy start"
	DefaultBootstrapTimeout        = 20 * time.Minute
	DefaultClusterFormationTimeout = 10 * time.Minute
	DefaultSSHTimeout              = 15 * time.Second
	DefaultCommandTimeout          = 2 * time.Minute
	DefaultPullTimeout             = 30 * time.Minute
	DefaultRegisterTimeout         = 5 * time.Minute
)

// Host key policies.
const (
	// HostKeyStrict refuses hosts whose key is not in known_hosts.
	HostKeyStrict = "strict"
	// HostKeyAcceptNew records unknown hosts' keys and refuses changed ones.
	HostKeyAcceptNew = "accept-new"
)

// Cluster is a loaded, defaulted and validated manifest.
type Cluster struct {
	Name         string
	Rancher      Rancher
	Database     Database
	LoadBalancer LoadBalancer
	Nodes        []Node
	// Hosts are the inline hosts followed by the hostsFile entries.
	Hosts []Host
	// SSH is the manifest's ssh defaults: how a machine the manifest does
	// not list is reached (a host that left it, to be cleaned).
	SSH SSH

	// Path is the manifest file as given to Load; Dir is the directory
	// relative paths in it are resolved against.
	Path, Dir string
	// Digest is the sha256 (hex) of the manifest bytes followed by the
	// hostsFile bytes, if any.
	Digest string

	sources map[string][]byte
}

// Rancher is the rancher/server container's configuration.
type Rancher struct {
	Image string
	// AgentImage and AgentInstanceImage are pre-pulled on every node with
	// Image: the node pulls them at run time otherwise.
	AgentImage, AgentInstanceImage string
	// ImageRegistry, when set, is where the nodes pull those images from
	// ("registry.example.com:5000" or with a path, ".../mirror"): each is
	// pulled as ImageRegistry/IMAGE and tagged IMAGE, so a site without
	// Docker Hub installs from its own registry.
	ImageRegistry       string
	HostRegistrationURL string
	BootstrapNode       string
	// Certificate is nil when the cluster makes its own self-signed CA.
	Certificate *Certificate
	// APIKey is nil while the servers' access control is off.
	APIKey   *APIKey
	Timeouts Timeouts
}

// APIKey is a Rancher account API key pair of an admin, sent with HTTP
// Basic auth on every /v1 request once access control is on. Both parts
// are secrets.
type APIKey struct {
	AccessKey, SecretKey Secret
}

// Certificate is a user-supplied TLS certificate; Key is the secret part.
type Certificate struct {
	Cert, Key, Chain Secret
}

// Timeouts bound the slow phases and every remote command: Pull bounds
// the commands that may pull an image (docker pull, the bootstrap's docker
// run, rancher-ha.sh), Command every other one (a stat, a file write, a
// reload).
type Timeouts struct {
	Bootstrap, ClusterFormation, SSH time.Duration
	Command, Pull                    time.Duration
	// Register bounds the wait for a registered host to be active.
	Register time.Duration
}

// SSH is how haplan reaches one machine: the manifest's defaults with the
// machine's own overrides merged in. Paths are absolute.
type SSH struct {
	User           string
	Port           int
	IdentityFile   string
	KnownHostsFile string
	HostKeyPolicy  string
	// HostKey pins the host's public key (authorized_keys format).
	HostKey string
	// Bastion is an optional jump host, "user@host:port" (user and port
	// optional).
	Bastion string
	// Explicit is the set of fields the manifest wrote, in its ssh
	// defaults or the machine's own ssh block; the others hold built-in
	// defaults, which the operator's ~/.ssh/config may replace.
	Explicit SSHFields
}

// SSHFields is a set of SSH settings.
type SSHFields uint8

// The SSH settings that ~/.ssh/config can also give.
const (
	SSHUser SSHFields = 1 << iota
	SSHPort
	SSHIdentityFile
)

// Has reports whether every field of f2 is in f.
func (f SSHFields) Has(f2 SSHFields) bool { return f&f2 == f2 }

// Database is the external MySQL database the cluster shares.
type Database struct {
	Host     string
	Port     int
	Name     string
	User     string
	Password Secret
	Admin    DBAdmin
	// GrantHosts are the MySQL host patterns granted access; empty means
	// each node's address.
	GrantHosts []string
}

// DBAdmin is the account that creates the database, user and grants.
type DBAdmin struct {
	User     string
	Password Secret
	// Via is how haplan reaches the database as this account: AdminDirect
	// from this machine, AdminViaSSH through a node's SSH connection (MySQL
	// then sees the node's address); empty chooses AdminViaSSH when the
	// nodes are reached through a bastion, else AdminDirect.
	Via string
}

// The ways to reach the database as the admin.
const (
	AdminDirect = "direct"
	AdminViaSSH = "ssh"
)

// LoadBalancer is where clients and hosts reach the cluster.
type LoadBalancer struct {
	Address string
	// HAProxy is nil for an external load balancer haplan only verifies.
	HAProxy *HAProxy
}

// HAProxy is a load balancer haplan configures.
type HAProxy struct {
	ConfigPath, ReloadCommand string
	SSH                       SSH
}

// Node is one Rancher server.
type Node struct {
	Name, Address string
	// ClusterIP is the address other nodes use; defaults to Address.
	ClusterIP string
	SSH       SSH
}

// Host is a machine that joins the cluster: it gets the cluster CA and,
// unless Register is off, is registered as a Rancher host of Environment
// (its agent started with the environment's registration command).
type Host struct {
	// Name defaults to Address.
	Name, Address string
	SSH           SSH
	// Register: run the registration command (default true); false only
	// puts the CA on the machine.
	Register bool
	// Environment is the name of the Rancher environment (project) the
	// host joins; DefaultEnvironment unless set.
	Environment string
	// AgentIP is CATTLE_AGENT_IP, the address the host registers with
	// (behind NAT, with several interfaces); empty: the agent detects it.
	AgentIP string
	// Labels are the host's labels (CATTLE_HOST_LABELS); haplan adds
	// HostLabel.
	Labels map[string]string
}

// DefaultEnvironment is the environment hosts join unless set: the one
// every Rancher server creates for its admin.
const DefaultEnvironment = "Default"

// HostLabel is the label haplan sets on every host it registers, to its
// manifest name: how a later plan finds the Rancher host of a manifest
// entry, and the hosts haplan registered (and may remove).
const HostLabel = "io.haplan.host"

// ReservedLabelPrefix starts the label keys haplan owns.
const ReservedLabelPrefix = "io.haplan."

// Node returns the node with the given name.
func (c *Cluster) Node(name string) (Node, bool) {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// Sources returns the bytes of every file the loader read (the manifest
// and its hostsFile), keyed by the Filename used in diagnostics' ranges:
// pass it to diag.Render. The map is a copy.
func (c *Cluster) Sources() map[string][]byte {
	out := make(map[string][]byte, len(c.sources))
	for k, v := range c.sources {
		out[k] = v
	}
	return out
}
