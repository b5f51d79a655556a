package engine

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/haplan/haplan/plans"
)

func TestPlanChangesAndDigests(t *testing.T) {
	build := func(dbState State) *Graph {
		db := step("db.database", plans.Create)
		db.state = dbState
		pull := step("image.pull[rs1]", plans.NoOp)
		pull.host = "rs1"
		start := step("ha.start[rs1]", plans.Update, "db.database", "image.pull[rs1]")
		start.host = "rs1"
		return mustGraph(t, start, pull, db)
	}
	p1 := mustPlan(t, build(map[string]int{"tables": 0}))
	p2 := mustPlan(t, build(map[string]int{"tables": 0}))
	p3 := mustPlan(t, build(map[string]int{"tables": 1}))

	want := []plans.Change{
		{Addr: "db.database", Kind: "db.database", Action: plans.Create, Reason: "fake"},
		{Addr: "image.pull[rs1]", Kind: "image.pull", Host: "rs1", Action: plans.NoOp, Reason: "fake"},
		{Addr: "ha.start[rs1]", Kind: "ha.start", Host: "rs1", Action: plans.Update, Reason: "fake"},
	}
	if diff := cmp.Diff(want, p1.Changes); diff != "" {
		t.Errorf("Changes (-want +got):\n%s", diff)
	}
	if p1.FormatVersion != plans.FormatVersion {
		t.Errorf("FormatVersion = %q", p1.FormatVersion)
	}
	if len(p1.Probes) != 3 || len(p1.Probes["db.database"]) != 64 {
		t.Errorf("Probes = %v, want 3 hex sha256 digests", p1.Probes)
	}
	if diff := cmp.Diff(p1.Probes, p2.Probes); diff != "" {
		t.Errorf("digests of the same state differ (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff([]plans.Drift{{Addr: "db.database", Was: p1.Probes["db.database"], Now: p3.Probes["db.database"]}}, plans.Stale(p1, p3)); diff != "" {
		t.Errorf("Stale after a state change (-want +got):\n%s", diff)
	}
}

func TestPlanJoinsEveryProbeError(t *testing.T) {
	a := step("a", plans.NoOp)
	a.probeErr = errBoom
	a.host = "rs1"
	b := step("b", plans.NoOp, "a")
	b.probeErr = errors.New("connection refused")
	c := step("c", plans.NoOp)
	c.state = func() {} // cannot be marshalled
	ok := step("ok", plans.NoOp)
	p, err := Plan(context.Background(), mustGraph(t, a, b, c, ok), Options{})
	if p != nil {
		t.Errorf("Plan returned a plan with errors: %+v", p)
	}
	if !errors.Is(err, errBoom) {
		t.Errorf("errors.Is(err, errBoom) = false: %v", err)
	}
	var got []Addr
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var se *StepError
		if !errors.As(e, &se) {
			t.Fatalf("%v is not a *StepError", e)
		}
		if se.Phase != PhaseProbe {
			t.Errorf("%s: phase %v, want probe", se.Addr, se.Phase)
		}
		got = append(got, se.Addr)
	}
	if diff := cmp.Diff([]Addr{"a", "b", "c"}, got); diff != "" {
		t.Errorf("failed steps (-want +got):\n%s", diff)
	}
	for _, want := range []string{"probe a on rs1: boom", "probe b: connection refused", "probe c: digest probed state"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

// wrongAddr returns a change for another step from Diff.
type wrongAddr struct{ *fake }

func (w wrongAddr) Diff(State) plans.Change { return plans.Change{Addr: "other", Action: plans.Create} }

func TestPlanRefusesChangeForAnotherStep(t *testing.T) {
	_, err := Plan(context.Background(), mustGraph(t, wrongAddr{step("a", plans.NoOp)}), Options{})
	var se *StepError
	if !errors.As(err, &se) || se.Addr != "a" || !strings.Contains(err.Error(), `"other"`) {
		t.Errorf("err = %v, want a *StepError for a naming \"other\"", err)
	}
}

func TestPlanBoundsProbes(t *testing.T) {
	tests := []struct {
		name        string
		opts        Options
		hosts       []string // one step per entry
		wantGlobal  int32
		wantPerHost int32
	}{
		{"global", Options{Parallelism: 3, PerHost: 10}, []string{"", "", "", "", "", "", "h1", "h2"}, 3, 1},
		{"per host", Options{Parallelism: 10, PerHost: 2}, []string{"h1", "h1", "h1", "h1", "h2", "h2", "h2"}, 4, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entered := make(chan struct{}, len(tt.hosts))
			release := make(chan struct{})
			var global gauge
			hostGauges := map[string]*gauge{"": {}, "h1": {}, "h2": {}}
			var steps []Step
			for i, h := range tt.hosts {
				f := step(Addr(rune('a'+i)), plans.NoOp)
				f.host = h
				steps = append(steps, blockingProbe{f, &global, hostGauges[h], entered, release})
			}
			done := make(chan error)
			go func() {
				_, err := Plan(context.Background(), mustGraph(t, steps...), tt.opts)
				done <- err
			}()
			// Wait until the limit is reached before letting anyone go, so
			// that the maximum is observed, then release one at a time.
			for range tt.wantGlobal {
				<-entered
			}
			for range len(tt.hosts) {
				release <- struct{}{}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := global.max.Load(); got != tt.wantGlobal {
				t.Errorf("max concurrent probes = %d, want %d", got, tt.wantGlobal)
			}
			for h, g := range hostGauges {
				if h != "" && g.max.Load() > tt.wantPerHost {
					t.Errorf("max concurrent probes on %s = %d, want <= %d", h, g.max.Load(), tt.wantPerHost)
				}
			}
		})
	}
}

// blockingProbe blocks in Probe until released.
type blockingProbe struct {
	*fake
	global, host *gauge
	entered      chan<- struct{}
	release      <-chan struct{}
}

func (b blockingProbe) Probe(ctx context.Context) (State, error) {
	b.global.enter()
	b.host.enter()
	b.entered <- struct{}{}
	<-b.release
	b.host.leave()
	b.global.leave()
	return b.fake.Probe(ctx)
}

func TestPlanProgressAndEvents(t *testing.T) {
	var events []Event
	sink := SerialSink(func(e Event) { events = append(events, e) })
	a := step("a", plans.Create)
	g := mustGraph(t, progressProbe{a})
	if _, err := Plan(context.Background(), g, Options{Sink: sink}); err != nil {
		t.Fatal(err)
	}
	var kinds []EventKind
	for _, e := range events {
		if e.Addr != "a" || e.Phase != PhaseProbe {
			t.Errorf("event %+v: want addr a, phase probe", e)
		}
		kinds = append(kinds, e.Kind)
	}
	if diff := cmp.Diff([]EventKind{ProbeStarted, ProgressReported, ProbeFinished}, kinds); diff != "" {
		t.Errorf("event kinds (-want +got):\n%s", diff)
	}
	if len(events) == 3 {
		if events[1].Message != "reading 3 rows" {
			t.Errorf("progress message = %q", events[1].Message)
		}
		if c := events[2].Change; c == nil || c.Action != plans.Create {
			t.Errorf("ProbeFinished change = %+v, want the create", c)
		}
	}
}

type progressProbe struct{ *fake }

func (p progressProbe) Probe(ctx context.Context) (State, error) {
	Progress(ctx, "reading %d rows", 3)
	return p.fake.Probe(ctx)
}
