package engine

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/dominikbraun/graph"
	"github.com/haplan/haplan/internal/didyoumean"
)

// Graph is an immutable DAG of steps. Edges point from a dependency to its
// dependent. A Graph is safe for concurrent use by many goroutines: nothing
// in it changes after NewGraph returns.
type Graph struct {
	g          graph.Graph[Addr, Step]
	order      []Addr // topological, ties broken by address
	index      map[Addr]int
	steps      map[Addr]Step
	deps       map[Addr][]Addr // sorted, deduplicated
	dependents map[Addr][]Addr // sorted
}

// NewGraph builds the graph of steps. It reports, as *GraphError values
// joined together, every duplicate address and every dependency on an
// unknown address; if there are none, the first dependency cycle (named in
// order) or a barrier group that could never be released.
func NewGraph(steps []Step) (*Graph, error) {
	dg := graph.New(func(s Step) Addr { return s.Addr() }, graph.Directed())
	g := &Graph{
		g:          dg,
		steps:      make(map[Addr]Step, len(steps)),
		deps:       make(map[Addr][]Addr, len(steps)),
		dependents: make(map[Addr][]Addr, len(steps)),
	}
	var errs []error
	unique := make([]Step, 0, len(steps))
	for _, s := range steps {
		a := s.Addr()
		if _, dup := g.steps[a]; dup {
			errs = append(errs, &GraphError{Err: ErrDuplicateAddr, Addrs: []Addr{a}})
			continue
		}
		if err := dg.AddVertex(s); err != nil {
			return nil, fmt.Errorf("add step %s: %w", a, err)
		}
		g.steps[a] = s
		unique = append(unique, s)
	}
	for _, s := range unique {
		a := s.Addr()
		deps := slices.Clone(s.Deps())
		slices.Sort(deps)
		deps = slices.Compact(deps)
		for _, d := range deps {
			if _, ok := g.steps[d]; !ok {
				errs = append(errs, &GraphError{Err: ErrUnknownDep, Addrs: []Addr{a, d}})
				continue
			}
			if err := dg.AddEdge(d, a); err != nil {
				return nil, fmt.Errorf("add edge %s -> %s: %w", d, a, err)
			}
		}
		g.deps[a] = deps
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	preds, err := dg.PredecessorMap()
	if err != nil {
		return nil, fmt.Errorf("graph: %w", err)
	}
	adj, err := dg.AdjacencyMap()
	if err != nil {
		return nil, fmt.Errorf("graph: %w", err)
	}
	for a := range g.steps {
		g.deps[a] = sortedKeys(preds[a])
		g.dependents[a] = sortedKeys(adj[a])
	}
	order, cycle := topoSort(g.sortedAddrs(), func(a Addr) []Addr { return g.deps[a] })
	if cycle != nil {
		return nil, &GraphError{Err: ErrCycle, Addrs: cycle}
	}
	g.order = order
	g.index = make(map[Addr]int, len(order))
	for i, a := range order {
		g.index[a] = i
	}
	if err := g.checkBarriers(); err != nil {
		return nil, err
	}
	return g, nil
}

// Steps returns every step in topological order, ties broken by address.
func (g *Graph) Steps() []Step {
	out := make([]Step, len(g.order))
	for i, a := range g.order {
		out[i] = g.steps[a]
	}
	return out
}

// Len is the number of steps.
func (g *Graph) Len() int { return len(g.order) }

// Step returns the step with address a.
func (g *Graph) Step(a Addr) (Step, bool) {
	s, ok := g.steps[a]
	return s, ok
}

// Deps returns the direct dependencies of a, sorted by address.
func (g *Graph) Deps(a Addr) []Addr { return slices.Clone(g.deps[a]) }

// Dependents returns the steps that depend directly on a, sorted by address.
func (g *Graph) Dependents(a Addr) []Addr { return slices.Clone(g.dependents[a]) }

// Target returns the subgraph of the steps whose address matches any of
// the patterns (path.Match syntax with brackets taken literally, since
// addresses contain them: "cert.distribute[*]", "ha.start[rs2]", "image.*")
// plus everything they transitively depend on, like terraform -target,
// and every other member of a barrier group a kept step belongs to (with
// its dependencies): groups start whole or not at all. A pattern that
// matches nothing, or is malformed, is an error naming it.
func (g *Graph) Target(patterns []string) (*Graph, error) {
	keep := make(map[Addr]bool)
	var errs []error
	for _, p := range patterns {
		// Addresses use brackets for the host, so brackets in a pattern
		// are literal: "ha.start[rs2]" names a step, not a character class.
		glob := strings.NewReplacer("[", `\[`, "]", `\]`).Replace(p)
		if _, err := path.Match(glob, ""); err != nil {
			errs = append(errs, &GraphError{Err: err, Pattern: p})
			continue
		}
		matched := false
		for _, a := range g.order {
			if ok, _ := path.Match(glob, string(a)); ok {
				matched = true
				g.closure(a, keep)
			}
		}
		if !matched {
			errs = append(errs, &GraphError{Err: ErrNoMatch, Pattern: p, Hint: g.noMatchHint(p)})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	g.wholeGroups(keep)
	var steps []Step
	for _, a := range g.order {
		if keep[a] {
			steps = append(steps, g.steps[a])
		}
	}
	return NewGraph(steps)
}

// wholeGroups adds to keep every member of a barrier group one of whose
// members it holds, with what they depend on, until nothing changes: a
// target never splits a group (an upgrade must never start one node on
// the new version while the others run the old one).
func (g *Graph) wholeGroups(keep map[Addr]bool) {
	for changed := true; changed; {
		changed = false
		groups := map[string]bool{}
		for a := range keep {
			if b, ok := g.steps[a].(Barrier); ok {
				groups[b.BarrierGroup()] = true
			}
		}
		for _, a := range g.order {
			if b, ok := g.steps[a].(Barrier); ok && groups[b.BarrierGroup()] && !keep[a] {
				g.closure(a, keep)
				changed = true
			}
		}
	}
}

// closure adds a and everything it transitively depends on to keep.
func (g *Graph) closure(a Addr, keep map[Addr]bool) {
	if keep[a] {
		return
	}
	keep[a] = true
	for _, d := range g.deps[a] {
		g.closure(d, keep)
	}
}

func (g *Graph) sortedAddrs() []Addr {
	out := make([]Addr, 0, len(g.steps))
	for a := range g.steps {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// topoSort orders nodes (given sorted) so that every node follows its deps,
// always taking the smallest ready address next (Kahn's algorithm with an
// ordered ready set). The library's StableTopologicalSort breaks ties level
// by level instead, which is deterministic but harder to explain. When the
// nodes do not form a DAG it returns the first cycle instead, in dependency
// order ("a depends on b depends on a" is [a b a]), rotated to start at its
// smallest address.
func topoSort(nodes []Addr, deps func(Addr) []Addr) (order, cycle []Addr) {
	waiting := make(map[Addr]int, len(nodes))
	dependents := make(map[Addr][]Addr, len(nodes))
	var ready []Addr
	for _, n := range nodes {
		ds := deps(n)
		waiting[n] = len(ds)
		for _, d := range ds {
			dependents[d] = append(dependents[d], n)
		}
		if len(ds) == 0 {
			ready = append(ready, n)
		}
	}
	for len(ready) > 0 {
		n := ready[0]
		ready = ready[1:]
		order = append(order, n)
		for _, m := range dependents[n] {
			waiting[m]--
			if waiting[m] == 0 {
				i, _ := slices.BinarySearch(ready, m)
				ready = slices.Insert(ready, i, m)
			}
		}
	}
	if len(order) == len(nodes) {
		return order, nil
	}
	// Every node left over waits for at least one other left-over node, so
	// following the smallest such dependency must come back on itself.
	left := func(n Addr) bool { return waiting[n] > 0 }
	var start Addr
	for _, n := range nodes {
		if left(n) {
			start = n
			break
		}
	}
	seen := make(map[Addr]int)
	var walk []Addr
	for n := start; ; {
		if i, ok := seen[n]; ok {
			walk = walk[i:]
			break
		}
		seen[n] = len(walk)
		walk = append(walk, n)
		for _, d := range deps(n) {
			if left(d) {
				n = d
				break
			}
		}
	}
	least := 0
	for i, n := range walk {
		if n < walk[least] {
			least = i
		}
	}
	cycle = append(slices.Clone(walk[least:]), walk[:least]...)
	return nil, append(cycle, cycle[0])
}

// checkBarriers refuses graphs in which a barrier group could never be
// released: contract each group into one node, named "barrier(group)", and
// look for a cycle. A member that depends on a member of its own group,
// directly or through other steps, becomes a cycle through the group's
// node. Every step that implements Barrier counts, pending or not, so a
// graph that passes can be applied with any plan.
func (g *Graph) checkBarriers() error {
	node := func(a Addr) Addr {
		if b, ok := g.steps[a].(Barrier); ok {
			return Addr("barrier(" + b.BarrierGroup() + ")")
		}
		return a
	}
	deps := make(map[Addr][]Addr)
	var nodes []Addr
	for _, a := range g.order {
		n := node(a)
		if _, ok := deps[n]; !ok {
			nodes = append(nodes, n)
			deps[n] = nil
		}
		for _, d := range g.deps[a] {
			deps[n] = append(deps[n], node(d))
		}
	}
	if len(nodes) == len(g.order) {
		return nil // no group has more than one member
	}
	slices.Sort(nodes)
	for n := range deps {
		slices.Sort(deps[n])
		deps[n] = slices.Compact(deps[n])
	}
	_, cycle := topoSort(nodes, func(n Addr) []Addr { return deps[n] })
	if cycle == nil {
		return nil
	}
	group := ""
	for _, n := range cycle {
		if s, ok := strings.CutPrefix(string(n), "barrier("); ok {
			group = strings.TrimSuffix(s, ")")
			break
		}
	}
	return &GraphError{Err: ErrBarrierOrder, Group: group, Addrs: cycle}
}

func sortedKeys[V any](m map[Addr]V) []Addr {
	out := make([]Addr, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// noMatchHint says what a target that matches nothing could have meant:
// the closest step kind (with the pattern's host part), or the hosts that
// a matching kind has steps on.
func (g *Graph) noMatchHint(p string) string {
	kind, host, _ := strings.Cut(p, "[")
	hosts := map[string][]string{}
	var kinds []string
	for _, a := range g.order {
		k, h, _ := strings.Cut(string(a), "[")
		if _, seen := hosts[k]; !seen {
			kinds = append(kinds, k)
		}
		if h != "" {
			hosts[k] = append(hosts[k], strings.TrimSuffix(h, "]"))
		}
	}
	glob := strings.NewReplacer("[", `\[`, "]", `\]`).Replace(kind)
	var matching []string
	for _, k := range kinds {
		if ok, _ := path.Match(glob, k); ok {
			matching = append(matching, k)
		}
	}
	switch {
	case len(matching) == 0:
		if s := didyoumean.Closest(kind, kinds); s != "" {
			if host != "" {
				s += "[" + host
			}
			return fmt.Sprintf("did you mean %q?", s)
		}
		return "steps are KIND[HOST], e.g. " + string(g.order[0]) + "; every step on a host: '*[h12]'"
	case len(matching) == 1 && len(hosts[matching[0]]) > 0:
		return fmt.Sprintf("%s steps are on %s", matching[0], strings.Join(hosts[matching[0]], ", "))
	}
	return "every step on a host: '*[h12]'"
}
