// Package engine turns steps into a plan and a plan into changes.
//
// It knows no resource kinds: a Step (step.go) is a few methods, and the
// engine only orders, bounds and reports them. The lifecycle of one run:
//
//  1. NewGraph checks the steps (unique addresses, known dependencies, no
//     cycle, barrier groups that can be released) and orders them
//     topologically, ties broken by address. Graph.Target narrows it to
//     some steps and everything they depend on. A Graph never changes after
//     it is built, so any goroutine may read it.
//  2. Plan calls every step's Probe concurrently (probes are read-only, so
//     dependency order does not matter), then its Diff, and returns a
//     plans.Plan with a digest of each probed state. A probe that fails
//     because a machine did not answer (an Unreachable error) makes that
//     step's change plans.Unknown instead of failing the plan.
//  3. Apply walks the graph: each step waits for its dependencies, is
//     probed again (read-only) and, if it still needs the planned action,
//     runs Apply with the Change from the plan; a step done meanwhile is
//     Unchanged, one that now needs another action fails with a
//     *DriftError (see Step). Failures skip their
//     dependents, an Unknown change fails without running (and does not
//     stop the checks after it), a barrier group starts all at once or not
//     at all, and Options.Stop and context cancellation give a two-stage
//     interrupt.
//
// # Concurrency
//
// Plan and Apply may be called from any goroutine and block until every
// step they started has returned; they start no goroutine that outlives
// them. While they run, the engine calls from many goroutines at once:
//
//   - each Step's Probe, Diff and Apply, at most once per run, each from its
//     own goroutine, so a Step must not share unsynchronised state with
//     other steps;
//   - Options.Sink, which must therefore be safe for concurrent use
//     (SerialSink makes it so);
//   - Options.Logger (a *slog.Logger is safe for concurrent use).
//
// A global limit (Options.Parallelism) and a per-host limit
// (Options.PerHost, keyed by Step.Host) bound the Probes and Applies
// running at once. A step holds its slots only while its Probe or Apply
// runs, never while it waits for its dependencies. Pending members of a
// barrier group take no slot at all.
//
// A step reports what it is doing with Progress(ctx, ...) on the context it
// was given; the engine turns that into a ProgressReported event stamped
// with the step's address and elapsed time.
package engine
