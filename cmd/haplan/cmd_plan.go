package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/preflight"
)

// planFlags are the options plan and apply share.
type planFlags struct {
	file        string
	parallelism int
	targets     stringList
}

func (a *app) plan(ctx context.Context, args []string) int {
	fs := a.newFlags("plan")
	var (
		pf             planFlags
		out, format    string
		detailed, json bool
		showUnchanged  bool
	)
	fs.StringVar(&pf.file, "f", "cluster.yaml", "the manifest")
	fs.IntVar(&pf.parallelism, "parallelism", 10, "probes run at once")
	fs.Var(&pf.targets, "target", "plan only matching steps (repeatable)")
	fs.StringVar(&out, "out", "", "save the plan to this file")
	fs.StringVar(&format, "format", "text", "text, markdown or json")
	fs.BoolVar(&json, "json", false, "same as --format json")
	fs.BoolVar(&detailed, "detailed-exitcode", false, "exit 2 when changes are present")
	fs.BoolVar(&showUnchanged, "show-unchanged", false, "list unchanged steps")
	if code, done := a.parseOnlyFlags(fs, args); done {
		return code
	}
	if json {
		format = "json"
	}
	switch format {
	case "text", "markdown", "json":
	default:
		fmt.Fprintf(a.stderr, "haplan plan: unknown --format %q (text, markdown or json)\n", format)
		return exitError
	}
	if pf.parallelism < 1 {
		fmt.Fprintln(a.stderr, "haplan plan: --parallelism must be at least 1")
		return exitError
	}

	s := a.openSession(ctx, pf, slog.New(slog.DiscardHandler))
	if s == nil {
		return exitError
	}
	defer s.close()
	m, o, env, g := s.m, s.o, s.env, s.g

	p, err := a.checkAndPlan(ctx, m, env, g, pf, o)
	if err != nil {
		printError(o.errw, err)
		return exitError
	}

	switch format {
	case "json":
		err = renderJSON(o.out, p)
	case "markdown":
		err = renderMarkdown(o.out, p)
	default:
		err = renderText(o.out, p, textOptions{Color: a.color(a.stdoutTTY), ShowUnchanged: showUnchanged})
	}
	if err != nil {
		printError(o.errw, err)
		return exitError
	}
	if out != "" {
		if err := writePlanFile(out, p, o); err != nil {
			printError(o.errw, err)
			return exitError
		}
		if format == "text" {
			fmt.Fprintf(o.out, "\nSaved the plan to %s. To perform exactly these actions, run:\n  haplan apply -f %s %s\n", out, pf.file, out)
		}
	}
	if unknown := p.Unknown(); len(unknown) > 0 {
		// Planned as far as the machines that answered allow; the ones
		// that did not make the plan incomplete, which is an error.
		var addrs []string
		for _, c := range unknown {
			addrs = append(addrs, c.Addr)
		}
		printError(o.errw, fmt.Errorf("the plan is incomplete: not probed because their host did not answer: %s (apply fails them without trying and applies the rest)",
			strings.Join(addrs, ", ")))
		return exitError
	}
	if detailed && p.HasChanges() {
		return exitChanges
	}
	return exitOK
}

// connect prepares the run's connections and builds the (targeted) graph.
// On error, nothing is left open.
func (a *app) connect(ctx context.Context, m *loadedManifest, pf planFlags, logger *slog.Logger) (clusterEnv, *engine.Graph, error) {
	env, err := m.Connect(ctx, logger)
	if err != nil {
		return nil, nil, fmt.Errorf("prepare the run: %w", err)
	}
	g, err := engine.NewGraph(env.Steps())
	if err == nil && len(pf.targets) > 0 {
		g, err = g.Target(pf.targets)
	}
	if err != nil {
		_ = env.Close()
		return nil, nil, fmt.Errorf("build the step graph: %w", err)
	}
	return env, g, nil
}

// errPreflight is returned when a preflight check blocks the run. Not
// retried: fix what the findings name and run again.
var errPreflight = errors.New("preflight failed")

// reportPreflight shows what the prerequisite checks found. Errors block
// (the caller exits 1 before the first change); warnings are shown on
// stderr and the run goes on.
func (a *app) reportPreflight(r *preflight.Report, o *output) error {
	if len(r.Errors()) == 0 && len(r.Warnings()) == 0 {
		return nil
	}
	blocked := *r
	blocked.Findings = append(r.Errors(), r.Warnings()...)
	if err := preflight.Render(o.errw, &blocked); err != nil {
		return err
	}
	if n := len(r.Errors()); n > 0 {
		return fmt.Errorf("%w: %d blocking problem(s), listed above; nothing was changed (haplan check lists every check)", errPreflight, n)
	}
	return nil
}

// checkAndPlan runs the preflight checks and the plan's probes at the same
// time: both only read, and neither needs the other's result. Blocking
// findings win: the plan is cancelled and discarded, and the findings are
// what the operator sees (the probes' failures would only repeat them).
func (a *app) checkAndPlan(ctx context.Context, m *loadedManifest, env clusterEnv, g *engine.Graph, pf planFlags, o *output) (*plans.Plan, error) {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	checked := make(chan *preflight.Report, 1)
	go func() {
		r := env.Preflight(ctx)
		if len(r.Errors()) > 0 {
			cancel()
		}
		checked <- r
	}()
	p, err := a.makePlan(pctx, m, g, pf, o)
	if perr := a.reportPreflight(<-checked, o); perr != nil {
		return nil, perr
	}
	return p, err
}

// makePlan probes g and fills in what the engine leaves to the caller.
// Progress goes to stderr: in CI only failures, progress messages and
// quiet-step notices; on a terminal, the live view.
func (a *app) makePlan(ctx context.Context, m *loadedManifest, g *engine.Graph, pf planFlags, o *output) (*plans.Plan, error) {
	mode := eventsPlain
	if a.stderrTTY {
		mode = eventsLive
	}
	v := newEventView(o.errw, eventViewOptions{Mode: mode, Color: a.color(a.stderrTTY), QuietProbes: true, Now: a.now})
	v.start()
	// Once the plan is cancelled (blocking preflight findings, an
	// interrupt), probes cut short are not failures worth a line each.
	sink := func(e engine.Event) {
		if e.Err != nil && ctx.Err() != nil && errors.Is(e.Err, context.Canceled) {
			return
		}
		v.handle(e)
	}
	p, err := engine.Plan(ctx, g, engine.Options{Parallelism: pf.parallelism, Sink: engine.SerialSink(sink)})
	if cerr := v.close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	p.HaplanVersion = haplanVersion()
	p.Cluster = m.Name
	p.ManifestDigest = m.Digest
	p.Created = a.now().UTC()
	p.Partial = len(pf.targets) > 0
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
func readPlanFile(path string) (*plans.Plan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the plan: %w", err)
	}
	defer f.Close()
	p, err := plans.Decode(f)
	if err != nil {
		if errors.Is(err, plans.ErrFormatVersion) {
			return nil, fmt.Errorf("%s: %w; make a new plan with this haplan", path, err)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}
