package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/resources"
)

// Every command that reads the manifest runs through one pipeline: a run
// applies the phases the command names, in order, and stops at the first
// that fails. The phases, named once:
//
//	load      the manifest, its diagnostics and its secrets (redacting output)
//	session   connections (lazily dialled) and the (targeted) step graph
//	lock      the cluster's apply lock, and a watch for losing it
//	plan      preflight checks alongside the probes, then the plan
//	...       what the command renders, asks, applies and reports
//	close     always: unlock, close connections, close the log, flush
//
// A command (cmd_*.go) parses its flags, then says which phases it uses:
//
//	return a.newRun(ctx, "plan", pf).do(load, session, planPhase, render...)
//
// Phases set the run's fields for the ones after them. A phase fails with
// an error; do prints it once (redacted, naming the debug log when there
// is one) and turns it into the exit code (lockHeld: exitLocked; a
// reported error carries its own).
type run struct {
	a    *app
	ctx  context.Context
	name string // the command
	pf   planFlags

	m       *loadedManifest
	o       *output // nil until load
	logger  *slog.Logger
	logPath string // the debug log; "" when the command keeps none
	env     clusterEnv
	g       *engine.Graph
	plan    *plans.Plan
	code    int // the exit code of a run whose phases all succeeded
	// applied: a walk of this run changed something (a run may apply
	// more than one plan: restore).
	applied bool

	// stop closes (once, stopScheduling) to start no new step: the first
	// interrupt, a lost lock.
	stop     chan struct{}
	stopOnce sync.Once

	closers []func() // run in reverse order by close
}

// phase is one step of a run.
type phase func(*run) error

func (a *app) newRun(ctx context.Context, name string, pf planFlags) *run {
	return &run{a: a, ctx: ctx, name: name, pf: pf, logger: slog.New(slog.DiscardHandler), stop: make(chan struct{})}
}

func (r *run) stopScheduling() { r.stopOnce.Do(func() { close(r.stop) }) }

// errDone ends a run early, successfully: there is nothing more to do.
var errDone = errors.New("done")

// do runs the phases in order, then closes the run; it returns the exit
// code.
func (r *run) do(phases ...phase) int {
	defer r.close()
	for _, p := range phases {
		if err := p(r); errors.Is(err, errDone) {
			break
		} else if err != nil {
			return r.fail(err)
		}
	}
	return r.code
}

// onClose registers f to run when the run closes, before what was
// registered earlier.
func (r *run) onClose(f func()) { r.closers = append(r.closers, f) }

func (r *run) close() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
}

// reportedError is a failure the phase has already shown; do only exits
// with its code.
type reportedError struct {
	code int
	err  error // for the debug log
}

func (e *reportedError) Error() string { return e.err.Error() }
func (e *reportedError) Unwrap() error { return e.err }

// reported wraps err, already shown to the operator, with the exit code.
func reported(code int, err error) error { return &reportedError{code: code, err: err} }

// errw is where errors go: redacted once the manifest's secrets are known.
func (r *run) errw() io.Writer {
	if r.o == nil {
		return r.a.stderr
	}
	return r.o.errw
}

// fail shows err once and returns the exit code for it.
func (r *run) fail(err error) int {
	r.logger.Error(r.name+" failed", "err", err)
	var rep *reportedError
	var held *resources.LockHeldError
	switch {
	case errors.As(err, &rep):
		return rep.code // shown already
	case errors.As(err, &held):
		who := "the cluster is locked by another haplan run"
		if held.Holder != nil {
			who += ": " + held.Holder.String()
		}
		printError(r.errw(), errors.New(who))
		unlock := "haplan force-unlock -f " + r.pf.file
		if held.Holder != nil && held.Holder.ID != 0 {
			unlock += " " + strconv.FormatInt(held.Holder.ID, 10)
		}
		fmt.Fprintln(r.errw(), "Wait for that run to finish (apply --lock-timeout 10m waits for it). If it is gone (crashed, killed), release the lock with: "+unlock)
		return exitLocked
	default:
		printError(r.errw(), err)
	}
	if r.logPath != "" {
		fmt.Fprintf(r.errw(), "The debug log of this run is %s\n", r.logPath)
	}
	return exitError
}

// load reads and validates the manifest; its diagnostics go to stderr
// before any secret is known, which is safe: a manifest holds references
// to secrets, never their values. From here on output is redacted.
func load(r *run) error {
	o := loadOptions{Diags: r.a.stderr, Stdin: r.a.stdin, Offline: r.pf.offline}
	switch {
	case r.pf.diagJSON && r.name == "validate":
		o.Diags, o.JSON = r.a.stdout, true
	case r.pf.diagJSON:
		o.JSONErrors = r.a.stdout
	}
	m, err := r.a.backend.Load(r.pf.file, o)
	if errors.Is(err, errInvalidManifest) {
		return reported(exitError, err)
	}
	if err != nil {
		return err
	}
	r.m = m
	r.o = r.a.newOutput(m.Secrets)
	r.onClose(r.o.flush)
	if h := r.stderrLog(); h != nil {
		r.logger = slog.New(h)
	}
	return nil
}

// stderrLog is the handler that shows the run's log on stderr (redacted)
// from -v or --log-level; nil without them.
func (r *run) stderrLog() slog.Handler {
	if r.a.logLevel == nil {
		return nil
	}
	return slog.NewTextHandler(r.o.errw, &slog.HandlerOptions{Level: *r.a.logLevel})
}

// debugLog starts the run's debug log (redacted, mode 0600, under
// .haplan/logs/ next to the manifest); a failed run names it.
func debugLog(r *run) error {
	path, f, err := r.a.openLog(r.pf.file, r.name)
	if err != nil {
		return err
	}
	logw := r.o.red.Writer(f)
	r.logPath = path
	var h slog.Handler = slog.NewJSONHandler(logw, &slog.HandlerOptions{Level: slog.LevelDebug})
	if se := r.stderrLog(); se != nil {
		h = slog.NewMultiHandler(h, se)
	}
	r.logger = slog.New(h)
	r.onClose(func() {
		_ = logw.Flush()
		_ = f.Close()
	})
	r.logger.Info(r.name, "cluster", r.m.Name, "manifest", r.pf.file, "version", haplanVersion())
	return nil
}

// connect prepares the connections (nothing is dialled yet).
func connect(r *run) error {
	env, err := r.m.Connect(r.ctx, r.logger)
	if err != nil {
		return fmt.Errorf("prepare the run: %w", err)
	}
	r.env = env
	r.onClose(func() { _ = env.Close() })
	return nil
}

// session connects and builds the step graph, narrowed to --target.
func session(r *run) error {
	if err := connect(r); err != nil {
		return err
	}
	g, err := engine.NewGraph(r.env.Steps())
	if err == nil && len(r.pf.targets) > 0 {
		g, err = g.Target(r.pf.targets)
	}
	if err != nil {
		return fmt.Errorf("build the step graph: %w", err)
	}
	r.g = g
	return nil
}

// planIncomplete fails a plan some of whose steps could not be probed:
// planned as far as the machines that answered allow.
func planIncomplete(r *run) error {
	unknown := r.plan.Unknown()
	if len(unknown) == 0 {
		return nil
	}
	addrs := make([]string, 0, len(unknown))
	for _, c := range unknown {
		addrs = append(addrs, c.Addr)
	}
	return fmt.Errorf("the plan is incomplete: not probed because their host did not answer: %s (apply fails them without trying and applies the rest)",
		strings.Join(addrs, ", "))
}
