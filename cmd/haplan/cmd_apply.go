package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/resources"
)

// errStalePlan is returned when a saved plan no longer describes the world.
// Never retried: make a new plan.
var errStalePlan = errors.New("saved plan is stale")

// applyRun is apply's part of a run: its options and what its phases
// hand each other.
type applyRun struct {
	planFile    string
	autoApprove bool
	jsonEvents  bool

	saved *plans.Plan // the plan file's plan; nil without one
	// applying says whether the walk has begun, for the two-stage
	// interrupt.
	applying atomic.Bool
	// walked are the results of every walk of the run (a restore walks
	// twice: stop and load, then start), read when the run closes.
	walked []*engine.Result
	// dump is the dump a restore loads.
	dump string
}

func (a *app) apply(ctx context.Context, args []string) int {
	fs := a.newFlags("apply")
	var pf planFlags
	ar := &applyRun{}
	fs.StringVar(&pf.file, "f", "cluster.yaml", "the manifest")
	fs.IntVar(&pf.parallelism, "parallelism", 10, "steps run at once")
	fs.Var(&pf.targets, "target", "apply only matching steps (repeatable)")
	fs.BoolVar(&ar.autoApprove, "auto-approve", false, "do not ask for approval")
	fs.BoolVar(&ar.jsonEvents, "json", false, "progress as JSON lines")
	fs.DurationVar(&pf.lockWait, "lock-timeout", 0, "wait this long for a lock another run holds")
	pos, code, done := parseFlags(fs, args)
	if done {
		return code
	}
	switch {
	case len(pos) > 1:
		fmt.Fprintf(a.stderr, "haplan apply: at most one plan file, got %q\n", pos)
		return exitError
	case pf.parallelism < 1:
		fmt.Fprintln(a.stderr, "haplan apply: --parallelism must be at least 1")
		return exitError
	case pf.lockWait < 0:
		fmt.Fprintln(a.stderr, "haplan apply: --lock-timeout must not be negative")
		return exitError
	case len(pos) == 1 && len(pf.targets) > 0:
		fmt.Fprintln(a.stderr, "haplan apply: --target cannot be combined with a plan file (target when making the plan)")
		return exitError
	case len(pos) == 1 && looksLikeManifest(pos[0]):
		fmt.Fprintf(a.stderr, "haplan apply: %s looks like a manifest; apply's argument is a plan saved by 'haplan plan --out', and the manifest is given with -f: haplan apply -f %s\n", pos[0], pos[0])
		return exitError
	case len(pos) == 1:
		ar.planFile = pos[0]
	}
	return a.newRun(ctx, "apply", pf).do(load, ar.interrupts, ar.readSaved, ar.openLog, session, ar.restrict,
		lock, planPhase, ar.review, ar.approve, ar.walk, ar.report)
}

// interrupts installs the two-stage interrupt for the rest of the run:
// before the walk an interrupt cancels; during it, the first stops
// scheduling and the second cancels the running steps.
func (ar *applyRun) interrupts(r *run) error {
	ctx, cancel := context.WithCancel(r.ctx)
	r.ctx = ctx
	sigs := r.a.interrupts
	if sigs == nil {
		ch := make(chan os.Signal, 2)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		sigs = ch
		r.onClose(func() { signal.Stop(ch) })
	}
	r.onClose(cancel)
	go watchInterrupts(ctx, sigs, r.stopScheduling, cancel, &ar.applying, r.o.errw)
	return nil
}

// readSaved reads the plan file, refusing one made from another manifest.
func (ar *applyRun) readSaved(r *run) error {
	if ar.planFile == "" {
		return nil
	}
	saved, err := readPlanFile(ar.planFile)
	if err != nil {
		return err
	}
	if saved.ManifestDigest != r.m.Digest {
		return fmt.Errorf("%s: the manifest changed since the plan was made (%s): %w; run haplan plan again", ar.planFile, r.pf.file, errStalePlan)
	}
	ar.saved = saved
	return nil
}

// openLog starts the run's debug log and records the plan file.
func (ar *applyRun) openLog(r *run) error {
	if err := debugLog(r); err != nil {
		return err
	}
	if ar.planFile != "" {
		r.logger.Info("saved plan", "plan_file", ar.planFile)
	}
	return nil
}

// restrict narrows the graph to the steps a saved, targeted plan covers.
func (ar *applyRun) restrict(r *run) error {
	if ar.saved == nil {
		return nil
	}
	g, err := restrictTo(r.g, ar.saved)
	r.g = g
	return err
}

// lock takes the cluster's apply lock until the run closes. Losing it
// mid-apply (the database restarted, the network cut) means another haplan
// could start: finish what runs, start nothing.
func lock(r *run) error {
	if r.pf.lockWait > 0 {
		fmt.Fprintf(r.o.errw, "Waiting up to %s for the cluster lock…\n", r.pf.lockWait)
	}
	unlock, err := r.env.Lock(r.ctx, r.a.holder(r.name), r.pf.lockWait)
	var held *resources.LockHeldError
	if errors.As(err, &held) {
		return err
	}
	if err != nil {
		return fmt.Errorf("take the cluster lock: %w", err)
	}
	r.onClose(func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 30*time.Second)
		defer cancel()
		if err := unlock(uctx); err != nil {
			printError(r.o.errw, fmt.Errorf("release the cluster lock: %w", err))
		}
	})
	go func() {
		select {
		case <-r.env.LockLost():
			r.stopScheduling()
			r.logger.Error("lost the cluster lock")
			fmt.Fprintln(r.o.errw, "\nLost the cluster lock (its database connection dropped): starting no new steps; running steps will finish.")
		case <-r.ctx.Done():
		}
	}()
	return nil
}

// human is where apply writes for people: stdout, unless stdout carries
// JSON lines.
func (ar *applyRun) human(r *run) io.Writer {
	if ar.jsonEvents {
		return r.o.errw
	}
	return r.o.out
}

// review shows the fresh plan, or with a plan file refuses if the world
// moved since it was made and goes on with the saved plan. With nothing
// to do the run ends here.
func (ar *applyRun) review(r *run) error {
	if ar.saved != nil {
		if drift := plans.Stale(ar.saved, r.plan); len(drift) > 0 {
			var b strings.Builder
			fmt.Fprintf(&b, "%s: %v: the world changed since the plan was made:", ar.planFile, errStalePlan)
			for _, d := range drift {
				b.WriteString("\n  " + d.String() + driftDetail(ar.saved, r.plan, d.Addr))
			}
			b.WriteString("\nRun haplan plan again, review it, and apply the new plan.")
			return errors.New(b.String())
		}
		r.plan = ar.saved
	} else if err := renderText(ar.human(r), r.plan, textOptions{Color: r.a.color(r.a.stdoutTTY && !ar.jsonEvents)}); err != nil {
		return err
	}
	if r.plan.HasChanges() {
		return nil
	}
	fmt.Fprintln(ar.human(r), "\nNothing to apply.")
	printEndpoints(ar.human(r), r.env, r.plan)
	return errDone
}

// approve asks for "yes", unless the plan was saved (reviewed when it was
// made) or --auto-approve was given.
func (ar *applyRun) approve(r *run) error {
	if ar.saved != nil || ar.autoApprove {
		return nil
	}
	if code, ok := r.a.approve(r.o, ar.human(r)); !ok {
		return reported(code, errors.New("apply not approved"))
	}
	return nil
}

// walk applies the plan, showing progress, then the summary.
func (ar *applyRun) walk(r *run) error {
	mode := eventsPlain
	switch {
	case ar.jsonEvents:
		mode = eventsJSON
	case r.a.stdoutTTY:
		mode = eventsLive
	}
	v := newEventView(r.o.out, eventViewOptions{Mode: mode, Color: r.a.color(r.a.stdoutTTY), Now: r.a.now})
	fmt.Fprintln(ar.human(r))
	v.start()
	ar.applying.Store(true)
	res, err := engine.Apply(r.ctx, r.g, r.plan, engine.Options{Parallelism: r.pf.parallelism, Sink: engine.SerialSink(v.handle), Logger: r.logger, Stop: r.stop})
	if verr := v.close(); verr != nil && err == nil {
		err = verr
	}
	if res == nil {
		return fmt.Errorf("apply: %w", err)
	}
	r.applied = r.applied || res.Summary().Applied > 0
	if rerr := renderApplySummary(ar.human(r), res, textOptions{Color: r.a.color(r.a.stdoutTTY && !ar.jsonEvents)}); rerr != nil && err == nil {
		err = rerr
	}
	r.logger.Info("apply finished", "summary", res.Summary().String())
	if len(ar.walked) == 0 {
		// Once the run is over, whatever ended it: a restore's first walk
		// stops the nodes that its second starts.
		errw, backup := r.o.errw, r.env.LastBackup()
		r.onClose(func() {
			stoppedNotStarted(errw, ar.walked, stopHint{backup: backup, manifest: r.pf.file, dump: ar.dump})
		})
	}
	ar.walked = append(ar.walked, res)
	if err != nil {
		// Each failure was shown with its step; the summary counts them.
		fmt.Fprintf(r.o.errw, "\nThe debug log of this run is %s\n", r.logPath)
		return reported(exitError, err)
	}
	return nil
}

// report says where the cluster answers.
func (ar *applyRun) report(r *run) error {
	printEndpoints(ar.human(r), r.env, r.plan)
	return nil
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
		fmt.Fprintln(w, "\nInterrupted: starting no new steps; running steps will finish, and nodes that this walk of an upgrade or resize has stopped are still started together (or the server would stay down). Interrupt again to cancel them.")
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
func (a *app) holder(command string) resources.LockHolder {
	h := resources.LockHolder{PID: os.Getpid(), Since: a.now().UTC(), Command: "haplan " + command}
	if u, err := user.Current(); err == nil {
		h.User = u.Username
	}
	h.Machine, _ = os.Hostname()
	return h
}

// keepLogs is how many debug logs of one command are kept.
const keepLogs = 50

// openLog creates the debug log of a run of cmd, mode 0600, under
// .haplan/logs/ next to the manifest, and removes that command's oldest
// logs beyond keepLogs.
func (a *app) openLog(manifest, cmd string) (string, *os.File, error) {
	dir := filepath.Join(filepath.Dir(manifest), ".haplan", "logs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("create the log directory: %w", err)
	}
	if old, _ := filepath.Glob(filepath.Join(dir, cmd+"-*.log")); len(old) >= keepLogs {
		sort.Strings(old) // the names sort by their time
		for _, p := range old[:len(old)-keepLogs+1] {
			_ = os.Remove(p)
		}
	}
	stamp := a.now().UTC().Format("20060102T150405.000Z")
	for i := 0; ; i++ {
		name := cmd + "-" + stamp + ".log"
		if i > 0 {
			name = fmt.Sprintf("%s-%s-%d.log", cmd, stamp, i)
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

// looksLikeManifest reports a path named as manifests are.
func looksLikeManifest(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml", ".hcl":
		return true
	}
	return false
}

// stopHint is what the warning of stoppedNotStarted names: the backup
// this run took, the manifest, the dump a restore loads.
type stopHint struct{ backup, manifest, dump string }

// stoppedNotStarted warns, once a run is over, about nodes whose
// rancher-ha it stopped (an upgrade, a resize, a restore) and did not
// start again: the Rancher server is down until they start, whatever
// stopped their start (a failure, an interrupt).
func stoppedNotStarted(w io.Writer, walked []*engine.Result, h stopHint) {
	started := map[string]bool{}
	loadSeen, loaded, loadFailed := false, false, false
	for _, res := range walked {
		for _, s := range res.Steps {
			switch plans.Kind(string(s.Addr)) {
			case "ha.start":
				if s.Status == engine.StatusApplied || s.Status == engine.StatusUnchanged {
					started[s.Host] = true
				}
			case "restore.load":
				loadSeen, loaded, loadFailed = true, s.Status == engine.StatusApplied, s.Status == engine.StatusFailed
			}
		}
	}
	var down []string
	for _, res := range walked {
		for _, s := range res.Steps {
			if k := plans.Kind(string(s.Addr)); (k == "ha.stop" || k == "restore.stop") && s.Status == engine.StatusApplied && !started[s.Host] && !slices.Contains(down, s.Host) {
				down = append(down, s.Host)
			}
		}
	}
	if len(down) == 0 {
		return
	}
	state := "the Rancher server is down"
	if len(started) > 0 {
		state = "the cluster runs without them, or not at all if fewer than a quorum started"
	}
	fmt.Fprintf(w, "\nWarning: this run stopped rancher-ha on %s and did not start it again: %s.\n", strings.Join(down, ", "), state)
	switch {
	case loadFailed:
		// The client streams the dump: a load that failed or was cut
		// may have replaced part of the database.
		fmt.Fprintf(w, "The dump may be partly loaded: do not start the cluster on it. Fix what failed above and run haplan restore -f %s %s again.\n", h.manifest, h.dump)
	case loadSeen && !loaded:
		fmt.Fprintf(w, "The dump was not loaded. To restore it: haplan restore -f %s %s again; to start the cluster on the database as it is: haplan apply -f %s.\n", h.manifest, h.dump, h.manifest)
	case loadSeen:
		fmt.Fprintf(w, "The dump is loaded: haplan apply -f %s starts every node together.\n", h.manifest)
	default:
		fmt.Fprintf(w, "Fix what failed above and run haplan apply -f %s again: it starts every node together.", h.manifest)
		if h.backup != "" {
			fmt.Fprintf(w, " To go back instead: haplan restore -f %s %s (with the manifest set back).", h.manifest, h.backup)
		}
		fmt.Fprintln(w)
	}
}
