// Package health is what `haplan status` shows: the facts read from a
// running cluster (its nodes, their membership rows, System HA, the hosts
// haplan registered, the database, the certificate), the judgement of
// them (healthy, degraded, down) and their rendering for people and as
// JSON. It reads nothing itself: resources gathers the facts, read-only.
package health

import (
	"cmp"
	"fmt"
	"time"
)

// Report is one look at a cluster.
type Report struct {
	FormatVersion string    `json:"format_version"`
	Cluster       string    `json:"cluster"`
	Checked       time.Time `json:"checked"`
	// Image is the rancher/server image the manifest declares.
	Image string `json:"image"`

	Nodes []Node `json:"nodes"`
	// Members are the rows of cluster-manager's cluster table, read twice
	// a heartbeat apart; MembersErr says why they could not be read.
	Members    []Member `json:"members"`
	MembersErr string   `json:"members_error,omitempty"`
	// SystemHA are System HA's hosts (one per node of a formed cluster).
	SystemHA    []Host `json:"system_ha"`
	SystemHAErr string `json:"system_ha_error,omitempty"`
	// Hosts are the hosts the manifest registers, with what Rancher and
	// the machine say of them.
	Hosts       []RegisteredHost `json:"hosts"`
	HostsErr    string           `json:"hosts_error,omitempty"`
	Database    Database         `json:"database"`
	LB          LB               `json:"load_balancer"`
	Certificate *Certificate     `json:"certificate,omitempty"`

	// Findings are the judgement, most severe first (Evaluate).
	Findings []Finding `json:"findings"`
}

// FormatVersion is the version of the JSON this package writes.
const FormatVersion = "1"

// Node is one HA node as seen over SSH and through its own API.
type Node struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	// Reachable: it answered over SSH. Err says why not, or what else
	// could not be read.
	Reachable bool   `json:"reachable"`
	Container string `json:"container"` // rancher-ha: running, exited, absent
	Image     string `json:"image,omitempty"`
	// API: its own API answered /ping.
	API bool   `json:"api"`
	Err string `json:"error,omitempty"`
}

// Member is a row of the cluster table (cluster-manager v0.1.4 db/db.go).
type Member struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	IP      string `json:"ip"`
	Index   int    `json:"index"`
	Moving  bool   `json:"heartbeat_moving"`
	Master  bool   `json:"master"`
	Counter int64  `json:"heartbeat"`
}

// Host is a Rancher host (System HA or an environment's).
type Host struct {
	ID         string   `json:"id"`
	Hostname   string   `json:"hostname,omitempty"`
	Addresses  []string `json:"addresses,omitempty"`
	State      string   `json:"state"`
	AgentState string   `json:"agent_state,omitempty"`
}

// Healthy: active with its agent connected (agentState null or active).
func (h Host) Healthy() bool {
	return h.State == "active" && (h.AgentState == "" || h.AgentState == "active")
}

// RegisteredHost is a host of the manifest that haplan registers.
type RegisteredHost struct {
	Name        string `json:"name"`
	Environment string `json:"environment"`
	// Rancher is its Rancher host; nil when none carries its label.
	Rancher *Host `json:"rancher,omitempty"`
	// Agent is rancher-agent on the machine: running, exited, absent, or
	// "unknown" when the machine did not answer.
	Agent string `json:"agent"`
}

// Database is the database server as the admin account sees it.
type Database struct {
	Address        string `json:"address"`
	Reachable      bool   `json:"reachable"`
	Connections    int    `json:"connections,omitempty"`
	MaxConnections int    `json:"max_connections,omitempty"`
	Err            string `json:"error,omitempty"`
}

// LB is the load balancer as a client sees it.
type LB struct {
	URL string `json:"url"`
	// Ping: https://<registration URL>/ping answered pong, verified
	// against the cluster CA.
	Ping bool   `json:"ping"`
	Err  string `json:"error,omitempty"`
}

// Certificate is what the load balancer presents.
type Certificate struct {
	Subject  string    `json:"subject"`
	NotAfter time.Time `json:"not_after"`
}

// Severity ranks a Finding.
type Severity int

// The severities, most severe first.
const (
	Down     Severity = iota // the cluster does not serve
	Degraded                 // it serves, but something is missing or failing
	OK
)

func (s Severity) String() string {
	switch s {
	case Down:
		return "down"
	case Degraded:
		return "degraded"
	case OK:
		return "ok"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// MarshalText encodes a severity by name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Finding is one judgement, about one thing.
type Finding struct {
	Severity Severity `json:"severity"`
	Subject  string   `json:"subject"` // "rs2", "database", "h1", "certificate"
	Message  string   `json:"message"`
}

// Verdict is the worst finding's severity; OK without findings.
func (r *Report) Verdict() Severity {
	v := OK
	for _, f := range r.Findings {
		v = min(v, f.Severity)
	}
	return v
}

// CertWarning is how long before its end the certificate is reported:
// cattle's self-signed certificate lasts 1080 days, and replacing it
// means re-registering every host.
const CertWarning = 60 * 24 * time.Hour

// Evaluate fills in the findings from the facts.
func (r *Report) Evaluate(now time.Time) {
	r.Findings = nil
	add := func(s Severity, subject, format string, args ...any) {
		r.Findings = append(r.Findings, Finding{Severity: s, Subject: subject, Message: fmt.Sprintf(format, args...)})
	}
	serving := 0
	for _, n := range r.Nodes {
		switch {
		case !n.Reachable:
			add(Degraded, n.Name, "does not answer over SSH: %s", cmp.Or(n.Err, "no answer"))
		case n.Container != "running":
			add(Degraded, n.Name, "rancher-ha is %s", n.Container)
		case n.Image != r.Image:
			add(Degraded, n.Name, "rancher-ha runs %s, the manifest says %s", n.Image, r.Image)
		case !n.API:
			add(Degraded, n.Name, "rancher-ha runs but its API does not answer: %s", cmp.Or(n.Err, "no answer"))
		default:
			serving++
		}
	}
	quorum := len(r.Nodes)/2 + 1
	if serving < quorum {
		add(Down, "cluster", "%d of %d nodes serve; a cluster of %d needs %d (ZooKeeper quorum)", serving, len(r.Nodes), len(r.Nodes), quorum)
	}
	r.evaluateMembers(add)
	r.evaluateHosts(add)
	switch {
	case !r.Database.Reachable:
		add(Down, "database", "%s does not answer: %s", r.Database.Address, r.Database.Err)
	case r.Database.MaxConnections > 0 && r.Database.Connections*10 >= r.Database.MaxConnections*9:
		add(Degraded, "database", "%d of max_connections %d in use", r.Database.Connections, r.Database.MaxConnections)
	}
	if !r.LB.Ping {
		add(Down, "load balancer", "%s/ping: %s", r.LB.URL, cmp.Or(r.LB.Err, "no pong"))
	}
	if c := r.Certificate; c != nil {
		switch left := c.NotAfter.Sub(now); {
		case left <= 0:
			add(Down, "certificate", "%s expired on %s", c.Subject, c.NotAfter.Format(time.DateOnly))
		case left < CertWarning:
			add(Degraded, "certificate", "%s expires on %s, in %d days", c.Subject, c.NotAfter.Format(time.DateOnly), int(left.Hours()/24))
		}
	}
}

func (r *Report) evaluateMembers(add func(Severity, string, string, ...any)) {
	if r.MembersErr != "" {
		add(Degraded, "membership", "the cluster table could not be read: %s", r.MembersErr)
		return
	}
	masters := 0
	for _, m := range r.Members {
		if !m.Moving {
			add(Degraded, "membership", "member %d (%s) has not heartbeated: a node that stopped, not yet pruned", m.ID, m.IP)
		}
		if m.Master {
			masters++
		}
	}
	if len(r.Members) > 0 && masters == 0 {
		add(Degraded, "membership", "no live member: no master")
	}
	if r.SystemHAErr != "" {
		add(Degraded, "System HA", "its hosts could not be read: %s", r.SystemHAErr)
		return
	}
	healthy := 0
	for _, h := range r.SystemHA {
		if h.Healthy() {
			healthy++
		}
	}
	if healthy < len(r.Nodes) {
		add(Degraded, "System HA", "%d of %d nodes are active hosts with their agent connected", healthy, len(r.Nodes))
	}
}

func (r *Report) evaluateHosts(add func(Severity, string, string, ...any)) {
	if r.HostsErr != "" {
		add(Degraded, "hosts", "the registered hosts could not be read: %s", r.HostsErr)
		return
	}
	for _, h := range r.Hosts {
		switch {
		case h.Rancher == nil:
			add(Degraded, h.Name, "not registered in %q", h.Environment)
		case !h.Rancher.Healthy():
			add(Degraded, h.Name, "Rancher host %s is %s (agent %s)", h.Rancher.ID, h.Rancher.State, cmp.Or(h.Rancher.AgentState, "connected"))
		case h.Agent != "running":
			add(Degraded, h.Name, "rancher-agent is %s on the machine", h.Agent)
		}
	}
}

// UnmarshalText decodes a severity's name.
func (s *Severity) UnmarshalText(b []byte) error {
	for _, v := range []Severity{Down, Degraded, OK} {
		if v.String() == string(b) {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("health: unknown severity %q", b)
}
