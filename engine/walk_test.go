package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/haplan/haplan/plans"
)

// statuses maps each address to its status, for compact comparisons.
func statuses(r *Result) map[Addr]Status {
	m := make(map[Addr]Status, len(r.Steps))
	for _, s := range r.Steps {
		m[s.Addr] = s.Status
	}
	return m
}

// apply plans and applies g, failing the test on a plan error.
func apply(t *testing.T, ctx context.Context, g *Graph, opts Options) (*Result, error) {
	t.Helper()
	return Apply(ctx, g, mustPlan(t, g), opts)
}

// deadline bounds a test that would otherwise hang when the engine
// deadlocks; the steps turn the expiry into a failure.
func deadline(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestApplyRespectsDependencies(t *testing.T) {
	var mu sync.Mutex
	var order []Addr
	record := func(f *fake) *fake {
		f.apply = func(context.Context, plans.Change) error {
			mu.Lock()
			order = append(order, f.addr)
			mu.Unlock()
			return nil
		}
		return f
	}
	var steps []Step
	for i := range 30 {
		var deps []Addr
		for j := range i {
			if (i*7+j*3)%5 == 0 {
				deps = append(deps, Addr(fmt.Sprintf("s%02d", j)))
			}
		}
		steps = append(steps, record(step(Addr(fmt.Sprintf("s%02d", i)), plans.Create, deps...)))
	}
	g := mustGraph(t, steps...)
	res, err := apply(t, context.Background(), g, Options{Parallelism: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(order) != 30 {
		t.Fatalf("%d steps applied, want 30", len(order))
	}
	pos := make(map[Addr]int)
	for i, a := range order {
		pos[a] = i
	}
	for _, s := range g.Steps() {
		for _, d := range s.Deps() {
			if pos[d] > pos[s.Addr()] {
				t.Errorf("%s applied before its dependency %s", s.Addr(), d)
			}
		}
	}
	if diff := cmp.Diff(Summary{Applied: 30}, res.Summary()); diff != "" {
		t.Errorf("Summary (-want +got):\n%s", diff)
	}
}

func TestApplyUsesThePlannedChange(t *testing.T) {
	a := step("a", plans.Update)
	b := step("b", plans.NoOp, "a")
	g := mustGraph(t, a, b)
	p := mustPlan(t, g)
	p.Changes[0].Reason = "edited in the saved plan"
	res, err := Apply(context.Background(), g, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := a.diffs.Load(); n != 2 {
		t.Errorf("Diff called %d times, want twice (by Plan, and by the re-check before Apply)", n)
	}
	if diff := cmp.Diff([]plans.Change{p.Changes[0]}, a.got); diff != "" {
		t.Errorf("Apply got (-want +got):\n%s", diff)
	}
	if b.applies.Load() != 0 {
		t.Error("a no-op step was applied")
	}
	want := map[Addr]Status{"a": StatusApplied, "b": StatusUnchanged}
	if diff := cmp.Diff(want, statuses(res)); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

func TestApplyRefusesMismatchedPlan(t *testing.T) {
	a, b := step("a", plans.Create), step("b", plans.Create)
	g := mustGraph(t, a, b)
	p := &plans.Plan{Changes: []plans.Change{
		{Addr: "a", Action: plans.Create}, {Addr: "zz", Action: plans.Create}, {Addr: "a", Action: plans.Create},
	}}
	res, err := Apply(context.Background(), g, p, Options{})
	var me *PlanMismatchError
	if !errors.As(err, &me) {
		t.Fatalf("err = %v, want *PlanMismatchError", err)
	}
	want := &PlanMismatchError{Missing: []Addr{"b"}, Extra: []Addr{"zz"}, Duplicate: []Addr{"a"}}
	if diff := cmp.Diff(want, me); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	if res != nil || a.applies.Load()+b.applies.Load() != 0 {
		t.Error("steps ran despite the mismatch")
	}
}

func TestApplyParallelismBound(t *testing.T) {
	tests := []struct {
		name        string
		opts        Options
		hosts       []string
		wantGlobal  int32
		wantPerHost int32
	}{
		{"global", Options{Parallelism: 2}, []string{"", "", "", "", "", ""}, 2, 0},
		{"per host", Options{Parallelism: 10, PerHost: 1}, []string{"h1", "h1", "h1", "h2", "h2", "h2"}, 2, 1},
		{"both", Options{Parallelism: 3, PerHost: 2}, []string{"h1", "h1", "h1", "h2", "h2", "h2"}, 3, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gt := newGate("h1", "h2")
			var steps []Step
			for i, h := range tt.hosts {
				f := step(Addr(fmt.Sprintf("s%d", i)), plans.Create)
				f.host = h
				gt.hold(f)
				steps = append(steps, f)
			}
			done := make(chan error)
			go func() {
				_, err := apply(t, deadline(t), mustGraph(t, steps...), tt.opts)
				done <- err
			}()
			for range tt.wantGlobal {
				<-gt.entered
			}
			for range len(steps) {
				gt.release <- struct{}{}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := gt.inside.max.Load(); got != tt.wantGlobal {
				t.Errorf("max concurrent applies = %d, want %d", got, tt.wantGlobal)
			}
			for h, g := range gt.perHost {
				if tt.wantPerHost > 0 && g.max.Load() > tt.wantPerHost {
					t.Errorf("max concurrent applies on %s = %d, want <= %d", h, g.max.Load(), tt.wantPerHost)
				}
			}
		})
	}
}

func TestApplyWaitingHoldsNoSlot(t *testing.T) {
	// With one slot, a chain whose later links waited holding a slot would
	// starve its own head and everything else.
	var steps []Step
	for i := range 8 {
		var deps []Addr
		if i > 0 {
			deps = []Addr{Addr(fmt.Sprintf("chain%d", i-1))}
		}
		steps = append(steps, step(Addr(fmt.Sprintf("chain%d", i)), plans.Create, deps...))
		steps = append(steps, step(Addr(fmt.Sprintf("free%d", i)), plans.Create))
	}
	res, err := apply(t, deadline(t), mustGraph(t, steps...), Options{Parallelism: 1, PerHost: 1})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Summary{Applied: 16}, res.Summary()); diff != "" {
		t.Errorf("Summary (-want +got):\n%s", diff)
	}
}

func TestApplyFailureSkipsDependents(t *testing.T) {
	a := step("a", plans.Create)
	a.apply = func(context.Context, plans.Change) error { return errBoom }
	b := step("b", plans.Create, "a")
	c := step("c", plans.NoOp, "b")
	d := step("d", plans.Create) // independent branch
	e := step("e", plans.Create, "d")
	var mu sync.Mutex
	skipped := map[Addr]string{}
	sink := func(ev Event) {
		if ev.Kind == Skipped {
			mu.Lock()
			skipped[ev.Addr] = ev.Message
			mu.Unlock()
		}
	}
	res, err := apply(t, context.Background(), mustGraph(t, a, b, c, d, e), Options{Sink: sink})
	want := map[Addr]Status{"a": StatusFailed, "b": StatusSkipped, "c": StatusSkipped, "d": StatusApplied, "e": StatusApplied}
	if diff := cmp.Diff(want, statuses(res)); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	var se *StepError
	if !errors.As(err, &se) || se.Addr != "a" || se.Phase != PhaseApply || !errors.Is(err, errBoom) {
		t.Errorf("err = %v, want a *StepError for a wrapping boom", err)
	}
	if errors.Is(err, ErrInterrupted) {
		t.Error("a failure is reported as an interrupt")
	}
	if b.applies.Load()+c.applies.Load() != 0 {
		t.Error("a dependent of the failed step ran")
	}
	if r, _ := res.Step("c"); r.Cause != "a" {
		t.Errorf("c skipped because of %q, want a", r.Cause)
	}
	wantMsgs := map[Addr]string{"b": "upstream failed: a", "c": "upstream failed: a"}
	if diff := cmp.Diff(wantMsgs, skipped); diff != "" {
		t.Errorf("Skipped events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Summary{Applied: 2, Failed: 1, Skipped: 2}, res.Summary()); diff != "" {
		t.Errorf("Summary (-want +got):\n%s", diff)
	}
	if got := res.Summary().String(); got != "2 applied, 0 unchanged, 1 failed, 2 skipped (upstream failed)" {
		t.Errorf("Summary.String() = %q", got)
	}
}

func TestApplyChecks(t *testing.T) {
	tests := []struct {
		name    string
		actions map[Addr]plans.Action // for the chain base <- mid <- (check)
		want    Status
	}{
		{"direct dependency changed", map[Addr]plans.Action{"base": plans.NoOp, "mid": plans.Update}, StatusApplied},
		{"transitive dependency changed", map[Addr]plans.Action{"base": plans.Create, "mid": plans.NoOp}, StatusApplied},
		{"nothing changed", map[Addr]plans.Action{"base": plans.NoOp, "mid": plans.NoOp}, StatusUnchanged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := step("base", tt.actions["base"])
			mid := step("mid", tt.actions["mid"], "base")
			// An upstream check that runs must not count as a change.
			pre := step("pre", plans.Create, "base")
			pre.check = true
			chk := step("verify", plans.Create, "mid", "pre")
			chk.check = true
			res, err := apply(t, context.Background(), mustGraph(t, base, mid, pre, chk), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if r, _ := res.Step("verify"); r.Status != tt.want {
				t.Errorf("check status = %v, want %v", r.Status, tt.want)
			}
			if ran := chk.applies.Load() == 1; ran != (tt.want == StatusApplied) {
				t.Errorf("check ran = %v", ran)
			}
		})
	}
	t.Run("a check alone upstream is no change", func(t *testing.T) {
		pre := step("pre", plans.Create)
		pre.check = true
		chk := step("verify", plans.Create, "pre")
		chk.check = true
		res, err := apply(t, context.Background(), mustGraph(t, pre, chk), Options{})
		if err != nil {
			t.Fatal(err)
		}
		want := map[Addr]Status{"pre": StatusUnchanged, "verify": StatusUnchanged}
		if diff := cmp.Diff(want, statuses(res)); diff != "" {
			t.Errorf("statuses (-want +got):\n%s", diff)
		}
	})
}

// haGroup builds a database step and n barrier members on one host that
// depend on it, plus a filler step that competes for the only slot.
func haGroup(n int, member func(*fake)) []Step {
	steps := []Step{step("db", plans.Create), step("filler", plans.Create)}
	for i := range n {
		f := step(Addr(fmt.Sprintf("ha.start[rs%d]", i+1)), plans.Create, "db")
		f.host = "rs"
		member(f)
		steps = append(steps, barrierFake{f, "ha"})
	}
	return steps
}

func TestApplyBarrierStartsTogether(t *testing.T) {
	const n = 3
	var inside sync.WaitGroup
	inside.Add(n)
	all := make(chan struct{})
	go func() { inside.Wait(); close(all) }()
	steps := haGroup(n, func(f *fake) {
		f.apply = func(ctx context.Context, c plans.Change) error {
			inside.Done()
			select { // proceed only once every member is inside Apply
			case <-all:
				return nil
			case <-ctx.Done():
				return fmt.Errorf("not all members started together: %w", ctx.Err())
			}
		}
	})
	var mu sync.Mutex
	waiting := 0
	sink := func(e Event) {
		if e.Kind == Waiting {
			mu.Lock()
			waiting++
			mu.Unlock()
		}
	}
	res, err := apply(t, deadline(t), mustGraph(t, steps...), Options{Parallelism: 1, PerHost: 1, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Summary{Applied: n + 2}, res.Summary()); diff != "" {
		t.Errorf("Summary (-want +got):\n%s", diff)
	}
	if waiting != n-1 {
		t.Errorf("%d Waiting events, want %d (all but the last member)", waiting, n-1)
	}
}

func TestApplyBarrierNeverStartsPartially(t *testing.T) {
	bad := step("cert[rs2]", plans.Create)
	bad.apply = func(context.Context, plans.Change) error { return errBoom }
	var members []*fake
	steps := haGroup(3, func(f *fake) { members = append(members, f) })
	members[1].deps = append(members[1].deps, "cert[rs2]")
	steps = append(steps, bad)
	res, err := apply(t, deadline(t), mustGraph(t, steps...), Options{})
	if !errors.Is(err, errBoom) {
		t.Errorf("err = %v, want boom", err)
	}
	for _, m := range members {
		if m.applies.Load() != 0 {
			t.Errorf("%s started though its group could not", m.addr)
		}
		r, _ := res.Step(m.addr)
		if r.Status != StatusSkipped || r.Cause != "cert[rs2]" {
			t.Errorf("%s: %v because of %q, want skipped because of cert[rs2]", m.addr, r.Status, r.Cause)
		}
	}
	if r, _ := res.Step("filler"); r.Status != StatusApplied {
		t.Errorf("independent step: %v, want applied", r.Status)
	}
}

func TestApplyStopLetsRunningFinish(t *testing.T) {
	gt := newGate()
	var steps []Step
	for _, a := range []Addr{"a", "b", "c"} {
		f := step(a, plans.Create)
		gt.hold(f)
		steps = append(steps, f)
	}
	steps = append(steps, step("after", plans.Create, "a", "b", "c"))
	stop := make(chan struct{})
	done := make(chan struct{})
	var res *Result
	var err error
	go func() {
		defer close(done)
		res, err = apply(t, deadline(t), mustGraph(t, steps...), Options{Parallelism: 1, Stop: stop})
	}()
	first := <-gt.entered
	close(stop)
	for range 3 {
		gt.release <- struct{}{}
	}
	<-done
	if !errors.Is(err, ErrInterrupted) {
		t.Errorf("err = %v, want ErrInterrupted", err)
	}
	var se *StepError
	if errors.As(err, &se) {
		t.Errorf("a step failed: %v", se)
	}
	want := map[Addr]Status{"a": StatusNotStarted, "b": StatusNotStarted, "c": StatusNotStarted, "after": StatusNotStarted}
	want[first] = StatusApplied
	if diff := cmp.Diff(want, statuses(res)); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

func TestApplyCancelReachesRunningSteps(t *testing.T) {
	gt := newGate()
	a := step("a", plans.Create)
	gt.hold(a)
	b := step("b", plans.Create, "a")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	var res *Result
	var err error
	go func() {
		defer close(done)
		res, err = apply(t, ctx, mustGraph(t, a, b), Options{})
	}()
	<-gt.entered
	cancel()
	<-done
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled from the running step", err)
	}
	want := map[Addr]Status{"a": StatusFailed, "b": StatusSkipped}
	if diff := cmp.Diff(want, statuses(res)); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

func TestApplyAfterCancelStartsNothing(t *testing.T) {
	a := step("a", plans.Create)
	g := mustGraph(t, a)
	p := mustPlan(t, g)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := Apply(ctx, g, p, Options{})
	if !errors.Is(err, ErrInterrupted) || a.applies.Load() != 0 {
		t.Errorf("err = %v, applies = %d; want ErrInterrupted and nothing run", err, a.applies.Load())
	}
	if diff := cmp.Diff(Summary{NotStarted: 1}, res.Summary()); diff != "" {
		t.Errorf("Summary (-want +got):\n%s", diff)
	}
	if got := res.Summary().String(); got != "0 applied, 0 unchanged, 1 not started (interrupted)" {
		t.Errorf("Summary.String() = %q", got)
	}
	if _, err := Apply(context.Background(), g, nil, Options{}); !errors.As(err, new(*PlanMismatchError)) {
		t.Errorf("Apply(nil plan) = %v, want *PlanMismatchError", err)
	}
}

func TestApplyTargetedGraph(t *testing.T) {
	g := mustGraph(t, clusterSteps()...)
	sub, err := g.Target([]string{"cert.distribute[rs1]"})
	if err != nil {
		t.Fatal(err)
	}
	p := mustPlan(t, sub)
	if len(p.Changes) != 2 || len(p.Probes) != 2 {
		t.Fatalf("targeted plan has %d changes, %d probes; want 2", len(p.Changes), len(p.Probes))
	}
	if _, err := Apply(context.Background(), g, p, Options{}); !errors.As(err, new(*PlanMismatchError)) {
		t.Errorf("applying a targeted plan to the full graph: %v, want *PlanMismatchError", err)
	}
	res, err := Apply(context.Background(), sub, p, Options{})
	if err != nil || len(res.Steps) != 2 {
		t.Errorf("Apply(targeted) = %+v, %v", res, err)
	}
}

func TestApplyProgressEvents(t *testing.T) {
	var events []Event
	sink := SerialSink(func(e Event) { events = append(events, e) })
	a := step("ha.start[rs1]", plans.Create)
	a.host = "rs1"
	a.apply = func(ctx context.Context, c plans.Change) error {
		Progress(ctx, "waiting for %s/ping", "http://rs1:8080")
		return nil
	}
	if _, err := apply(t, context.Background(), mustGraph(t, a), Options{Sink: sink}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		if e.Addr != "ha.start[rs1]" || e.Host != "rs1" || e.Phase != PhaseApply || e.Change == nil || e.Time.IsZero() {
			t.Errorf("event not stamped: %+v", e)
		}
		got = append(got, e.Kind.String()+" "+e.Message)
	}
	want := []string{"apply_started ", "progress waiting for http://rs1:8080/ping", "apply_finished "}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	Progress(context.Background(), "no reporter: %d", 1) // must not panic
}

func TestStatusAndKindNames(t *testing.T) {
	var names []string
	for s := StatusUnchanged; s <= StatusNotStarted; s++ {
		names = append(names, s.String())
	}
	for k := ProbeStarted; k <= Waiting; k++ {
		names = append(names, k.String())
	}
	if slices.Contains(names, "") || strings.Contains(strings.Join(names, " "), "(") {
		t.Errorf("unnamed values: %q", names)
	}
}
