package engine

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/haplan/haplan/plans"
)

// gated records whether its Probe and Apply were allowed to change things.
type gated struct {
	*fake
	probeMayChange, applyMayChange atomic.Int32
}

func (g *gated) Probe(ctx context.Context) (State, error) {
	if MayChange(ctx) {
		g.probeMayChange.Add(1)
	}
	return g.fake.Probe(ctx)
}

func (g *gated) Apply(ctx context.Context, c plans.Change) error {
	if MayChange(ctx) {
		g.applyMayChange.Add(1)
	}
	return g.fake.Apply(ctx, c)
}

func TestOnlyApplyMayChange(t *testing.T) {
	s := &gated{fake: step("a", plans.Create)}
	g := mustGraph(t, s)
	// Even a caller that passes an apply's context plans read-only.
	p, err := Plan(withChange(context.Background()), g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(context.Background(), g, p, Options{}); err != nil {
		t.Fatal(err)
	}
	if n := s.probes.Load(); n != 2 {
		t.Fatalf("%d probes, want 2 (the plan's and the re-check's)", n)
	}
	if n := s.probeMayChange.Load(); n != 0 {
		t.Errorf("%d probes ran with MayChange, want none", n)
	}
	if n := s.applyMayChange.Load(); n != 1 {
		t.Errorf("Apply ran with MayChange %d times, want 1", n)
	}
	if MayChange(context.Background()) {
		t.Error("MayChange on a plain context")
	}
}

func TestRecheckRefusesAnotherAction(t *testing.T) {
	a := step("a", plans.Update) // planned: copy the script
	b := step("b", plans.Create, "a")
	c := step("c", plans.Create)
	g := mustGraph(t, a, b, c)
	p := mustPlan(t, g)
	a.action = plans.Create // now: generate a new one; not what was approved

	res, err := Apply(context.Background(), g, p, Options{})
	var drift *DriftError
	if !errors.As(err, &drift) {
		t.Fatalf("Apply error = %v, want a *DriftError", err)
	}
	if drift.Planned.Action != plans.Update || drift.Now.Action != plans.Create {
		t.Errorf("drift planned %v now %v, want update then create", drift.Planned.Action, drift.Now.Action)
	}
	if a.applies.Load() != 0 || b.applies.Load() != 0 {
		t.Error("a drifted step or its dependent was applied")
	}
	want := map[Addr]Status{"a": StatusFailed, "b": StatusSkipped, "c": StatusApplied}
	if diff := cmp.Diff(want, statuses(res)); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

func TestRecheckFindsItDone(t *testing.T) {
	a := step("a", plans.Create)
	b := step("b", plans.Create, "a")
	g := mustGraph(t, a, b)
	p := mustPlan(t, g)
	a.action = plans.NoOp // done by hand since the plan

	var msgs []string
	res, err := Apply(context.Background(), g, p, Options{Sink: func(e Event) {
		if e.Addr == "a" && e.Kind == ApplyFinished {
			msgs = append(msgs, e.Message)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if a.applies.Load() != 0 {
		t.Error("Apply called for a step with nothing left to do")
	}
	if b.applies.Load() != 1 {
		t.Error("its dependent was not applied")
	}
	want := map[Addr]Status{"a": StatusUnchanged, "b": StatusApplied}
	if diff := cmp.Diff(want, statuses(res)); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"nothing to do any more: fake"}, msgs); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}

func TestRecheckProbeFailureFailsTheStep(t *testing.T) {
	a := step("a", plans.Create)
	g := mustGraph(t, a)
	p := mustPlan(t, g)
	a.probeErr = errBoom
	_, err := Apply(context.Background(), g, p, Options{})
	var se *StepError
	if !errors.As(err, &se) || se.Addr != "a" || !errors.Is(err, errBoom) {
		t.Fatalf("Apply error = %v, want a's StepError wrapping boom", err)
	}
	if a.applies.Load() != 0 {
		t.Error("applied although the re-check failed")
	}
}

func TestChecksAreNotRechecked(t *testing.T) {
	a := step("a", plans.Create)
	v := step("v", plans.NoOp, "a")
	v.check = true
	g := mustGraph(t, a, v)
	p := mustPlan(t, g)
	if _, err := Apply(context.Background(), g, p, Options{}); err != nil {
		t.Fatal(err)
	}
	if n := v.probes.Load(); n != 1 {
		t.Errorf("the check was probed %d times, want once (by the plan)", n)
	}
	if v.applies.Load() != 1 {
		t.Error("the check did not run after its dependency changed")
	}
}

func TestRecheckDriftStopsTheWholeBarrierGroup(t *testing.T) {
	var members []*fake
	var steps []Step
	for _, a := range []Addr{"ha[1]", "ha[2]", "ha[3]"} {
		f := step(a, plans.Create)
		members = append(members, f)
		steps = append(steps, barrierFake{fake: f, group: "ha"})
	}
	g := mustGraph(t, steps...)
	p := mustPlan(t, g)
	members[1].action = plans.Replace // started by hand with another image

	res, err := Apply(deadline(t), g, p, Options{})
	var drift *DriftError
	if !errors.As(err, &drift) {
		t.Fatalf("Apply error = %v, want a *DriftError", err)
	}
	for _, m := range members {
		if m.applies.Load() != 0 {
			t.Errorf("%s was applied: a group never starts partially", m.addr)
		}
	}
	want := map[Addr]Status{"ha[1]": StatusSkipped, "ha[2]": StatusFailed, "ha[3]": StatusSkipped}
	if diff := cmp.Diff(want, statuses(res)); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

func TestRecheckedBarrierMemberDoneMeanwhileLetsThePeersRun(t *testing.T) {
	var members []*fake
	var steps []Step
	for _, a := range []Addr{"ha[1]", "ha[2]"} {
		f := step(a, plans.Create)
		members = append(members, f)
		steps = append(steps, barrierFake{fake: f, group: "ha"})
	}
	g := mustGraph(t, steps...)
	p := mustPlan(t, g)
	members[0].action = plans.NoOp
	res, err := Apply(deadline(t), g, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[Addr]Status{"ha[1]": StatusUnchanged, "ha[2]": StatusApplied}
	if diff := cmp.Diff(want, statuses(res)); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if members[0].probes.Load() != 2 || members[1].probes.Load() != 2 {
		t.Error("each member is probed once by the plan and once by the re-check")
	}
}

func TestRecheckAcceptsWhatIsLeftOfAReplace(t *testing.T) {
	stop := step("stop", plans.Delete)
	start := step("start", plans.Replace, "stop")
	g := mustGraph(t, stop, start)
	p := mustPlan(t, g)
	start.action = plans.Create // the stop removed the old container
	if _, err := Apply(context.Background(), g, p, Options{}); err != nil {
		t.Fatalf("a replace whose removal was done upstream: %v", err)
	}
	if start.applies.Load() != 1 {
		t.Error("the start was not applied")
	}
	start.action = plans.Update
	p = mustPlan(t, g)
	start.action = plans.Create
	if _, err := Apply(context.Background(), g, p, Options{}); err == nil {
		t.Error("an update that became a create was applied")
	}
}

// A Finisher group whose upstream changed something starts even after
// Stop; without a change upstream it does not.
type finisher struct{ barrierFake }

func (finisher) FinishOnceStarted() bool { return true }

func TestFinisherGroupStartsDespiteStop(t *testing.T) {
	stop := make(chan struct{})
	a := step("stop", plans.Delete)
	a.apply = func(context.Context, plans.Change) error { close(stop); return nil }
	s1 := finisher{barrierFake{fake: step("start[1]", plans.Create, "stop"), group: "start"}}
	s2 := finisher{barrierFake{fake: step("start[2]", plans.Create, "stop"), group: "start"}}
	g := mustGraph(t, a, s1, s2)
	res, err := Apply(deadline(t), g, mustPlan(t, g), Options{Stop: stop})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	want := map[Addr]Status{"stop": StatusApplied, "start[1]": StatusApplied, "start[2]": StatusApplied}
	if diff := cmp.Diff(want, statuses(res)); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

// A deferred change (decided when its turn comes) takes the action the
// world then needs.
func TestRecheckDeferredTakesWhatIsNeeded(t *testing.T) {
	a := &deferredFake{fake: step("a", plans.Create)}
	g := mustGraph(t, a)
	p := mustPlan(t, g)
	if !p.Changes[0].Deferred {
		t.Fatal("the plan lost Deferred")
	}
	a.action = plans.Update
	if _, err := Apply(context.Background(), g, p, Options{}); err != nil {
		t.Fatalf("a deferred create that needs an update: %v", err)
	}
	if a.applies.Load() != 1 {
		t.Error("not applied")
	}
}

type deferredFake struct{ *fake }

func (d *deferredFake) Diff(cur State) plans.Change {
	c := d.fake.Diff(cur)
	c.Deferred = true
	return c
}
