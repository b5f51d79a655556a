package resources

import (
	"fmt"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/plans"
)

// base carries what every step has: its address, dependencies, host and Env.
type base struct {
	addr engine.Addr
	deps []engine.Addr
	host string
	env  *Env
}

func (b *base) Addr() engine.Addr   { return b.addr }
func (b *base) Deps() []engine.Addr { return b.deps }
func (b *base) Host() string        { return b.host }

// change starts a Change for this step.
func (b *base) change(a plans.Action, reason string, details ...plans.Detail) plans.Change {
	return plans.Change{
		Addr:    string(b.addr),
		Kind:    plans.Kind(string(b.addr)),
		Host:    b.host,
		Action:  a,
		Reason:  reason,
		Details: details,
	}
}

// changed keeps the details whose value differs.
func changed(ds ...plans.Detail) []plans.Detail {
	var out []plans.Detail
	for _, d := range ds {
		if d.Old != d.New {
			out = append(out, d)
		}
	}
	return out
}

func addr(kind, name string) engine.Addr {
	if name == "" {
		return engine.Addr(kind)
	}
	return engine.Addr(kind + "[" + name + "]")
}

// Compile turns a validated cluster into its steps. The table below is the
// whole list of step kinds and how they depend on each other.
func Compile(c *manifests.Cluster, e *Env) ([]engine.Step, error) {
	if len(c.Nodes) == 0 {
		return nil, fmt.Errorf("cluster %q has no nodes", c.Name)
	}
	boot, ok := c.Node(c.Rancher.BootstrapNode)
	if !ok {
		return nil, fmt.Errorf("bootstrap node %q is not a node", c.Rancher.BootstrapNode)
	}
	var steps []engine.Step
	add := func(s ...engine.Step) { steps = append(steps, s...) }

	dbAddr := addr("db.database", "")
	add(&dbDatabase{base: base{addr: dbAddr, env: e}})

	var grants []engine.Addr
	grantFor := map[string]engine.Addr{}
	if len(c.Database.GrantHosts) > 0 {
		for _, h := range c.Database.GrantHosts {
			a := addr("db.grant", h)
			grants = append(grants, a)
			add(&dbGrant{base: base{addr: a, deps: []engine.Addr{dbAddr}, env: e}, grantHost: h})
		}
	} else {
		for _, n := range c.Nodes {
			a := addr("db.grant", n.Name)
			grants = append(grants, a)
			grantFor[n.Name] = a
			add(&dbGrant{base: base{addr: a, deps: []engine.Addr{dbAddr}, env: e}, grantHost: n.Address})
		}
	}

	var lbAddr engine.Addr
	if c.LoadBalancer.HAProxy != nil {
		lbAddr = addr("lb.config", "")
		add(&lbConfig{base: base{addr: lbAddr, host: layout.LBHost, env: e}})
	}

	pulls := map[string]engine.Addr{}
	for _, n := range c.Nodes {
		a := addr("image.pull", n.Name)
		pulls[n.Name] = a
		add(&imagePull{base: base{addr: a, host: n.Name, env: e}, node: n})
	}

	bootRun := addr("bootstrap.run", "")
	add(&bootstrapRun{base: base{addr: bootRun, host: boot.Name, env: e,
		deps: append(append([]engine.Addr{}, grants...), pulls[boot.Name])}, node: boot})

	// An upgrade or a resize: the backup, and the new image on each node,
	// while the old version still runs; a resize's new script from the
	// running cluster (script.generate); machines that left the manifest
	// stopped (ha.retire); then every node stopped (a barrier group, so no
	// stop begins before every upgrading node has its image) before any
	// starts. The backup depends on nothing: a node that does not answer
	// must not hold back the others' steps when there is no upgrade.
	backup := addr("db.backup", "")
	add(&dbBackup{base: base{addr: backup, env: e}})

	gen := addr("script.generate", "")
	add(&scriptGenerate{base: base{addr: gen, deps: []engine.Addr{bootRun, backup}, env: e}, boot: boot})

	stop := addr("bootstrap.stop", "")
	add(&bootstrapStop{base: base{addr: stop, host: boot.Name, deps: []engine.Addr{gen}, env: e}, node: boot})

	retire := addr("ha.retire", "")
	add(&haRetire{base: base{addr: retire, deps: []engine.Addr{backup, gen}, env: e}})
	for _, n := range c.Nodes {
		a := addr("ha.stop", n.Name)
		add(&haStop{base: base{addr: a, host: n.Name, deps: []engine.Addr{backup, pulls[n.Name], gen, retire}, env: e}, node: n})
	}

	var starts []engine.Addr
	for _, n := range c.Nodes {
		a := addr("ha.start", n.Name)
		starts = append(starts, a)
		// Its own stop only: both are barrier groups, so no node starts
		// before every pending stop is done.
		deps := []engine.Addr{gen, stop, pulls[n.Name], addr("ha.stop", n.Name), retire}
		if g, ok := grantFor[n.Name]; ok {
			deps = append(deps, g)
		} else {
			deps = append(deps, grants...)
		}
		add(&haStart{base: base{addr: a, host: n.Name, deps: deps, env: e}, node: n})
	}

	verify := addr("ha.verify", "")
	vdeps := append([]engine.Addr{}, starts...)
	if lbAddr != "" {
		vdeps = append(vdeps, lbAddr)
	}
	add(&haVerify{base: base{addr: verify, deps: vdeps, env: e}})

	// Hosts that left go first: a host renamed in the manifest (or a new
	// one at a departed one's address) registers after the old record is
	// removed, never before it.
	prune := addr("agent.prune", "")
	add(&agentPrune{base: base{addr: prune, deps: []engine.Addr{verify}, env: e}})
	tokens := map[string]*agentToken{}
	for _, h := range c.Hosts {
		ca := addr("cert.distribute", h.Name)
		add(&certDistribute{base: base{addr: ca, host: h.Name,
			deps: []engine.Addr{verify}, env: e}, target: hostTarget(h)})
		if !h.Register {
			continue
		}
		tok, ok := tokens[h.Environment]
		if !ok {
			tok = &agentToken{base: base{addr: addr("agent.token", h.Environment), deps: []engine.Addr{verify}, env: e}, envName: h.Environment}
			tokens[h.Environment] = tok
			add(tok)
		}
		tok.hosts = append(tok.hosts, h.Name)
		add(&agentRegister{base: base{addr: addr("agent.register", h.Name), host: h.Name,
			deps: []engine.Addr{ca, tok.addr, prune}, env: e}, h: h})
	}
	haPruneAddr := addr("ha.prune", "")
	add(&haPrune{base: base{addr: haPruneAddr, deps: []engine.Addr{verify}, env: e}})
	add(&dbPrune{base: base{addr: addr("db.prune", ""), deps: []engine.Addr{haPruneAddr}, env: e}})
	return steps, nil
}
