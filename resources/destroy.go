package resources

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/transport"
)

// haplan destroy removes what haplan made, in the reverse of the install:
// a backup first; the hosts' registrations (while the API still answers),
// agents and CA; every node's containers and files; the load balancer's
// configuration; the grants; the database only when asked. Each step
// probes first, so a second destroy plans nothing.

// DestroyOptions say what destroy removes beyond what it always does.
type DestroyOptions struct {
	// DropDatabase drops the Rancher database too (a backup is taken first
	// all the same).
	DropDatabase bool
}

// CompileDestroy returns the destroy steps of a cluster.
func CompileDestroy(c *manifests.Cluster, e *Env, o DestroyOptions) []engine.Step {
	var steps []engine.Step
	add := func(s engine.Step) { steps = append(steps, s) }
	backup := addr("destroy.backup", "")
	add(&destroyBackup{base: base{addr: backup, env: e}})
	var hosts []engine.Addr
	for _, h := range c.Hosts {
		a := addr("destroy.host", h.Name)
		hosts = append(hosts, a)
		add(&destroyHost{base: base{addr: a, host: h.Name, deps: []engine.Addr{backup}, env: e}, h: h, dropIdentity: o.DropDatabase})
	}
	var nodes []engine.Addr
	for _, n := range c.Nodes {
		a := addr("destroy.node", n.Name)
		nodes = append(nodes, a)
		add(&destroyNode{base: base{addr: a, host: n.Name, deps: append([]engine.Addr{backup}, hosts...), env: e}, node: n, dropIdentity: o.DropDatabase})
	}
	if c.LoadBalancer.HAProxy != nil {
		add(&destroyLB{base: base{addr: addr("destroy.lb", ""), host: layout.LBHost, deps: nodes, env: e}})
	}
	grants := addr("destroy.grants", "")
	add(&destroyGrants{base: base{addr: grants, deps: nodes, env: e}})
	if o.DropDatabase {
		add(&destroyDatabase{base: base{addr: addr("destroy.database", ""), deps: []engine.Addr{grants}, env: e}})
	}
	return steps
}

// databaseExists asks the server whether the Rancher database is there.
func (e *Env) databaseExists(ctx context.Context) (bool, error) {
	db, err := e.adminDB(ctx)
	if err != nil {
		return false, err
	}
	var name string
	err = db.QueryRowContext(ctx, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", e.c.Database.Name).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, e.dbError("look up database "+e.c.Database.Name, err)
	}
	return true, nil
}

// destroyBackup dumps the database before anything is removed.
type destroyBackup struct{ base }

type existsState struct {
	Exists bool `json:"exists"`
}

func (s *destroyBackup) Probe(ctx context.Context) (engine.State, error) {
	ok, err := s.env.databaseExists(ctx)
	return existsState{ok}, err
}

func (s *destroyBackup) Diff(cur engine.State) plans.Change {
	if !cur.(existsState).Exists {
		return s.change(plans.NoOp, fmt.Sprintf("no database %q to back up", s.env.c.Database.Name))
	}
	return s.change(plans.Create, fmt.Sprintf("back up database %q to .haplan/backups/ next to the manifest first", s.env.c.Database.Name))
}

func (s *destroyBackup) Apply(ctx context.Context, _ plans.Change) error {
	path, err := s.env.BackupTo(ctx, s.env.backupDir(), "pre-destroy")
	if err != nil {
		return err
	}
	engine.Progress(ctx, "database backed up to %s", path)
	return rotateBackups(s.env.backupDir(), s.env.c.Name, "pre-destroy", keepBackups)
}

// destroyHost removes a host's registration (when the API answers), its
// agent and the cluster CA. The agent's identity stays while the database
// does: with it, the machine registering again after a restore of the
// database is the same Rancher host, its labels and history with it.
// --drop-database removes it too (no database knows it any more).
type destroyHost struct {
	base
	h            manifests.Host
	dropIdentity bool
}

type destroyHostState struct {
	Rancher  []string `json:"rancher,omitempty"` // ids of its Rancher hosts
	Agent    bool     `json:"agent"`             // rancher-agent (or, dropping it, its identity) on the machine
	Identity bool     `json:"identity,omitempty"`
	CA       bool     `json:"ca"`
	APIError string   `json:"-"`
}

func (s *destroyHost) Probe(ctx context.Context) (engine.State, error) {
	var st destroyHostState
	if hf, err := s.env.readRegistered(ctx); err == nil {
		for _, ph := range hf.ByName[s.h.Name] {
			st.Rancher = append(st.Rancher, ph.Host.ID)
		}
	} else {
		st.APIError = err.Error()
	}
	r, err := s.env.runner(ctx, hostTarget(s.h))
	if err != nil {
		return nil, err
	}
	out, err := run(ctx, r, fmt.Sprintf("{ docker ps -aq --filter name=^/%s 2>/dev/null | grep -q . && echo AGENT; }; test -e /var/lib/rancher/state && echo STATE; test -e %s && echo CA; true", agentContainer, layout.CA), false)
	if err != nil {
		return nil, err
	}
	words := strings.Fields(out)
	st.Agent = s.h.Register && (slices.Contains(words, "AGENT") || s.dropIdentity && slices.Contains(words, "STATE"))
	st.Identity = s.h.Register && slices.Contains(words, "STATE")
	st.CA = slices.Contains(words, "CA")
	return st, nil
}

func (s *destroyHost) Diff(cur engine.State) plans.Change {
	st := cur.(destroyHostState)
	var what []string
	if len(st.Rancher) > 0 {
		what = append(what, "its Rancher host "+strings.Join(st.Rancher, ", "))
	}
	switch {
	case st.Agent && s.dropIdentity:
		what = append(what, "its agent and identity")
	case st.Agent:
		what = append(what, "its agent")
	}
	if st.CA {
		what = append(what, "the cluster CA")
	}
	if len(what) == 0 {
		return s.change(plans.NoOp, "nothing of the cluster on "+s.h.Name)
	}
	c := s.change(plans.Delete, "remove "+strings.Join(what, ", ")+" from "+s.h.Name)
	if st.Identity && !s.dropIdentity {
		c.Reason += " (its identity, " + agentStateDir + ", stays with the database: restoring a backup brings the same Rancher host back; --drop-database removes it)"
	}
	return c
}

func (s *destroyHost) Apply(ctx context.Context, _ plans.Change) error {
	if api, err := s.env.clusterAPI(ctx); err == nil {
		if hf, err := s.env.readRegistered(ctx); err == nil {
			for _, ph := range hf.ByName[s.h.Name] {
				if err := removeHost(ctx, api, ph.Host, s.env.c.Rancher.Timeouts.Command); err != nil {
					return err
				}
			}
		}
	}
	r, err := s.env.runner(ctx, hostTarget(s.h))
	if err != nil {
		return err
	}
	// The agent only on a host haplan registers: one with register off
	// may carry an agent someone else registered.
	if s.h.Register {
		clean := stopAgent
		if s.dropIdentity {
			clean = cleanAgent
		}
		if err := clean(ctx, r); err != nil {
			return err
		}
	}
	_, err = run(ctx, r, "rm -f "+layout.CA, true)
	return err
}

// destroyNode removes rancher-ha and what cluster-manager started, the
// bootstrap server, and the files haplan and rancher-ha.sh keep.
type destroyNode struct {
	base
	node         manifests.Node
	dropIdentity bool // --drop-database: the node's agent identity too
}

type destroyNodeState struct {
	Containers []string `json:"containers,omitempty"`
	Files      bool     `json:"files"`
}

// nodeFiles are what haplan and the script keep on a node: haplan's
// directory, the script's agent.conf and server.conf, and the CA.
const nodeFiles = "/var/lib/rancher/etc"

func (s *destroyNode) Probe(ctx context.Context) (engine.State, error) {
	r, err := s.env.runner(ctx, nodeTarget(s.node))
	if err != nil {
		return nil, err
	}
	out, err := run(ctx, r, fmt.Sprintf("docker ps -a --format '{{.Names}}' | grep -E '^(%s($|-)|%s$|%s(-state)?$)' || true; test -e %s && echo FILES; true", layout.HA, layout.Bootstrap, agentContainer, nodeFiles), false)
	if err != nil {
		return nil, err
	}
	var st destroyNodeState
	for _, l := range strings.Fields(out) {
		if l == "FILES" {
			st.Files = true
		} else {
			st.Containers = append(st.Containers, l)
		}
	}
	return st, nil
}

func (s *destroyNode) Diff(cur engine.State) plans.Change {
	st := cur.(destroyNodeState)
	if len(st.Containers) == 0 && !st.Files {
		return s.change(plans.NoOp, "nothing of the cluster on "+s.node.Name)
	}
	what := []string{}
	if len(st.Containers) > 0 {
		what = append(what, strings.Join(st.Containers, ", "))
	}
	if st.Files {
		what = append(what, nodeFiles)
	}
	return s.change(plans.Delete, "remove "+strings.Join(what, " and ")+" from "+s.node.Name)
}

func (s *destroyNode) Apply(ctx context.Context, _ plans.Change) error {
	r, err := s.env.runner(ctx, nodeTarget(s.node))
	if err != nil {
		return err
	}
	_, err = run(ctx, r, cleanNode(s.dropIdentity), true)
	return err
}

// cleanNode removes the cluster from a server machine: the rancher-ha
// containers, a bootstrap server, the node's own agent (rancher-agent and
// rancher-agent-state, which the agent cluster-manager launched creates:
// it would go on calling a server that is gone), and nodeFiles
// (rancher-ha.sh and server.conf hold the database password). With
// dropIdentity, the agent's identity too: once the machine's System HA
// host is removed, its agent is deactivated, and the same identity would
// keep the machine from ever becoming a host again; kept, it lets a
// restored database find the node as the same host.
func cleanNode(dropIdentity bool) string {
	line := fmt.Sprintf(`ids=$(docker ps -aq --filter name=^/%s --filter name=^/%s --filter name=^/%s$ --filter name=^/%s-state$); [ -z "$ids" ] || docker rm -f $ids >/dev/null; rm -rf %s`,
		layout.HA, layout.Bootstrap, agentContainer, agentContainer, nodeFiles)
	if dropIdentity {
		line += " " + agentStateDir
	}
	return line
}

// destroyLB replaces haplan's HAProxy configuration by one that serves
// nothing of the cluster.
type destroyLB struct{ base }

type destroyLBState struct {
	Ours bool `json:"ours"` // the configuration is haplan's
}

// releasedHAProxy is the configuration a destroyed cluster leaves: HAProxy
// keeps running and checks, listening nowhere but a loopback port that
// refuses every connection.
func (e *Env) releasedHAProxy() []byte {
	return []byte(fmt.Sprintf(`# Was managed by haplan for cluster %q, which was destroyed.
global
    maxconn 256

defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend haplan_destroyed
    bind 127.0.0.1:65080
    tcp-request connection reject
`, e.c.Name))
}

func (s *destroyLB) Probe(ctx context.Context) (engine.State, error) {
	r, err := s.env.runner(ctx, s.env.lbTarget())
	if err != nil {
		return nil, err
	}
	b, ok, err := transport.ReadFile(ctx, r, s.env.c.LoadBalancer.HAProxy.ConfigPath)
	if err != nil {
		return nil, err
	}
	return destroyLBState{Ours: ok && strings.HasPrefix(string(b), fmt.Sprintf("# Managed by haplan for cluster %q.", s.env.c.Name))}, nil
}

func (s *destroyLB) Diff(cur engine.State) plans.Change {
	if !cur.(destroyLBState).Ours {
		return s.change(plans.NoOp, "haproxy does not serve this cluster's configuration")
	}
	return s.change(plans.Delete, "replace haplan's haproxy configuration by one that serves nothing (80 and 443 close)")
}

func (s *destroyLB) Apply(ctx context.Context, _ plans.Change) error {
	return s.env.installHAProxy(ctx, s.env.releasedHAProxy())
}

// destroyGrants drops the application user at every host the manifest
// granted.
type destroyGrants struct{ base }

type destroyGrantsState struct {
	Hosts []string `json:"hosts,omitempty"`
}

func (s *destroyGrants) Probe(ctx context.Context) (engine.State, error) {
	db, err := s.env.adminDB(ctx)
	if err != nil {
		return nil, err
	}
	var st destroyGrantsState
	for _, h := range s.env.grantHosts() {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM mysql.user WHERE User = ? AND Host = ?", s.env.c.Database.User, h).Scan(&n); err != nil {
			return nil, s.env.dbError("look up the grants", err)
		}
		if n > 0 {
			st.Hosts = append(st.Hosts, h)
		}
	}
	return st, nil
}

func (s *destroyGrants) Diff(cur engine.State) plans.Change {
	st := cur.(destroyGrantsState)
	if len(st.Hosts) == 0 {
		return s.change(plans.NoOp, "no grant of user "+s.env.c.Database.User+" left")
	}
	return s.change(plans.Delete, fmt.Sprintf("drop user %s at %s", s.env.c.Database.User, strings.Join(st.Hosts, ", ")))
}

func (s *destroyGrants) Apply(ctx context.Context, _ plans.Change) error {
	st, err := s.Probe(ctx)
	if err != nil {
		return err
	}
	db, err := s.env.adminDB(ctx)
	if err != nil {
		return err
	}
	for _, h := range st.(destroyGrantsState).Hosts {
		if _, err := db.ExecContext(ctx, fmt.Sprintf("DROP USER %s@%s", quoteString(s.env.c.Database.User), quoteString(h))); err != nil {
			return s.env.dbError(fmt.Sprintf("DROP USER %q@%q", s.env.c.Database.User, h), err)
		}
	}
	return nil
}

// destroyDatabase drops the Rancher database (--drop-database).
type destroyDatabase struct{ base }

func (s *destroyDatabase) Probe(ctx context.Context) (engine.State, error) {
	ok, err := s.env.databaseExists(ctx)
	return existsState{ok}, err
}

func (s *destroyDatabase) Diff(cur engine.State) plans.Change {
	if !cur.(existsState).Exists {
		return s.change(plans.NoOp, fmt.Sprintf("no database %q", s.env.c.Database.Name))
	}
	return s.change(plans.Delete, fmt.Sprintf("drop database %q (--drop-database; the backup is kept)", s.env.c.Database.Name))
}

func (s *destroyDatabase) Apply(ctx context.Context, _ plans.Change) error {
	db, err := s.env.adminDB(ctx)
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(s.env.c.Database.Name)); err != nil {
		return s.env.dbError("DROP DATABASE "+s.env.c.Database.Name, err)
	}
	return nil
}
