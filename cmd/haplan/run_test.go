package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/haplan/haplan/internal/syncbuf"

	"github.com/google/go-cmp/cmp"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/health"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/preflight"
	"github.com/haplan/haplan/resources"
)

const testSecret = "hunter2-db-password"

// world is the fake live state the fake steps probe and change.
type world struct {
	mu      sync.Mutex
	ok      map[engine.Addr]bool // converged steps
	applied []engine.Addr
}

func (w *world) isOK(a engine.Addr) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ok[a]
}

func (w *world) set(a engine.Addr, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ok[a] = ok
}

func (w *world) appliedSteps() []engine.Addr {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]engine.Addr(nil), w.applied...)
}

type fakeStep struct {
	addr    engine.Addr
	deps    []engine.Addr
	host    string
	w       *world
	err     error                                     // returned by Apply
	details []plans.Detail                            // put into a pending change
	onApply func(ctx context.Context) error           // optional hook run by Apply
	onProbe func(ctx context.Context) error           // optional hook run by Probe
	_       func(context.Context, plans.Change) error // keeps the struct uncomparable-safe
}

func (s *fakeStep) Addr() engine.Addr   { return s.addr }
func (s *fakeStep) Deps() []engine.Addr { return s.deps }
func (s *fakeStep) Host() string        { return s.host }
func (s *fakeStep) Probe(ctx context.Context) (engine.State, error) {
	if s.onProbe != nil {
		if err := s.onProbe(ctx); err != nil {
			return nil, err
		}
	}
	return s.w.isOK(s.addr), nil
}
func (s *fakeStep) Diff(cur engine.State) plans.Change {
	if cur.(bool) {
		return plans.Change{Action: plans.NoOp, Reason: "as declared"}
	}
	return plans.Change{Action: plans.Create, Reason: "missing", Details: s.details}
}
func (s *fakeStep) Apply(ctx context.Context, _ plans.Change) error {
	if s.onApply != nil {
		if err := s.onApply(ctx); err != nil {
			return err
		}
	}
	if s.err != nil {
		return s.err
	}
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	s.w.ok[s.addr] = true
	s.w.applied = append(s.w.applied, s.addr)
	return nil
}

type fakeEnv struct {
	steps     []engine.Step
	preflight *preflight.Report
	// preflightAfter, when set, holds Preflight back until it is closed.
	preflightAfter chan struct{}
	lost           chan struct{} // closed by a test: the lock's connection dropped
	lockErr        error
	status         *health.Report
	unlocked       bool
	lockWait       time.Duration
	holder         *resources.LockHolder // LockStatus answers it
	takenBy        *resources.LockHolder // ForceUnlock: the run that takes the lock at once
	forced         []int64               // the IDs ForceUnlock ended
	lastBackup     string
	mu             sync.Mutex
}

func (e *fakeEnv) Steps() []engine.Step { return e.steps }
func (e *fakeEnv) Lock(_ context.Context, _ resources.LockHolder, wait time.Duration) (func(context.Context) error, error) {
	e.mu.Lock()
	e.lockWait = wait
	e.mu.Unlock()
	if e.lockErr != nil {
		return nil, e.lockErr
	}
	return func(context.Context) error {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.unlocked = true
		return nil
	}, nil
}
func (e *fakeEnv) LockStatus(context.Context) (*resources.LockHolder, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.holder, nil
}
func (e *fakeEnv) ForceUnlock(_ context.Context, id int64) (*resources.LockHolder, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.forced = append(e.forced, id)
	e.holder = e.takenBy
	return e.takenBy, nil
}
func (e *fakeEnv) LastBackup() string        { return e.lastBackup }
func (e *fakeEnv) Endpoints() []string       { return []string{"https://10.0.0.10"} }
func (e *fakeEnv) Close() error              { return nil }
func (e *fakeEnv) LockLost() <-chan struct{} { return e.lost }
func (e *fakeEnv) BackupFile(_ context.Context, path string) (*resources.BackupInfo, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	const dump = "-- dump of lab\n"
	if err := os.WriteFile(path, []byte(dump), 0o600); err != nil {
		return nil, err
	}
	return &resources.BackupInfo{Cluster: "lab", Size: int64(len(dump))}, os.WriteFile(path+".json", []byte("{}\n"), 0o600)
}
func (e *fakeEnv) RestoreSteps(string, resources.BackupInfo) []engine.Step { return nil }
func (e *fakeEnv) DestroySteps(resources.DestroyOptions) []engine.Step     { return e.steps }
func (e *fakeEnv) Status(context.Context) *health.Report {
	if e.status != nil {
		return e.status
	}
	return &health.Report{Cluster: "lab"}
}
func (e *fakeEnv) Preflight(context.Context) *preflight.Report {
	if e.preflightAfter != nil {
		select {
		case <-e.preflightAfter:
		case <-time.After(10 * time.Second):
		}
	}
	if e.preflight != nil {
		return e.preflight
	}
	return &preflight.Report{Findings: []preflight.Finding{{Severity: preflight.OK, Check: "ssh", Host: "rs1", Message: "ok"}}}
}

// fixture is a CLI wired to fake steps: db -> image[rs1], image[rs2] -> start.
type fixture struct {
	t              *testing.T
	dir, manifest  string
	w              *world
	env            *fakeEnv
	digest         string
	stdout, stderr *syncbuf.Buffer
	stdin          io.Reader
	stdinTTY       bool
	stdoutTTY      bool
	sigs           chan os.Signal
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, dir: dir, manifest: filepath.Join(dir, "cluster.yaml"), digest: "sha256:m1",
		w: &world{ok: map[engine.Addr]bool{}}, stdin: strings.NewReader("")}
	if err := os.WriteFile(f.manifest, []byte("name: lab\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mk := func(a engine.Addr, host string, deps ...engine.Addr) *fakeStep {
		return &fakeStep{addr: a, host: host, deps: deps, w: f.w}
	}
	f.env = &fakeEnv{steps: []engine.Step{
		mk("db.database", ""),
		mk("image.pull[rs1]", "rs1", "db.database"),
		mk("image.pull[rs2]", "rs2", "db.database"),
		mk("ha.start[rs1]", "rs1", "image.pull[rs1]", "image.pull[rs2]"),
	}}
	return f
}

func (f *fixture) step(a engine.Addr) *fakeStep {
	for _, s := range f.env.steps {
		if s.Addr() == a {
			return s.(*fakeStep)
		}
	}
	f.t.Fatalf("no step %s", a)
	return nil
}

func (f *fixture) converge() {
	for _, s := range f.env.steps {
		f.w.set(s.Addr(), true)
	}
}

func (f *fixture) run(args ...string) int {
	f.t.Helper()
	f.stdout, f.stderr = &syncbuf.Buffer{}, &syncbuf.Buffer{}
	a := &app{
		stdin: f.stdin, stdout: f.stdout, stderr: f.stderr, stdinTTY: f.stdinTTY, stdoutTTY: f.stdoutTTY,
		getenv: func(string) string { return "" },
		now:    func() time.Time { return created },
		backend: backend{Load: func(path string, o loadOptions) (*loadedManifest, error) {
			if strings.HasSuffix(path, "bad.yaml") {
				fmt.Fprintln(o.Diags, "Error: unknown field \"adress\"")
				return nil, fmt.Errorf("%s: %w", path, errInvalidManifest)
			}
			return &loadedManifest{Name: "lab", Digest: f.digest, Secrets: []string{testSecret}, Database: "cattle",
				Connect: func(context.Context, *slog.Logger) (clusterEnv, error) { return f.env, nil }}, nil
		}},
		interrupts: f.sigs,
	}
	return a.run(context.Background(), args)
}

func (f *fixture) wantCode(got, want int) {
	f.t.Helper()
	if got != want {
		f.t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", got, want, f.stdout, f.stderr)
	}
}

func TestPlanDetailedExitCode(t *testing.T) {
	f := newFixture(t)
	f.wantCode(f.run("plan", "-f", f.manifest, "--detailed-exitcode"), exitChanges)
	if !strings.Contains(f.stdout.String(), "Plan: 4 to add, 0 to change, 0 to destroy.") {
		t.Errorf("no summary line:\n%s", f.stdout)
	}
	f.wantCode(f.run("plan", "-f", f.manifest), exitOK) // without the flag, changes are success
	f.converge()
	f.wantCode(f.run("plan", "-f", f.manifest, "--detailed-exitcode"), exitOK)
	if !strings.Contains(f.stdout.String(), "No changes.") {
		t.Errorf("no no-changes line:\n%s", f.stdout)
	}
}

func TestPlanFormats(t *testing.T) {
	f := newFixture(t)
	f.wantCode(f.run("plan", "-f", f.manifest, "--json"), exitOK)
	p, err := plans.Decode(strings.NewReader(f.stdout.String()))
	if err != nil {
		t.Fatalf("plan --json is not a plan: %v\n%s", err, f.stdout)
	}
	if p.Cluster != "lab" || p.ManifestDigest != f.digest || len(p.Changes) != 4 {
		t.Errorf("plan --json = %+v", p)
	}
	f.wantCode(f.run("plan", "-f", f.manifest, "--format", "markdown"), exitOK)
	if !strings.HasPrefix(f.stdout.String(), "### haplan plan for `lab`") {
		t.Errorf("markdown:\n%s", f.stdout)
	}
	f.wantCode(f.run("plan", "-f", f.manifest, "--format", "yaml"), exitError)
}

func TestPlanTarget(t *testing.T) {
	f := newFixture(t)
	f.wantCode(f.run("plan", "-f", f.manifest, "--json", "--target", "image.pull[rs1]"), exitOK)
	p, err := plans.Decode(strings.NewReader(f.stdout.String()))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range p.Changes {
		got = append(got, c.Addr)
	}
	if diff := cmp.Diff([]string{"db.database", "image.pull[rs1]"}, got); diff != "" || !p.Partial {
		t.Errorf("targeted plan (partial=%v) (-want +got):\n%s", p.Partial, diff)
	}
	f.wantCode(f.run("plan", "-f", f.manifest, "--target", "nothing[*]"), exitError)
	if !strings.Contains(f.stderr.String(), "matches no step") {
		t.Errorf("stderr:\n%s", f.stderr)
	}
}

func TestApplyWithoutTerminalRefuses(t *testing.T) {
	f := newFixture(t)
	f.wantCode(f.run("apply", "-f", f.manifest), exitError)
	if !strings.Contains(f.stderr.String(), "stdin is not a terminal") {
		t.Errorf("no refusal message:\n%s", f.stderr)
	}
	if got := f.w.appliedSteps(); len(got) != 0 {
		t.Errorf("applied %v without approval", got)
	}
}

func TestApplyAsksOnATerminal(t *testing.T) {
	f := newFixture(t)
	f.stdinTTY = true
	f.stdin = strings.NewReader("no\n")
	f.wantCode(f.run("apply", "-f", f.manifest), exitError)
	if len(f.w.appliedSteps()) != 0 || !strings.Contains(f.stdout.String(), "Only 'yes' will be accepted:") {
		t.Fatalf("declined apply: applied %v\n%s", f.w.appliedSteps(), f.stdout)
	}
	f.stdin = strings.NewReader("yes\n")
	f.wantCode(f.run("apply", "-f", f.manifest), exitOK)
	if got := len(f.w.appliedSteps()); got != 4 {
		t.Errorf("applied %d steps, want 4", got)
	}
}

func TestApplyAutoApprove(t *testing.T) {
	f := newFixture(t)
	f.wantCode(f.run("apply", "-f", f.manifest, "--auto-approve"), exitOK)
	out := f.stdout.String()
	for _, s := range []string{"apply  image.pull[rs1] started", "Apply complete: 4 applied", "https://10.0.0.10"} {
		if !strings.Contains(out, s) {
			t.Errorf("stdout lacks %q:\n%s", s, out)
		}
	}
	if !f.env.unlocked {
		t.Error("lock not released")
	}
	// Converged: nothing to do, no question asked.
	f.wantCode(f.run("apply", "-f", f.manifest), exitOK)
	if !strings.Contains(f.stdout.String(), "Nothing to apply.") {
		t.Errorf("stdout:\n%s", f.stdout)
	}
}

func TestApplyFailureReportsSkippedAndLog(t *testing.T) {
	f := newFixture(t)
	f.step("image.pull[rs2]").err = errors.New("pull access denied")
	f.wantCode(f.run("apply", "-f", f.manifest, "--auto-approve"), exitError)
	out := f.stdout.String()
	for _, s := range []string{"Apply failed:", "✗ image.pull[rs2] on rs2", "pull access denied", "ha.start[rs1] (because image.pull[rs2] failed)", "haplan plan"} {
		if !strings.Contains(out, s) {
			t.Errorf("stdout lacks %q:\n%s", s, out)
		}
	}
	logs, _ := filepath.Glob(filepath.Join(f.dir, ".haplan", "logs", "apply-*.log"))
	if len(logs) != 1 || !strings.Contains(f.stderr.String(), logs[0]) {
		t.Fatalf("log %v not named on stderr:\n%s", logs, f.stderr)
	}
	if fi, err := os.Stat(logs[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("log mode: %v %v", fi.Mode(), err)
	}
}

func TestApplySavedPlan(t *testing.T) {
	f := newFixture(t)
	planFile := filepath.Join(f.dir, "tonight.plan")
	f.wantCode(f.run("plan", "-f", f.manifest, "--out", planFile), exitOK)
	if fi, err := os.Stat(planFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("plan file: %v %v", fi, err)
	}
	// A saved plan is the approval: no terminal needed.
	f.wantCode(f.run("apply", "-f", f.manifest, planFile), exitOK)
	if got := len(f.w.appliedSteps()); got != 4 {
		t.Errorf("applied %d steps, want 4", got)
	}
}

func TestApplyStalePlanRefused(t *testing.T) {
	f := newFixture(t)
	planFile := filepath.Join(f.dir, "tonight.plan")
	f.wantCode(f.run("plan", "-f", f.manifest, "--out", planFile), exitOK)
	f.w.set("image.pull[rs2]", true) // someone pulled the image meanwhile
	f.wantCode(f.run("apply", "-f", f.manifest, planFile), exitError)
	if !strings.Contains(f.stderr.String(), "image.pull[rs2]: state changed since the plan was made (planned: + missing; now: no change (as declared))") {
		t.Errorf("drift not named:\n%s", f.stderr)
	}
	if got := f.w.appliedSteps(); len(got) != 0 {
		t.Errorf("stale plan applied %v", got)
	}

	f.digest = "sha256:m2"
	f.wantCode(f.run("apply", "-f", f.manifest, planFile), exitError)
	if !strings.Contains(f.stderr.String(), "the manifest changed since the plan was made") {
		t.Errorf("manifest change not reported:\n%s", f.stderr)
	}
}

func TestApplyLockHeld(t *testing.T) {
	f := newFixture(t)
	f.env.lockErr = &resources.LockHeldError{Name: "haplan-lab", Holder: &resources.LockHolder{User: "alice", Machine: "ops1", PID: 4242, Since: time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC), Command: "haplan apply"}}
	f.wantCode(f.run("apply", "-f", f.manifest, "--auto-approve"), exitLocked)
	if !strings.Contains(f.stderr.String(), "alice@ops1 pid 4242") || !strings.Contains(f.stderr.String(), "force-unlock") {
		t.Errorf("holder not named:\n%s", f.stderr)
	}
	if len(f.w.appliedSteps()) != 0 {
		t.Error("applied without the lock")
	}
}

func TestApplyFirstInterruptStopsScheduling(t *testing.T) {
	f := newFixture(t)
	f.sigs = make(chan os.Signal, 1)
	stderr := func() string { return f.stderr.String() }
	f.step("db.database").onApply = func(ctx context.Context) error {
		f.sigs <- syscall.SIGINT
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(stderr(), "starting no new steps") {
			if time.Now().After(deadline) {
				return errors.New("interrupt not seen")
			}
			time.Sleep(5 * time.Millisecond)
		}
		return nil
	}
	f.wantCode(f.run("apply", "-f", f.manifest, "--auto-approve"), exitError)
	if diff := cmp.Diff([]engine.Addr{"db.database"}, f.w.appliedSteps()); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
	if !strings.Contains(f.stdout.String(), "Not started (interrupted):") {
		t.Errorf("stdout:\n%s", f.stdout)
	}
}

func TestSecretsNeverLeave(t *testing.T) {
	f := newFixture(t)
	f.step("image.pull[rs1]").details = []plans.Detail{{Name: "env", New: "CATTLE_DB_PASSWORD=" + testSecret}}
	f.step("image.pull[rs2]").err = fmt.Errorf("docker login: password %s rejected", testSecret)
	planFile := filepath.Join(f.dir, "tonight.plan")
	check := func(where, s string) {
		t.Helper()
		if strings.Contains(s, testSecret) {
			t.Errorf("secret in %s:\n%s", where, s)
		}
	}
	f.wantCode(f.run("plan", "-f", f.manifest, "--out", planFile), exitOK)
	check("plan stdout", f.stdout.String())
	b, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	check("plan file", string(b))
	for _, args := range [][]string{{"--auto-approve"}, {"--auto-approve", "--json"}} {
		f.wantCode(f.run(append([]string{"apply", "-f", f.manifest}, args...)...), exitError)
		check("apply stdout", f.stdout.String())
		check("apply stderr", f.stderr.String())
		if !strings.Contains(f.stdout.String(), "(sensitive)") {
			t.Errorf("the error was not shown masked:\n%s", f.stdout)
		}
	}
	logs, _ := filepath.Glob(filepath.Join(f.dir, ".haplan", "logs", "apply-*.log"))
	if len(logs) == 0 {
		t.Fatal("no log written")
	}
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "rejected") {
			t.Errorf("log %s lacks the failure:\n%s", l, b)
		}
		check("log", string(b))
	}
	// plan keeps a debug log too, as clean of the secret.
	plans, _ := filepath.Glob(filepath.Join(f.dir, ".haplan", "logs", "plan-*.log"))
	if len(plans) == 0 {
		t.Fatal("plan wrote no debug log")
	}
	for _, l := range plans {
		b, _ := os.ReadFile(l)
		check("plan log", string(b))
	}
}

func TestCommandLine(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		args []string
		code int
		out  string // in stdout or stderr
	}{
		{"no command", nil, exitError, "Usage: haplan"},
		{"unknown command", []string{"frobnicate"}, exitError, `unknown command "frobnicate"`},
		{"unknown command, close to one", []string{"aply"}, exitError, `unknown command "aply" (did you mean "apply"?)`},
		{"help for an unknown command", []string{"help", "pland"}, exitError, `unknown command "pland" (did you mean "plan"?)`},
		{"flag close to one", []string{"plan", "--targt", "x"}, exitError, "haplan plan: unknown flag --targt (did you mean --target?)"},
		{"version --json", []string{"version", "--json"}, exitOK, `"go_version": "go`},
		{"apply a manifest", []string{"apply", "cluster.yaml"}, exitError, "cluster.yaml looks like a manifest; apply's argument is a plan saved by 'haplan plan --out', and the manifest is given with -f: haplan apply -f cluster.yaml"},
		{"help", []string{"--help"}, exitOK, "Exit codes:"},
		{"help plan", []string{"help", "plan"}, exitOK, "--detailed-exitcode"},
		{"plan -h", []string{"plan", "-h"}, exitOK, "Examples:"},
		{"bad flag", []string{"plan", "--frob"}, exitError, "haplan plan: unknown flag --frob\nRun 'haplan plan --help' for its options."},
		{"bad flag value", []string{"plan", "--parallelism", "many"}, exitError, "invalid value \"many\" for flag -parallelism"},
		{"version", []string{"version"}, exitOK, "haplan "},
		{"validate ok", []string{"validate", "-f", f.manifest}, exitOK, "is valid"},
		{"validate bad", []string{"validate", "-f", filepath.Join(f.dir, "bad.yaml")}, exitError, `unknown field "adress"`},
		{"plan bad manifest", []string{"plan", "-f", filepath.Join(f.dir, "bad.yaml")}, exitError, `unknown field "adress"`},
		{"graph dot", []string{"graph", "-f", f.manifest}, exitOK, `"image.pull[rs1]" -> "ha.start[rs1]";`},
		{"graph mermaid", []string{"graph", "-f", f.manifest, "--format", "mermaid"}, exitOK, "flowchart LR"},
		{"apply flags after plan file", []string{"apply", "missing.plan", "-f", f.manifest}, exitError, "missing.plan"},
		{"parallelism", []string{"apply", "-f", f.manifest, "--parallelism", "0"}, exitError, "at least 1"},
		{"force-unlock, nothing held", []string{"force-unlock", "-f", f.manifest}, exitOK, "No lock was held on cluster lab."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := f.run(tt.args...)
			all := f.stdout.String() + f.stderr.String()
			if code != tt.code || !strings.Contains(all, tt.out) {
				t.Errorf("haplan %v: exit %d (want %d), output lacks %q:\n%s", tt.args, code, tt.code, tt.out, all)
			}
		})
	}
}

func TestPreflightBlocksApplyAndShowsWarnings(t *testing.T) {
	f := newFixture(t)
	f.env.preflight = &preflight.Report{Findings: []preflight.Finding{
		{Severity: preflight.Error, Check: "max_connections", Host: "db", Message: "max_connections is 151; 5 nodes need at least 250"},
		{Severity: preflight.Warning, Check: "clock", Host: "rs2", Message: "clock 3.1s ahead"},
		{Severity: preflight.OK, Check: "ssh", Host: "rs1", Message: "connected"},
	}}
	f.wantCode(f.run("apply", "-f", f.manifest, "--auto-approve"), exitError)
	if got := f.w.appliedSteps(); len(got) != 0 {
		t.Errorf("applied %v despite a preflight error", got)
	}
	for _, want := range []string{"max_connections is 151", "clock 3.1s ahead", "preflight"} {
		if !strings.Contains(f.stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, f.stderr)
		}
	}
	if strings.Contains(f.stderr.String(), "connected") {
		t.Errorf("passing checks are listed by plan/apply; only haplan check lists them:\n%s", f.stderr)
	}

	// A warning alone does not block; check lists everything and exits 1 on errors.
	f.env.preflight.Findings = f.env.preflight.Findings[1:]
	f.wantCode(f.run("apply", "-f", f.manifest, "--auto-approve"), exitOK)
	if got := len(f.w.appliedSteps()); got != 4 {
		t.Errorf("applied %d steps with only a warning, want 4", got)
	}
	f.wantCode(f.run("check", "-f", f.manifest), exitOK)
	if !strings.Contains(f.stdout.String(), "connected") {
		t.Errorf("check does not list passing checks:\n%s", f.stdout)
	}
}

func TestPreflightRunsWithTheProbesAndCancelsThem(t *testing.T) {
	f := newFixture(t)
	f.env.preflight = &preflight.Report{Findings: []preflight.Finding{
		{Severity: preflight.Error, Check: "ssh", Host: "rs2", Message: "cannot connect over SSH to 10.0.0.12"},
	}}
	// A probe stuck on an unreachable host: only cancellation ends it
	// early. The preflight answers once that probe runs, so both run at
	// the same time.
	cancelled := make(chan bool, 1)
	f.env.preflightAfter = make(chan struct{})
	f.step("db.database").onProbe = func(ctx context.Context) error {
		close(f.env.preflightAfter)
		select {
		case <-ctx.Done():
			cancelled <- true
			return ctx.Err()
		case <-time.After(30 * time.Second):
			cancelled <- false
			return nil
		}
	}
	f.wantCode(f.run("plan", "-f", f.manifest), exitError)
	select {
	case c := <-cancelled:
		if !c {
			t.Error("blocking preflight findings did not cancel the running probes")
		}
	default:
		t.Error("no probe ran alongside the preflight checks")
	}
	errOut := f.stderr.String()
	if !strings.Contains(errOut, "cannot connect over SSH to 10.0.0.12") {
		t.Errorf("stderr lacks the preflight finding:\n%s", errOut)
	}
	if strings.Contains(errOut, "canceled") || strings.Contains(errOut, "db.database") {
		t.Errorf("stderr reports the probes cut short by the preflight failure:\n%s", errOut)
	}
	if f.stdout.String() != "" {
		t.Errorf("a plan was printed despite the preflight failure:\n%s", f.stdout)
	}
}

func TestApplyStopsSchedulingWhenTheLockIsLost(t *testing.T) {
	f := newFixture(t)
	f.env.lost = make(chan struct{})
	// The lock drops while the first step runs: it finishes, nothing else starts.
	f.step("db.database").onApply = func(context.Context) error {
		close(f.env.lost)
		// Finish only once the watcher has reacted (it stops scheduling,
		// then prints; the engine checks stop when this step ends).
		for i := 0; i < 500 && !strings.Contains(f.stderr.String(), "Lost the cluster lock"); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		return nil
	}
	f.wantCode(f.run("apply", "-f", f.manifest, "--auto-approve"), exitError)
	if diff := cmp.Diff([]engine.Addr{"db.database"}, f.w.appliedSteps()); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
	if !strings.Contains(f.stderr.String(), "Lost the cluster lock") {
		t.Errorf("no lost-lock notice:\n%s", f.stderr)
	}
}

func TestStatusExitCodes(t *testing.T) {
	serving := health.Node{Name: "rs1", Reachable: true, Container: "running", API: true}
	ha := []health.Host{{ID: "1h1", State: "active"}}
	for _, tc := range []struct {
		name string
		rep  *health.Report
		want int
	}{
		{"healthy", &health.Report{Cluster: "lab", Nodes: []health.Node{serving}, SystemHA: ha, Database: health.Database{Reachable: true}, LB: health.LB{Ping: true}}, exitOK},
		{"degraded", &health.Report{Cluster: "lab", Nodes: []health.Node{serving}, SystemHA: ha, Database: health.Database{Reachable: true}, LB: health.LB{Ping: true},
			Hosts: []health.RegisteredHost{{Name: "h1", Environment: "Default"}}}, exitDegraded},
		{"down", &health.Report{Cluster: "lab", Nodes: []health.Node{serving}, SystemHA: ha, LB: health.LB{Ping: true}}, exitDown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.env.status = tc.rep
			f.wantCode(f.run("status", "-f", f.manifest), tc.want)
			if first, _, _ := strings.Cut(f.stdout.String(), "\n"); !strings.HasPrefix(first, "Cluster lab: ") {
				t.Errorf("first line %q, want the verdict", first)
			}
			f.wantCode(f.run("status", "-f", f.manifest, "--json"), tc.want)
			var got health.Report
			if err := json.Unmarshal([]byte(f.stdout.String()), &got); err != nil || len(got.Findings) != len(tc.rep.Findings) {
				t.Errorf("--json: %v; findings %d, want %d", err, len(got.Findings), len(tc.rep.Findings))
			}
		})
	}
}

func TestBackupWritesDumpAndRecord(t *testing.T) {
	f := newFixture(t)
	out := filepath.Join(f.dir, "b", "lab.sql")
	f.wantCode(f.run("backup", "-f", f.manifest, "-o", out), exitOK)
	for _, p := range []string{out, out + ".json"} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", p, err, fi)
		}
	}
	if b, _ := os.ReadFile(out); string(b) != "-- dump of lab\n" {
		t.Errorf("dump = %q", b)
	}
	if !strings.Contains(f.stdout.String(), "haplan restore -f "+f.manifest+" "+out) {
		t.Errorf("the restore command is not shown:\n%s", f.stdout)
	}
}

func TestRestoreRefusesAnotherClustersDump(t *testing.T) {
	f := newFixture(t)
	dump := filepath.Join(f.dir, "other.sql")
	rec := `{"cluster":"other","database":"cattle","registration_url":"https://other.example","server_image":"","sha256":"ab"}`
	if err := os.WriteFile(dump, []byte("--\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dump+".json", []byte(rec), 0o600); err != nil {
		t.Fatal(err)
	}
	f.wantCode(f.run("restore", "-f", f.manifest, "--auto-approve", dump), exitError)
	if !strings.Contains(f.stderr.String(), "registered at https://other.example") || !strings.Contains(f.stderr.String(), "--force") {
		t.Errorf("refusal does not name the other cluster and --force:\n%s", f.stderr)
	}
	if len(f.w.appliedSteps()) != 0 {
		t.Error("applied something")
	}
	other := `{"cluster":"lab","database":"cattle_prod","registration_url":"https://10.0.0.10","server_image":"","sha256":"ab"}`
	if err := os.WriteFile(dump+".json", []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	f.wantCode(f.run("restore", "-f", f.manifest, "--auto-approve", "--force", dump), exitError)
	if !strings.Contains(f.stderr.String(), `a dump of database "cattle_prod"`) {
		t.Errorf("a dump of another database, even with --force:\n%s", f.stderr)
	}
	if err := os.Remove(dump + ".json"); err != nil {
		t.Fatal(err)
	}
	f.wantCode(f.run("restore", "-f", f.manifest, "--auto-approve", dump), exitError)
	if !strings.Contains(f.stderr.String(), "other.sql.json is missing") {
		t.Errorf("a dump without its record:\n%s", f.stderr)
	}
}

func TestDestroyAsksForTheClustersName(t *testing.T) {
	f := newFixture(t)
	f.wantCode(f.run("destroy", "-f", f.manifest), exitError)
	if !strings.Contains(f.stderr.String(), "stdin is not a terminal") || len(f.w.appliedSteps()) != 0 {
		t.Fatalf("destroy without a terminal: %s; applied %v", f.stderr, f.w.appliedSteps())
	}
	f.stdinTTY = true
	f.stdin = strings.NewReader("yes\n")
	f.wantCode(f.run("destroy", "-f", f.manifest), exitError)
	if !strings.Contains(f.stdout.String(), "Type its name") || len(f.w.appliedSteps()) != 0 {
		t.Fatalf("a 'yes' destroyed the cluster: applied %v", f.w.appliedSteps())
	}
	f.stdin = strings.NewReader("lab\n")
	f.wantCode(f.run("destroy", "-f", f.manifest), exitOK)
	if len(f.w.appliedSteps()) != 4 || !strings.Contains(f.stdout.String(), "Cluster lab is destroyed; its database is kept") {
		t.Fatalf("destroy with the name typed: applied %v\n%s", f.w.appliedSteps(), f.stdout)
	}
	f.wantCode(f.run("destroy", "-f", f.manifest, "--auto-approve"), exitOK)
	if !strings.Contains(f.stdout.String(), "Nothing to destroy.") {
		t.Errorf("a second destroy:\n%s", f.stdout)
	}
}

// show renders a saved plan as plan did, in every format, without the
// manifest (and so without connecting to anything).
func TestShowSavedPlan(t *testing.T) {
	f := newFixture(t)
	planFile := filepath.Join(f.dir, "tonight.plan")
	f.wantCode(f.run("plan", "-f", f.manifest, "--out", planFile, "--format", "markdown"), exitOK)
	planned := f.stdout.String()
	f.wantCode(f.run("plan", "-f", f.manifest, "--json"), exitOK)
	plannedJSON := f.stdout.String()
	os.Remove(f.manifest) // show needs none
	f.wantCode(f.run("show", "--format", "markdown", planFile), exitOK)
	if f.stdout.String() != planned {
		t.Errorf("show --format markdown:\n%s\nplan printed:\n%s", f.stdout, planned)
	}
	f.wantCode(f.run("show", "--json", planFile), exitOK)
	var a, b map[string]any
	if err := json.Unmarshal([]byte(f.stdout.String()), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(plannedJSON), &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a["changes"], b["changes"]) {
		t.Errorf("show --json changes differ from plan --json's")
	}
	f.wantCode(f.run("show", planFile), exitOK)
	if !strings.Contains(f.stdout.String(), "image.pull[rs2]") {
		t.Errorf("show (text):\n%s", f.stdout)
	}
	f.wantCode(f.run("show", filepath.Join(f.dir, "nope.plan")), exitError)
	f.wantCode(f.run("show"), exitError)
}

// force-unlock releases only the lock ID it is given, never a live run's
// without --force, asks on a terminal, and says when no lock was held.
func TestForceUnlock(t *testing.T) {
	f := newFixture(t)
	hung := &resources.LockHolder{ID: 77, Session: "database session 77 of root from 10.0.0.1:5555 (sleep for 5m0s)"}
	live := &resources.LockHolder{ID: 78, User: "alice", Machine: "ops1", PID: 1, Command: "haplan apply", Live: true}

	f.env.holder = hung
	f.wantCode(f.run("force-unlock", "-f", f.manifest, "99"), exitError)
	if !strings.Contains(f.stderr.String(), "lock ID 99 no longer holds the lock: database session 77") || len(f.env.forced) != 0 {
		t.Errorf("another ID: %s (forced %v)", f.stderr, f.env.forced)
	}
	f.env.holder = live
	f.wantCode(f.run("force-unlock", "-f", f.manifest), exitError)
	if !strings.Contains(f.stderr.String(), "held by a run that is alive") || len(f.env.forced) != 0 {
		t.Errorf("live holder: %s (forced %v)", f.stderr, f.env.forced)
	}
	f.wantCode(f.run("force-unlock", "-f", f.manifest, "--force", "78"), exitOK)
	if len(f.env.forced) != 1 || f.env.forced[0] != 78 {
		t.Errorf("--force: forced %v", f.env.forced)
	}
	// On a terminal it asks; anything but yes keeps the lock.
	f.env.holder, f.stdinTTY = hung, true
	f.stdin = strings.NewReader("no\n")
	f.wantCode(f.run("force-unlock", "-f", f.manifest, "77"), exitError)
	if len(f.env.forced) != 1 || !strings.Contains(f.stdout.String(), "Only 'yes' will be accepted") {
		t.Errorf("declined: forced %v\n%s", f.env.forced, f.stdout)
	}
	f.stdin = strings.NewReader("yes\n")
	f.wantCode(f.run("force-unlock", "-f", f.manifest, "77"), exitOK)
	if len(f.env.forced) != 2 || f.env.forced[1] != 77 || !strings.Contains(f.stdout.String(), "is released") {
		t.Errorf("accepted: forced %v\n%s", f.env.forced, f.stdout)
	}
	// Another run that was waiting takes the lock at once: released all
	// the same, and said, so nobody forces the live run's lock next.
	f.env.holder, f.env.takenBy, f.stdinTTY = hung, live, false
	f.wantCode(f.run("force-unlock", "-f", f.manifest, "77"), exitOK)
	if out := f.stdout.String(); !strings.Contains(out, "is released") || !strings.Contains(out, "Another run took it at once and holds it now: "+live.String()) {
		t.Errorf("taken at once by another run:\n%s", out)
	}
}

// apply --lock-timeout waits for the lock; a refused apply names the lock
// ID to force-unlock.
func TestApplyLockTimeout(t *testing.T) {
	f := newFixture(t)
	f.wantCode(f.run("apply", "-f", f.manifest, "--auto-approve", "--lock-timeout", "90s"), exitOK)
	if f.env.lockWait != 90*time.Second {
		t.Errorf("lock wait %s, want 90s", f.env.lockWait)
	}
	f.env.lockErr = &resources.LockHeldError{Name: "haplan/lab", Holder: &resources.LockHolder{ID: 42, Session: "database session 42"}}
	f.wantCode(f.run("apply", "-f", f.manifest, "--auto-approve"), exitLocked)
	if !strings.Contains(f.stderr.String(), "haplan force-unlock -f "+f.manifest+" 42") {
		t.Errorf("stderr:\n%s", f.stderr)
	}
}

// Colours only on a terminal, and never with --no-color (anywhere on the
// line) or NO_COLOR.
func TestNoColor(t *testing.T) {
	f := newFixture(t)
	f.stdoutTTY = true
	f.wantCode(f.run("plan", "-f", f.manifest), exitOK)
	if !strings.Contains(f.stdout.String(), "\x1b[") {
		t.Fatalf("no colour on a terminal:\n%q", f.stdout)
	}
	for _, args := range [][]string{{"--no-color", "plan", "-f", f.manifest}, {"plan", "-f", f.manifest, "--no-color"}} {
		f.wantCode(f.run(args...), exitOK)
		if strings.Contains(f.stdout.String(), "\x1b[") {
			t.Errorf("%v: colour:\n%q", args, f.stdout)
		}
	}
}

// -v and --log-level also write the run's log to stderr, redacted.
func TestVerbose(t *testing.T) {
	f := newFixture(t)
	f.wantCode(f.run("plan", "-f", f.manifest), exitOK)
	if strings.Contains(f.stderr.String(), "level=INFO") {
		t.Fatalf("log on stderr without -v:\n%s", f.stderr)
	}
	f.wantCode(f.run("-v", "plan", "-f", f.manifest), exitOK)
	if !strings.Contains(f.stderr.String(), "level=INFO msg=plan cluster=lab") {
		t.Errorf("-v: stderr:\n%s", f.stderr)
	}
	f.wantCode(f.run("plan", "--log-level=warn", "-f", f.manifest), exitOK)
	if strings.Contains(f.stderr.String(), "level=INFO") {
		t.Errorf("--log-level=warn shows info:\n%s", f.stderr)
	}
	f.wantCode(f.run("plan", "--log-level=loud", "-f", f.manifest), exitError)
}
