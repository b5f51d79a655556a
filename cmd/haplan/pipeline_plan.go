package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/internal/fileread"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/preflight"
)

// errPreflight is returned when a preflight check blocks the run. Not
// retried: fix what the findings name and run again.
var errPreflight = errors.New("preflight failed")

// reportPreflight shows what the prerequisite checks found. Errors block
// (the caller exits 1 before the first change); warnings are shown on
// stderr and the run goes on.
func reportPreflight(r *preflight.Report, o *output, applied bool) error {
	if len(r.Errors()) == 0 && len(r.Warnings()) == 0 {
		return nil
	}
	blocked := *r
	blocked.Findings = append(r.Errors(), r.Warnings()...)
	if err := preflight.Render(o.errw, &blocked); err != nil {
		return err
	}
	if n := len(r.Errors()); n > 0 && applied {
		// A run that already applied a plan (restore's stop and load)
		// must not say nothing changed.
		return fmt.Errorf("%w: %d blocking problem(s), listed above; what this run applied before stays applied, nothing more was changed: fix them, then haplan apply (haplan status says what runs)", errPreflight, n)
	}
	if n := len(r.Errors()); n > 0 {
		return fmt.Errorf("%w: %d blocking problem(s), listed above; nothing was changed (haplan check lists every check)", errPreflight, n)
	}
	return nil
}

// planPhase runs the preflight checks and the plan's probes at the same
// time: both only read, and neither needs the other's result. Blocking
// findings win: the plan is cancelled and discarded, and the findings are
// what the operator sees (the probes' failures would only repeat them).
func planPhase(r *run) error {
	pctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	checked := make(chan *preflight.Report, 1)
	go func() {
		rep := r.env.Preflight(r.ctx)
		if len(rep.Errors()) > 0 {
			cancel()
		}
		checked <- rep
	}()
	p, err := makePlan(pctx, r)
	if perr := reportPreflight(<-checked, r.o, r.applied); perr != nil {
		return perr
	}
	r.plan = p
	return err
}

// probeOnly plans without the preflight checks: for plans whose steps do
// not need the cluster's prerequisites, and that must run when those are
// not met (a restore's stop and load run on a cluster that is broken, or
// newer than the manifest; the plan that starts it again is checked).
func probeOnly(r *run) error {
	p, err := makePlan(r.ctx, r)
	r.plan = p
	return err
}

// makePlan probes the graph and fills in what the engine leaves to the
// caller. Progress goes to stderr: in CI only failures, progress messages
// and quiet-step notices; on a terminal, the live view.
func makePlan(ctx context.Context, r *run) (*plans.Plan, error) {
	a := r.a
	mode := eventsPlain
	if a.stderrTTY {
		mode = eventsLive
	}
	v := newEventView(r.o.errw, eventViewOptions{Mode: mode, Color: a.color(a.stderrTTY), QuietProbes: true, Now: a.now})
	v.start()
	// Once the plan is cancelled (blocking preflight findings, an
	// interrupt), probes cut short are not failures worth a line each.
	sink := func(e engine.Event) {
		if e.Err != nil && ctx.Err() != nil && errors.Is(e.Err, context.Canceled) {
			return
		}
		v.handle(e)
	}
	p, err := engine.Plan(ctx, r.g, engine.Options{Parallelism: r.pf.parallelism, Sink: engine.SerialSink(sink)})
	if cerr := v.close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	p.HaplanVersion = haplanVersion()
	p.Cluster = r.m.Name
	p.ManifestDigest = r.m.Digest
	p.Created = a.now().UTC()
	p.Partial = len(r.pf.targets) > 0
	return p, nil
}

// writePlanFile saves p atomically with mode 0600: a temporary file in the
// same directory, renamed over the target. The plan holds no secret by
// construction; it still passes through the redactor, so that a step that
// put one in a reason by mistake does not leak it to disk.
func writePlanFile(path string, p *plans.Plan, o *output) error {
	var buf bytes.Buffer
	if err := plans.Encode(&buf, p); err != nil {
		return err
	}
	data := []byte(o.red.String(buf.String()))
	if err := writeFileAtomic(path, data, 0o600); err != nil {
		return fmt.Errorf("save the plan: %w", err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(mode); err != nil {
		_ = f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// readPlanFile decodes a saved plan.
// maxPlanFile bounds a saved plan: a few MB for thousands of hosts.
const maxPlanFile = 256 << 20

func readPlanFile(path string) (*plans.Plan, error) {
	b, err := fileread.Regular(path, maxPlanFile)
	if err != nil {
		return nil, fmt.Errorf("read the plan: %w", err)
	}
	p, err := plans.Decode(bytes.NewReader(b))
	if err != nil {
		if errors.Is(err, plans.ErrFormatVersion) {
			return nil, fmt.Errorf("%s: %w; make a new plan with this haplan", path, err)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}
