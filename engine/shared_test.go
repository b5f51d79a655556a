package engine

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/haplan/haplan/plans"
)

// reader is a step whose Probe and Apply read the same fact through Shared.
type reader struct {
	*fake
	reads *atomic.Int32
	key   string
	err   error
}

func (r reader) read(ctx context.Context) (string, error) {
	n := r.reads.Add(1)
	return fmt.Sprintf("read %d", n), r.err
}

func (r reader) Probe(ctx context.Context) (State, error) {
	v, err := Shared(ctx, r.key, r.read)
	if err != nil {
		return nil, err
	}
	return map[string]string{"fact": v}, nil
}

func (r reader) Apply(ctx context.Context, c plans.Change) error {
	_, err := Shared(ctx, r.key, r.read)
	return err
}

func TestSharedReadsOncePerPlan(t *testing.T) {
	var reads atomic.Int32
	var steps []Step
	for i := range 20 {
		steps = append(steps, reader{fake: step(Addr(fmt.Sprintf("s%d", i)), plans.Update), reads: &reads, key: "fact"})
	}
	g := mustGraph(t, steps...)
	p, err := Plan(context.Background(), g, Options{Parallelism: 5})
	if err != nil {
		t.Fatal(err)
	}
	if n := reads.Load(); n != 1 {
		t.Fatalf("20 probes read the shared fact %d times, want 1", n)
	}
	// Every probe saw the same reading, so every digest is the same.
	first := p.Probes["s0"]
	for a, d := range p.Probes {
		if d != first {
			t.Fatalf("probe %s digest %s differs from s0's %s", a, d, first)
		}
	}

	// A second plan reads again: a reading lives for one Plan.
	if _, err := Plan(context.Background(), g, Options{}); err != nil {
		t.Fatal(err)
	}
	if n := reads.Load(); n != 2 {
		t.Fatalf("after a second plan: %d reads, want 2", n)
	}

	// Apply does not share: each step's re-check before its Apply reads
	// the world as it is, and so does the Apply.
	reads.Store(0)
	if _, err := Apply(context.Background(), g, p, Options{}); err != nil {
		t.Fatal(err)
	}
	if n := reads.Load(); n != 40 {
		t.Fatalf("apply of 20 steps read %d times, want 40 (a re-check and an Apply each)", n)
	}
}

func TestSharedErrorReachesEveryProbe(t *testing.T) {
	var reads atomic.Int32
	boom := errors.New("boom")
	g := mustGraph(t,
		reader{fake: step("a", plans.Update), reads: &reads, key: "k", err: boom},
		reader{fake: step("b", plans.Update), reads: &reads, key: "k", err: boom},
		reader{fake: step("c", plans.Update), reads: &reads, key: "other"},
	)
	_, err := Plan(context.Background(), g, Options{})
	var se *StepError
	if !errors.As(err, &se) || !errors.Is(err, boom) {
		t.Fatalf("Plan error = %v, want step errors wrapping boom", err)
	}
	failed := map[Addr]bool{}
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		if errors.As(e, &se) {
			failed[se.Addr] = true
		}
	}
	if !failed["a"] || !failed["b"] || failed["c"] {
		t.Fatalf("failed steps = %v, want a and b", failed)
	}
	if n := reads.Load(); n != 2 {
		t.Fatalf("reads = %d, want 2 (one per key)", n)
	}
}
