package engine

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/haplan/haplan/plans"
)

// fake is a Step whose behaviour the test sets field by field.
type fake struct {
	addr     Addr
	deps     []Addr
	host     string
	state    State
	probeErr error
	action   plans.Action
	check    bool
	// apply, when set, is what Apply does; otherwise Apply succeeds.
	apply func(ctx context.Context, c plans.Change) error

	probes, diffs, applies atomic.Int32
	mu                     sync.Mutex
	got                    []plans.Change // changes Apply was called with
}

func (f *fake) Addr() Addr     { return f.addr }
func (f *fake) Deps() []Addr   { return f.deps }
func (f *fake) Host() string   { return f.host }
func (f *fake) String() string { return string(f.addr) }

func (f *fake) Probe(ctx context.Context) (State, error) {
	f.probes.Add(1)
	if f.probeErr != nil {
		return nil, f.probeErr
	}
	return f.state, nil
}

func (f *fake) Diff(cur State) plans.Change {
	f.diffs.Add(1)
	return plans.Change{Action: f.action, Check: f.check, Reason: "fake"}
}

func (f *fake) Apply(ctx context.Context, c plans.Change) error {
	f.applies.Add(1)
	f.mu.Lock()
	f.got = append(f.got, c)
	f.mu.Unlock()
	if f.apply != nil {
		return f.apply(ctx, c)
	}
	return nil
}

// barrierFake is a fake that belongs to a barrier group.
type barrierFake struct {
	*fake
	group string
}

func (b barrierFake) BarrierGroup() string { return b.group }

var _ Step = (*fake)(nil)
var _ Barrier = barrierFake{}

func step(addr Addr, action plans.Action, deps ...Addr) *fake {
	return &fake{addr: addr, deps: deps, action: action, state: map[string]string{"addr": string(addr)}}
}

func mustGraph(t *testing.T, steps ...Step) *Graph {
	t.Helper()
	g, err := NewGraph(steps)
	if err != nil {
		t.Fatalf("NewGraph: %v", err)
	}
	return g
}

func mustPlan(t *testing.T, g *Graph) *plans.Plan {
	t.Helper()
	p, err := Plan(context.Background(), g, Options{})
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return p
}

func addrs(steps []Step) []Addr {
	out := make([]Addr, len(steps))
	for i, s := range steps {
		out[i] = s.Addr()
	}
	return out
}

// gauge counts how many callers are inside a section at once and keeps the
// maximum.
type gauge struct{ cur, max atomic.Int32 }

func (g *gauge) enter() {
	n := g.cur.Add(1)
	for {
		m := g.max.Load()
		if n <= m || g.max.CompareAndSwap(m, n) {
			return
		}
	}
}

func (g *gauge) leave() { g.cur.Add(-1) }

// gate makes steps block inside Apply until the test lets them go: each
// entering step sends on entered, then waits for a token on release (or
// for its context to end, which it reports as the error).
type gate struct {
	entered chan Addr
	release chan struct{}
	inside  gauge
	perHost map[string]*gauge
}

func newGate(hosts ...string) *gate {
	g := &gate{entered: make(chan Addr, 100), release: make(chan struct{}, 100), perHost: map[string]*gauge{}}
	for _, h := range hosts {
		g.perHost[h] = &gauge{}
	}
	return g
}

func (g *gate) hold(f *fake) {
	f.apply = func(ctx context.Context, c plans.Change) error {
		g.inside.enter()
		defer g.inside.leave()
		if h := g.perHost[f.host]; h != nil {
			h.enter()
			defer h.leave()
		}
		g.entered <- f.addr
		select {
		case <-g.release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

var errBoom = errors.New("boom")
