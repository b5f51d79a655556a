package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/plans"
)

// errStalePlan is returned when a saved plan no longer describes the world.
// Never retried: make a new plan.
var errStalePlan = errors.New("saved plan is stale")

func (a *app) apply(ctx context.Context, args []string) int {
	fs := a.newFlags("apply")
	var (
		pf          planFlags
		autoApprove bool
		jsonEvents  bool
	)
	fs.StringVar(&pf.file, "f", "cluster.yaml", "the manifest")
	fs.IntVar(&pf.parallelism, "parallelism", 10, "steps run at once")
	fs.Var(&pf.targets, "target", "apply only matching steps (repeatable)")
	fs.BoolVar(&autoApprove, "auto-approve", false, "do not ask for approval")
	fs.BoolVar(&jsonEvents, "json", false, "progress as JSON lines")
	pos, code, done := parseFlags(fs, args)
	if done {
		return code
	}
	if len(pos) > 1 {
		fmt.Fprintf(a.stderr, "haplan apply: at most one plan file, got %q\n", pos)
		return exitError
	}
	if pf.parallelism < 1 {
		fmt.Fprintln(a.stderr, "haplan apply: --parallelism must be at least 1")
		return exitError
	}
	planFile := ""
	if len(pos) == 1 {
		planFile = pos[0]
		if len(pf.targets) > 0 {
			fmt.Fprintln(a.stderr, "haplan apply: --target cannot be combined with a plan file (target when making the plan)")
			return exitError
		}
	}

	// The first interrupt stops scheduling (or, before the apply starts,
	// cancels); the second cancels running steps.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	var stopOnce sync.Once
	stopScheduling := func() { stopOnce.Do(func() { close(stop) }) }
	var applying atomic.Bool
	sigs := a.interrupts
	if sigs == nil {
		ch := make(chan os.Signal, 2)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(ch)
		sigs = ch
	}

	m, err := a.loadManifest(pf.file)
	if err != nil {
		return exitError
	}
	o := a.newOutput(m.Secrets)
	defer o.flush()
	go watchInterrupts(ctx, sigs, stopScheduling, cancel, &applying, o.errw)

	var saved *plans.Plan
	if planFile != "" {
		if saved, err = readPlanFile(planFile); err != nil {
			printError(o.errw, err)
			return exitError
		}
		if saved.ManifestDigest != m.Digest {
			printError(o.errw, fmt.Errorf("%s: the manifest changed since the plan was made (%s): %w; run haplan plan again", planFile, pf.file, errStalePlan))
			return exitError
		}
	}

	logPath, logFile, err := a.openLog(pf.file)
	if err != nil {
		printError(o.errw, err)
		return exitError
	}
	logw := o.red.Writer(logFile)
	logger := slog.New(slog.NewJSONHandler(logw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	defer func() {
		_ = logw.Flush()
		_ = logFile.Close()
	}()
	fail := func(err error) int {
		logger.Error("apply failed", "err", err)
		printError(o.errw, err)
		fmt.Fprintf(o.errw, "The debug log of this run is %s\n", logPath)
		return exitError
	}
	logger.Info("apply", "cluster", m.Name, "manifest", pf.file, "plan_file", planFile, "version", haplanVersion())

	env, g, err := a.connect(ctx, m, pf, logger)
	if err != nil {
		return fail(err)
	}
	defer env.Close()
	if saved != nil {
		if g, err = restrictTo(g, saved); err != nil {
			return fail(err)
		}
	}

	unlock, err := env.Lock(ctx, a.holder())
	if err != nil {
		var held *lockHeldError
		if errors.As(err, &held) {
			logger.Error("lock held", "err", err)
			printError(o.errw, err)
			fmt.Fprintln(o.errw, "Wait for that run to finish. If it is gone (crashed, killed), release the lock with: haplan force-unlock -f "+pf.file)
			return exitLocked
		}
		return fail(fmt.Errorf("take the cluster lock: %w", err))
	}
	// Losing the lock mid-apply (the database restarted, the network cut)
	// means another haplan could start: finish what runs, start nothing.
	go func() {
		select {
		case <-env.LockLost():
			stopScheduling()
			logger.Error("lost the cluster lock")
			fmt.Fprintln(o.errw, "\nLost the cluster lock (its database connection dropped): starting no new steps; running steps will finish.")
		case <-ctx.Done():
		}
	}()
	defer func() {
		uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer ucancel()
		if err := unlock(uctx); err != nil {
			printError(o.errw, fmt.Errorf("release the cluster lock: %w", err))
		}
	}()

	fresh, err := a.checkAndPlan(ctx, m, env, g, pf, o)
	if err != nil {
		return fail(err)
	}
	// Where the plan is shown: on stdout, unless stdout carries JSON lines.
	human := io.Writer(o.out)
	if jsonEvents {
		human = o.errw
	}
	p := fresh
	if saved != nil {
		if drift := plans.Stale(saved, fresh); len(drift) > 0 {
			var b strings.Builder
			fmt.Fprintf(&b, "%s: %v: the world changed since the plan was made:", planFile, errStalePlan)
			for _, d := range drift {
				b.WriteString("\n  " + d.String() + driftDetail(saved, fresh, d.Addr))
			}
			b.WriteString("\nRun haplan plan again, review it, and apply the new plan.")
			return fail(fmt.Errorf("%s", b.String()))
		}
		p = saved
	} else {
		if err := renderText(human, p, textOptions{Color: a.color(a.stdoutTTY && !jsonEvents)}); err != nil {
			return fail(err)
		}
	}
	if !p.HasChanges() {
		fmt.Fprintln(human, "\nNothing to apply.")
		printEndpoints(human, env, p)
		return exitOK
	}
	if saved == nil && !autoApprove {
		if code, ok := a.approve(o, human); !ok {
			logger.Info("apply not approved")
			return code
		}
	}

	mode := eventsPlain
	switch {
	case jsonEvents:
		mode = eventsJSON
	case a.stdoutTTY:
		mode = eventsLive
	}
	v := newEventView(o.out, eventViewOptions{Mode: mode, Color: a.color(a.stdoutTTY), Now: a.now})
	fmt.Fprintln(human)
	v.start()
	applying.Store(true)
	res, err := engine.Apply(ctx, g, p, engine.Options{Parallelism: pf.parallelism, Sink: engine.SerialSink(v.handle), Logger: logger, Stop: stop})
	if verr := v.close(); verr != nil && err == nil {
		err = verr
	}
	if res == nil {
		return fail(fmt.Errorf("apply: %w", err))
	}
	if rerr := renderApplySummary(human, res, textOptions{Color: a.color(a.stdoutTTY && !jsonEvents)}); rerr != nil && err == nil {
		err = rerr
	}
	logger.Info("apply finished", "summary", res.Summary().String())
	if err != nil {
		logger.Error("apply failed", "err", err)
		fmt.Fprintf(o.errw, "\nThe debug log of this run is %s\n", logPath)
		return exitError
	}
	printEndpoints(human, env, p)
	return exitOK
}

// printEndpoints says where the converged cluster answers. A partial
// (targeted) apply says nothing: it does not claim the cluster is up.
func printEndpoints(w io.Writer, env clusterEnv, p *plans.Plan) {
	eps := env.Endpoints()
	if p.Partial || len(eps) == 0 {
		return
	}
	fmt.Fprintln(w, "\nThe cluster answers at:")
	for _, e := range eps {
		fmt.Fprintln(w, "  "+e)
	}
}

// approve asks for "yes" on a terminal. Without a terminal it refuses:
// nobody can have reviewed the plan.
func (a *app) approve(o *output, w io.Writer) (code int, ok bool) {
	if !a.stdinTTY {
		fmt.Fprintln(o.errw, "Error: refusing to apply without approval: stdin is not a terminal.")
		fmt.Fprintln(o.errw, "Review the plan, then run haplan apply --auto-approve, or save it with haplan plan --out FILE and run haplan apply FILE.")
		return exitError, false
	}
	fmt.Fprint(w, "\nDo you want to perform these actions? Only 'yes' will be accepted: ")
	o.flush()
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(o.errw, "\nApply cancelled: no answer.")
		return exitError, false
	}
	if strings.TrimSpace(line) != "yes" {
		fmt.Fprintln(o.errw, "Apply cancelled.")
		return exitError, false
	}
	return exitOK, true
}

// watchInterrupts implements the two-stage interrupt: before the apply
// starts, an interrupt cancels; during it, the first stops scheduling and
// the second cancels the running steps.
func watchInterrupts(ctx context.Context, sigs <-chan os.Signal, stop func(), cancel context.CancelFunc, applying *atomic.Bool, w io.Writer) {
	stopped := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-sigs:
		}
		if stopped || !applying.Load() {
			fmt.Fprintln(w, "\nInterrupted: cancelling running steps.")
			cancel()
			return
		}
		stopped = true
		stop()
		fmt.Fprintln(w, "\nInterrupted: starting no new steps; running steps will finish. Interrupt again to cancel them.")
	}
}

// driftDetail says what a drifted step looked like when the plan was made
// and what it looks like now, from the two plans' changes: "(planned: ~
// mode 0644, want 0400; now: + ca.crt is missing)".
func driftDetail(saved, fresh *plans.Plan, addr string) string {
	describe := func(p *plans.Plan) string {
		c, ok := p.Change(addr)
		switch {
		case !ok:
			return "absent"
		case !c.Pending():
			return "no change (" + c.Reason + ")"
		}
		return c.Action.Symbol() + " " + c.Reason
	}
	was, now := describe(saved), describe(fresh)
	if was == now {
		return ""
	}
	return fmt.Sprintf(" (planned: %s; now: %s)", was, now)
}

// restrictTo returns the subgraph of the steps a saved plan covers (all of
// them, unless it was targeted). A saved step that the manifest no longer
// has means the plan is stale.
func restrictTo(g *engine.Graph, saved *plans.Plan) (*engine.Graph, error) {
	if !saved.Partial {
		return g, nil
	}
	var steps []engine.Step
	for _, c := range saved.Changes {
		s, ok := g.Step(engine.Addr(c.Addr))
		if !ok {
			return nil, fmt.Errorf("%w: step %s is no longer part of the cluster", errStalePlan, c.Addr)
		}
		steps = append(steps, s)
	}
	sub, err := engine.NewGraph(steps)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errStalePlan, err)
	}
	return sub, nil
}

// holder describes this run for the lock.
func (a *app) holder() lockHolder {
	h := lockHolder{PID: os.Getpid(), Since: a.now().UTC(), Command: "haplan apply"}
	if u, err := user.Current(); err == nil {
		h.User = u.Username
	}
	h.Machine, _ = os.Hostname()
	return h
}

// openLog creates the run's debug log, mode 0600, under .haplan/logs/ next
// to the manifest, named by the time the run started.
func (a *app) openLog(manifest string) (string, *os.File, error) {
	dir := filepath.Join(filepath.Dir(manifest), ".haplan", "logs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("create the log directory: %w", err)
	}
	stamp := a.now().UTC().Format("20060102T150405.000Z")
	for i := 0; ; i++ {
		name := "apply-" + stamp + ".log"
		if i > 0 {
			name = fmt.Sprintf("apply-%s-%d.log", stamp, i)
		}
		path := filepath.Join(dir, name)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) && i < 100 {
			continue
		}
		if err != nil {
			return "", nil, fmt.Errorf("create the debug log: %w", err)
		}
		return path, f, nil
	}
}
