package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/haplan/haplan/plans"
)

// Apply carries out plan p over graph g. Every step runs in its own
// goroutine, which waits for its dependencies to finish without holding any
// slot, then takes a slot of the step's host and a global slot only around
// Apply. Each step is given exactly the Change planned for it in p, once a
// re-check (Probe and Diff again) confirms the world still needs that
// action (see Step).
//
//   - A step whose change is not pending is Unchanged; its dependents go on.
//     So is one the re-check finds done; one it finds needing another
//     action fails with a *DriftError. Barrier members are re-checked
//     before their group is released, so one that drifted (or whose
//     re-check failed) skips the whole group.
//   - A check (Change.Check) runs only when something it transitively
//     depends on applied a pending change in this run; otherwise Unchanged.
//   - When a step fails, everything that depends on it is Skipped, naming
//     the failed step; independent branches go on.
//   - A step whose change is Unknown (not probed: its host did not answer)
//     fails at once with a *NotProbedError, whatever is upstream; its
//     dependents are Skipped, except checks, which it does not stop (it
//     changed nothing they verify). In a barrier group it makes
//     every other member Skipped, naming it: a group never starts without
//     a member (a cluster started on fewer nodes than planned never forms,
//     and an upgrade must never leave old and new versions on one DB).
//   - The pending members of a barrier group are released together once all
//     of them have their dependencies done, and run without taking any slot,
//     global or per-host, so the limits can neither starve nor split the
//     group. If a dependency of any member failed, every member is Skipped:
//     a group never starts partially.
//   - Once opts.Stop is closed no step starts; running steps finish and the
//     rest are NotStarted. Cancelling ctx also cancels the running steps.
//
// A plan that does not list exactly the steps of g is refused before
// anything runs (*PlanMismatchError). Otherwise the Result covers every step
// and the error joins a *StepError for each failure, plus ErrInterrupted if
// any step did not start.
func Apply(ctx context.Context, g *Graph, p *plans.Plan, opts Options) (*Result, error) {
	changes, err := matchPlan(g, p)
	if err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	w := &walker{
		opts:  opts,
		slots: newSlots(g, opts),
		nodes: make(map[Addr]*node, g.Len()),
	}
	groups := make(map[string]*barrierGroup)
	for _, s := range g.Steps() {
		n := &node{step: s, change: changes[s.Addr()], done: make(chan struct{})}
		n.res = StepResult{Addr: s.Addr(), Host: s.Host(), Change: n.change}
		if b, ok := s.(Barrier); ok && n.change.Pending() {
			name := b.BarrierGroup()
			if groups[name] == nil {
				groups[name] = &barrierGroup{name: name, release: make(chan struct{})}
			}
			if n.change.Action == plans.Unknown {
				// It fails on its own, and a group never starts
				// partially: the others are skipped because of it.
				if a := s.Addr(); groups[name].unknown == "" || a < groups[name].unknown {
					groups[name].unknown = a
				}
			} else {
				n.group = groups[name]
				n.group.size++
			}
		}
		w.nodes[s.Addr()] = n
	}
	for _, s := range g.Steps() {
		for _, d := range g.Deps(s.Addr()) {
			w.nodes[s.Addr()].deps = append(w.nodes[s.Addr()].deps, w.nodes[d])
		}
	}

	var wg sync.WaitGroup
	for _, n := range w.nodes {
		wg.Go(func() { w.run(ctx, n) })
	}
	wg.Wait()

	res := &Result{Steps: make([]StepResult, 0, g.Len())}
	var errs []error
	interrupted := false
	for _, s := range g.Steps() {
		r := w.nodes[s.Addr()].res
		res.Steps = append(res.Steps, r)
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
		interrupted = interrupted || r.Status == StatusNotStarted
	}
	if interrupted {
		errs = append(errs, ErrInterrupted)
	}
	return res, errors.Join(errs...)
}

// matchPlan indexes p's changes by address and checks that they cover
// exactly the steps of g.
func matchPlan(g *Graph, p *plans.Plan) (map[Addr]plans.Change, error) {
	if p == nil {
		return nil, &PlanMismatchError{Missing: slices.Clone(g.order)}
	}
	changes := make(map[Addr]plans.Change, len(p.Changes))
	var e PlanMismatchError
	for _, c := range p.Changes {
		a := Addr(c.Addr)
		if _, dup := changes[a]; dup {
			e.Duplicate = append(e.Duplicate, a)
			continue
		}
		changes[a] = c
		if _, ok := g.Step(a); !ok {
			e.Extra = append(e.Extra, a)
		}
	}
	for _, a := range g.order {
		if _, ok := changes[a]; !ok {
			e.Missing = append(e.Missing, a)
		}
	}
	if len(e.Missing)+len(e.Extra)+len(e.Duplicate) > 0 {
		slices.Sort(e.Extra)
		slices.Sort(e.Duplicate)
		return nil, &e
	}
	return changes, nil
}

type walker struct {
	opts  Options
	slots *slots
	nodes map[Addr]*node // read-only once the goroutines start
}

// node is one step's state during a walk. Its goroutine writes res, cause
// and touched, then closes done; other goroutines read them only after
// done is closed.
type node struct {
	step   Step
	change plans.Change
	deps   []*node
	group  *barrierGroup // nil unless a pending barrier member
	done   chan struct{}

	res       StepResult
	rechecked bool         // a barrier member re-checked before the group's release
	now       plans.Change // what the re-check found, when rechecked
	cause     Addr         // the failed step, when Failed (itself) or Skipped
	touched   bool         // this step or something upstream applied a pending change
	notProbed bool         // Failed because its change was Unknown
}

// verdict is what a step's dependencies allow.
type verdict struct {
	cause      Addr // a failed step upstream: skip
	notStarted bool // something upstream did not start: do not start
}

func (w *walker) run(ctx context.Context, n *node) {
	defer close(n.done)
	var v verdict
	for _, d := range n.deps { // sorted by address, so the cause is stable
		<-d.done
		switch d.res.Status {
		case StatusFailed, StatusSkipped:
			if n.change.Check && d.notProbed {
				// Nothing was done there, so it changed nothing the check
				// would verify; whether the check runs depends on the rest.
				continue
			}
			if v.cause == "" {
				v.cause = d.cause
			}
		case StatusNotStarted:
			v.notStarted = true
		}
		n.touched = n.touched || d.touched
	}
	if n.change.Action == plans.Unknown {
		// Its own host did not answer: that, not what is upstream, is
		// why it is not applied.
		if w.stopped(ctx) {
			w.finish(n, StatusNotStarted, "", "")
			return
		}
		w.fail(n, &NotProbedError{Reason: n.change.Reason})
		n.notProbed = true
		return
	}
	if n.group != nil {
		stopped := w.stopped(ctx)
		if f, ok := n.step.(Finisher); ok && f.FinishOnceStarted() && n.touched {
			stopped = ctx.Err() != nil // committed: only a cancel holds it back
		}
		// A member is re-checked before the group is released, so that
		// one that drifted stops the whole group: it never starts
		// partially.
		failed := false
		if v.cause == "" && !v.notStarted && !stopped {
			failed = w.recheckMember(ctx, n)
			if failed {
				v.cause = n.step.Addr()
			}
		}
		v = n.group.arrive(w, n, v, stopped)
		if failed {
			return
		}
	}
	switch {
	case v.cause != "":
		msg := "upstream failed: " + string(v.cause)
		if n.group != nil {
			msg += fmt.Sprintf(" (barrier group %q)", n.group.name)
		}
		w.finish(n, StatusSkipped, v.cause, msg)
		return
	case v.notStarted:
		w.finish(n, StatusNotStarted, "", "")
		return
	case !n.change.Pending() && !(n.change.Check && n.touched):
		w.finish(n, StatusUnchanged, "", "")
		return
	}
	if n.group == nil {
		host := n.step.Host()
		if w.stopped(ctx) || !w.slots.acquire(ctx, w.opts.Stop, host) {
			w.finish(n, StatusNotStarted, "", "")
			return
		}
		defer w.slots.release(host)
		// A slot may come free in the same instant as Stop closes.
		if w.stopped(ctx) {
			w.finish(n, StatusNotStarted, "", "")
			return
		}
	}
	w.apply(ctx, n)
}

// stopped reports whether no new step may start.
func (w *walker) stopped(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	select {
	case <-w.opts.Stop:
		return true
	default:
		return false
	}
}

func (w *walker) apply(ctx context.Context, n *node) {
	addr, host := n.step.Addr(), n.step.Host()
	r := &reporter{sink: w.opts.Sink, addr: addr, host: host, phase: PhaseApply, change: &n.change, start: time.Now()}
	r.emit(ApplyStarted, "", nil)
	w.opts.Logger.DebugContext(ctx, "apply started", "addr", addr, "host", host, "action", n.change.Action, "check", n.change.Check)

	now, err := n.now, error(nil)
	if !n.rechecked {
		now, err = w.recheck(ctx, n, r)
	}
	if err == nil && !now.Pending() && n.change.Pending() {
		// Done meanwhile (by hand, or by an earlier run cut short):
		// nothing left to do.
		n.res.Elapsed = time.Since(r.start)
		n.res.Status = StatusUnchanged
		r.emit(ApplyFinished, "nothing to do any more: "+now.Reason, nil)
		w.opts.Logger.DebugContext(ctx, "apply found nothing to do", "addr", addr, "reason", now.Reason)
		return
	}
	if err == nil {
		err = n.step.Apply(withChange(withReporter(ctx, r)), n.change)
	}
	n.res.Elapsed = time.Since(r.start)
	if err != nil {
		n.res.Status = StatusFailed
		n.res.Err = &StepError{Addr: addr, Host: host, Phase: PhaseApply, Err: err}
		n.cause = addr
		r.emit(ApplyFailed, "", err)
		w.opts.Logger.DebugContext(ctx, "apply failed", "addr", addr, "elapsed", n.res.Elapsed, "err", err)
		return
	}
	n.res.Status = StatusApplied
	n.touched = n.touched || n.change.Pending()
	r.emit(ApplyFinished, "", nil)
	w.opts.Logger.DebugContext(ctx, "apply finished", "addr", addr, "elapsed", n.res.Elapsed)
}

// recheckMember re-checks a pending barrier member before its group is
// released. It reports whether the member failed (recorded, with its
// ApplyFailed event); otherwise apply uses what it found.
func (w *walker) recheckMember(ctx context.Context, n *node) bool {
	r := &reporter{sink: w.opts.Sink, addr: n.step.Addr(), host: n.step.Host(), phase: PhaseApply, change: &n.change, start: time.Now()}
	now, err := w.recheck(ctx, n, r)
	if err != nil {
		w.fail(n, err)
		return true
	}
	n.rechecked, n.now = true, now
	return false
}

// fail records a step that failed without running Apply.
func (w *walker) fail(n *node, err error) {
	addr, host := n.step.Addr(), n.step.Host()
	n.res.Status = StatusFailed
	n.res.Err = &StepError{Addr: addr, Host: host, Phase: PhaseApply, Err: err}
	n.cause = addr
	r := &reporter{sink: w.opts.Sink, addr: addr, host: host, phase: PhaseApply, change: &n.change, start: time.Now()}
	r.emit(ApplyFailed, "", err)
	w.opts.Logger.Debug("step failed before its Apply", "addr", addr, "err", err)
}

// finish records the outcome of a step that did not run Apply.
func (w *walker) finish(n *node, s Status, cause Addr, msg string) {
	n.res.Status = s
	n.res.Cause = cause
	n.cause = cause
	r := &reporter{sink: w.opts.Sink, addr: n.step.Addr(), host: n.step.Host(), phase: PhaseApply, change: &n.change}
	switch s {
	case StatusSkipped:
		r.emit(Skipped, msg, nil)
	case StatusNotStarted:
		r.emit(NotStarted, msg, nil)
	}
	w.opts.Logger.Debug("step not applied", "addr", n.step.Addr(), "status", s, "cause", cause)
}

// barrierGroup releases its pending members together. Each member's
// goroutine arrives once its dependencies are done; the last to arrive
// decides for all of them and opens release.
type barrierGroup struct {
	name    string
	size    int  // set before the walk starts
	unknown Addr // a pending member that was not probed; set before the walk starts
	release chan struct{}

	mu       sync.Mutex
	arrived  int
	cause    Addr
	stopped  bool
	decision verdict // written before release is closed
}

// arrive reports a member's verdict and blocks until every member has
// arrived, then returns the group's verdict: skip them all if any member has
// a failed dependency, start none if any cannot start, else run them all.
func (b *barrierGroup) arrive(w *walker, n *node, v verdict, stopped bool) verdict {
	b.mu.Lock()
	b.arrived++
	if b.cause == "" && b.unknown != "" {
		b.cause = b.unknown
	}
	if v.cause != "" && (b.cause == "" || v.cause < b.cause) {
		b.cause = v.cause
	}
	b.stopped = b.stopped || v.notStarted
	arrived := b.arrived
	if arrived == b.size {
		b.decision = verdict{cause: b.cause, notStarted: b.stopped || stopped}
		close(b.release)
	}
	b.mu.Unlock()

	if arrived < b.size {
		r := &reporter{sink: w.opts.Sink, addr: n.step.Addr(), host: n.step.Host(), phase: PhaseApply, change: &n.change}
		r.emit(Waiting, fmt.Sprintf("waiting for barrier group %q: %d of %d ready", b.name, arrived, b.size), nil)
	}
	<-b.release
	return b.decision
}

// recheck probes a step with a pending change again just before its Apply
// (read-only, sharing nothing with other probes) and returns what it finds.
// The world may have moved since the plan: its dependencies have just been
// applied, and people or other tools act too. Apply goes on only when the
// step still needs the action that was planned and approved; a different
// one is a *DriftError and nothing is changed; no change at all means it is
// done and Apply is not called. Checks are not re-checked: they only read.
func (w *walker) recheck(ctx context.Context, n *node, r *reporter) (plans.Change, error) {
	if !n.change.Pending() {
		return n.change, nil
	}
	now, _, err := probeDiff(withReporter(withoutChange(ctx), r), n.step)
	if err != nil {
		return now, fmt.Errorf("probe again before applying: %w", err)
	}
	if now.Pending() && !n.change.Deferred && !within(now.Action, n.change.Action) {
		return now, &DriftError{Planned: n.change, Now: now}
	}
	return now, nil
}

// within reports whether the action the world needs now is the planned
// one or a part of it: a planned replace (remove, then make again) of
// which a dependency already did the removal now needs only the making.
func within(now, planned plans.Action) bool {
	return now == planned || (planned == plans.Replace && now == plans.Create)
}
