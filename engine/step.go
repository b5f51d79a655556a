package engine

import (
	"context"

	"github.com/haplan/haplan/plans"
)

// Addr names a step uniquely within a graph: kind, and for per-host steps
// the host in brackets, e.g. "image.pull[rs1]" or "db.database".
type Addr string

// State is what a step's Probe observed. It must marshal to JSON
// deterministically (the engine digests it for stale-plan detection) and must
// never hold a secret: steps record digests of secret material instead.
type State any

// Step is one unit of convergence. The engine calls, per run:
// Probe once (read-only, possibly concurrently with other steps' probes),
// Diff (pure, no I/O) on what Probe returned, and, during apply, Apply with
// exactly the Change that Diff produced, after all of Deps have been applied.
type Step interface {
	Addr() Addr
	// Deps are the steps that must be applied before this one.
	Deps() []Addr
	// Host is the name of the machine the step acts on, for the per-host
	// concurrency cap and for reporting. Empty for steps that act only
	// through local connections (MySQL, HTTP).
	Host() string
	// Probe reads the live state. It must not change anything: in plan
	// mode it runs behind read-only transports that fail loudly on a
	// mutating command.
	Probe(ctx context.Context) (State, error)
	// Diff compares the probed state with the manifest. It is pure.
	Diff(cur State) plans.Change
	// Apply makes the world match c. It is called only when c is pending,
	// or for Check steps when a dependency changed something.
	Apply(ctx context.Context, c plans.Change) error
}

// Barrier is implemented by steps that must start together with the other
// pending steps of the same group (Rancher's HA nodes must all start within
// about a minute of each other). A barrier group is released when every
// pending member is ready to run, and its members run without taking a slot
// of the global parallelism limit, so they are never starved by it.
type Barrier interface {
	BarrierGroup() string
}
