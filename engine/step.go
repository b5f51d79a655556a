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

// Step is one unit of convergence. The engine calls, per run: Probe
// (read-only, possibly concurrently with other steps' probes) and Diff
// (pure, no I/O) on what Probe returned, which make the plan; then, during
// apply, once all of Deps have been applied and only for a pending change:
//
//  1. Probe and Diff again, read-only (the re-check). If the world now
//     needs no change, Apply is not called (the step is Unchanged); if it
//     needs another action than the planned one (or than a part of it:
//     a planned replace whose removal a dependency did needs only a
//     create), the step fails with a *DriftError and Apply is not called;
//     a Deferred change (plans.Change) takes whatever action is needed then.
//  2. Apply with the planned Change (what the operator approved), on a
//     context where MayChange is true.
//
// So Apply may rely on this: the world, as its Probe sees it a moment
// before, needs exactly the planned kind of action. It converges the step
// to the manifest from what it finds (reading again what it needs: its
// details may differ from the plan's where its dependencies have just
// acted, e.g. the CA that did not exist yet), and never does another kind
// of action than c.Action. Checks (Change.Check) are not re-checked: their
// Apply only reads.
type Step interface {
	Addr() Addr
	// Deps are the steps that must be applied before this one.
	Deps() []Addr
	// Host is the name of the machine the step acts on, for the per-host
	// concurrency cap and for reporting. Empty for steps that act only
	// through local connections (MySQL, HTTP).
	Host() string
	// Probe reads the live state. It must not change anything: its
	// context has MayChange false, and transports then refuse (loudly) a
	// mutating command.
	Probe(ctx context.Context) (State, error)
	// Diff compares the probed state with the manifest. It is pure.
	Diff(cur State) plans.Change
	// Apply makes the world match the manifest by the action c plans. It is
	// called only when c is pending (and the re-check agrees), or for
	// Check steps when a dependency changed something.
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

// Finisher is implemented by barrier members whose group, once something
// upstream of it has changed the world in this run, must still start when
// the walk is stopped (Options.Stop: the first interrupt, a lost lock):
// the HA nodes after an upgrade has stopped them all. Only cancelling the
// context keeps such a group from starting.
type Finisher interface {
	FinishOnceStarted() bool
}
