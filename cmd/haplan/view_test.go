package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/plans"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", name, diff)
	}
}

var created = time.Date(2026, 11, 27, 7, 40, 0, 0, time.UTC)

// samplePlan has one change of every kind the views treat differently.
func samplePlan() *plans.Plan {
	return &plans.Plan{
		FormatVersion: plans.FormatVersion, Cluster: "prod-rancher", ManifestDigest: "sha256:m1", Created: created,
		Changes: []plans.Change{
			{Addr: "db.database", Kind: "db.database", Action: plans.NoOp, Reason: "database cattle exists"},
			{Addr: "db.grant[rs2]", Kind: "db.grant", Action: plans.Update, Reason: "password changed",
				Details: []plans.Detail{{Name: "password", Old: "sha256:aa", New: "sha256:bb", Sensitive: true}}},
			{Addr: "lb.config", Kind: "lb.config", Host: "lb", Action: plans.Update, Reason: "config drifted",
				Details:  []plans.Detail{{Name: "digest", Old: "sha256:11", New: "sha256:22"}},
				Warnings: []string{"haproxy 1.5 is old"}},
			{Addr: "image.pull[rs1]", Kind: "image.pull", Host: "rs1", Action: plans.Create, Reason: "image rancher/server:v1.0.1 missing",
				Details: []plans.Detail{{Name: "image", New: "rancher/server:v1.0.1"}}},
			{Addr: "image.pull[rs2]", Kind: "image.pull", Host: "rs2", Action: plans.NoOp, Reason: "image present"},
			{Addr: "ha.start[rs2]", Kind: "ha.start", Host: "rs2", Action: plans.Replace, Reason: "container drifted:\nimage v1.0.0 -> v1.0.1"},
			{Addr: "bootstrap.stop", Kind: "bootstrap.stop", Host: "rs1", Action: plans.Delete, Reason: "bootstrap container still running"},
			{Addr: "ha.verify", Kind: "ha.verify", Action: plans.Create, Check: true, Reason: "3 HA hosts behind the LB"},
		},
		Probes: map[string]string{"db.database": "d1"},
	}
}

func noChangesPlan() *plans.Plan {
	return &plans.Plan{
		FormatVersion: plans.FormatVersion, Cluster: "prod-rancher", Created: created,
		Changes: []plans.Change{
			{Addr: "db.database", Action: plans.NoOp, Reason: "exists"},
			{Addr: "ha.verify", Action: plans.NoOp, Check: true},
		},
	}
}

func TestRenderTextGolden(t *testing.T) {
	tests := []struct {
		name string
		plan *plans.Plan
		opts textOptions
	}{
		{"plan.txt.golden", samplePlan(), textOptions{}},
		{"plan_unchanged.txt.golden", samplePlan(), textOptions{ShowUnchanged: true}},
		{"plan_nochanges.txt.golden", noChangesPlan(), textOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := renderText(&b, tt.plan, tt.opts); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(b.String(), "\x1b[") {
				t.Error("colour codes without Color")
			}
			golden(t, tt.name, b.String())
		})
	}
}

func TestRenderTextProperties(t *testing.T) {
	var b bytes.Buffer
	if err := renderText(&b, samplePlan(), textOptions{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	// The sensitive detail shows neither value, not even its digests.
	for _, s := range []string{"sha256:aa", "sha256:bb"} {
		if strings.Contains(out, s) {
			t.Errorf("sensitive detail value %q shown", s)
		}
	}
	// Summary lines come grouped by action: +, ~, ±, -.
	var symbols []string
	for _, l := range strings.Split(out, "\n") {
		if len(l) > 3 && l[:2] == "  " && strings.ContainsAny(l[2:3], "+~-±") || strings.HasPrefix(l, "  ±") {
			symbols = append(symbols, strings.Fields(l)[0]+" "+strings.Fields(l)[1])
			if len(symbols) == 5 {
				break
			}
		}
	}
	want := []string{"+ image.pull[rs1]", "~ db.grant[rs2]", "~ lb.config", "± ha.start[rs2]", "- bootstrap.stop"}
	if diff := cmp.Diff(want, symbols); diff != "" {
		t.Errorf("summary order (-want +got):\n%s", diff)
	}
	if strings.Contains(out, "image.pull[rs2]") {
		t.Error("unchanged step listed without --show-unchanged")
	}
	var c bytes.Buffer
	if err := renderText(&c, samplePlan(), textOptions{Color: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.String(), ansiGreen+"  + image.pull[rs1]") {
		t.Errorf("colour requested but the create line is not green:\n%q", c.String())
	}
}

func TestRenderMarkdownGolden(t *testing.T) {
	var b bytes.Buffer
	if err := renderMarkdown(&b, samplePlan()); err != nil {
		t.Fatal(err)
	}
	golden(t, "plan.md.golden", b.String())
}

// bigPlan has three changes on each of n hosts.
func bigPlan(n int) *plans.Plan {
	p := &plans.Plan{FormatVersion: plans.FormatVersion, Cluster: "big", Created: created}
	for i := range n {
		h := fmt.Sprintf("host-%04d.example.com", i)
		p.Changes = append(p.Changes,
			plans.Change{Addr: "cert.distribute[" + h + "]", Kind: "cert.distribute", Host: h, Action: plans.Create, Reason: "CA missing at /var/lib/rancher/etc/ssl/ca.crt",
				Details: []plans.Detail{{Name: "mode", New: "0400"}, {Name: "digest", New: "sha256:0123456789abcdef"}}},
			plans.Change{Addr: "image.pull[" + h + "]", Kind: "image.pull", Host: h, Action: plans.Create, Reason: "image rancher/server:v1.0.1 missing"},
			plans.Change{Addr: "agent.conf[" + h + "]", Kind: "agent.conf", Host: h, Action: plans.Update, Reason: "cluster IP differs",
				Details: []plans.Detail{{Name: "CATTLE_CLUSTER_ADVERTISE_ADDRESS", Old: "10.0.0.1", New: "10.0.0.2"}}},
		)
	}
	return p
}

func TestRenderMarkdownStaysUnderGitHubLimit(t *testing.T) {
	for _, n := range []int{1, 10, 100, 300, 1000, 5000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var b bytes.Buffer
			if err := renderMarkdown(&b, bigPlan(n)); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			if len(out) > 65535 {
				t.Fatalf("%d hosts: %d bytes, over GitHub's limit", n, len(out))
			}
			if !strings.HasSuffix(out, "\n") {
				t.Error("does not end with a whole line")
			}
			summary := bigPlan(n).SummaryLine()
			if !strings.Contains(out, summary) {
				t.Errorf("summary line %q missing", summary)
			}
			if strings.Count(out, "<details>") != strings.Count(out, "</details>") {
				t.Error("unbalanced <details>")
			}
			full := n <= 10
			if got := strings.Contains(out, "<details><summary>host-"); got != full {
				t.Errorf("details present = %v, want %v", got, full)
			}
			if !full && !strings.Contains(out, "`haplan plan`") {
				t.Error("shortened without saying so")
			}
		})
	}
	// With 1000 hosts the per-kind counts survive.
	var b bytes.Buffer
	if err := renderMarkdown(&b, bigPlan(1000)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "| + | `cert.distribute` | 1000 |") {
		t.Errorf("no per-kind count in the summary:\n%.2000s", b.String())
	}
}

func TestMarkdownFitLinesNeverCutsALine(t *testing.T) {
	p := &plans.Plan{Cluster: "x", Changes: []plans.Change{{Addr: "a", Action: plans.Create, Warnings: []string{strings.Repeat("w", 50000), strings.Repeat("v", 50000)}}}}
	out := markdown(p, 65535-1024)
	if len(out) > 65535-1024 {
		t.Fatalf("%d bytes", len(out))
	}
	if strings.Contains(out, strings.Repeat("v", 100)) && !strings.Contains(out, strings.Repeat("v", 50000)) {
		t.Error("a line was cut")
	}
}

func TestRenderJSONRoundTrip(t *testing.T) {
	var b bytes.Buffer
	want := samplePlan()
	if err := renderJSON(&b, want); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"format_version": "1"`) {
		t.Errorf("not versioned:\n%s", b.String())
	}
	got, err := plans.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestPlainEventLines(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 7, 40, 1, 0, time.UTC)
	now := t0
	var b bytes.Buffer
	v := newEventView(&b, eventViewOptions{Mode: eventsPlain, Now: func() time.Time { return now }})
	ch := &plans.Change{Addr: "image.pull[rs1]", Action: plans.Create}
	events := []engine.Event{
		{Time: t0, Kind: engine.ApplyStarted, Addr: "image.pull[rs1]", Host: "rs1", Phase: engine.PhaseApply, Change: ch},
		{Time: t0, Kind: engine.ApplyStarted, Addr: "bootstrap.run", Host: "rs1", Phase: engine.PhaseApply},
		{Time: t0.Add(2 * time.Second), Kind: engine.ApplyFinished, Addr: "image.pull[rs1]", Phase: engine.PhaseApply, Elapsed: 2 * time.Second},
		{Time: t0.Add(3 * time.Second), Kind: engine.ProgressReported, Addr: "bootstrap.run", Phase: engine.PhaseApply, Message: "waiting for http://10.0.0.11:8080/ping", Elapsed: 2*time.Minute + 10*time.Second},
	}
	for _, e := range events {
		v.handle(e)
	}
	now = t0.Add(12 * time.Second) // 9 s since the last event: not yet quiet
	v.tick()
	now = t0.Add(14 * time.Second) // 11 s: a notice
	v.tick()
	now = t0.Add(15 * time.Second) // just reported: no second notice
	v.tick()
	for _, e := range []engine.Event{
		{Time: t0.Add(20 * time.Second), Kind: engine.ApplyFailed, Addr: "bootstrap.run", Phase: engine.PhaseApply, Err: errors.New("ping: connection refused\nstderr: x"), Elapsed: 20 * time.Second},
		{Time: t0.Add(20 * time.Second), Kind: engine.Skipped, Addr: "bootstrap.stop", Phase: engine.PhaseApply, Message: "upstream failed: bootstrap.run"},
		{Time: t0.Add(20 * time.Second), Kind: engine.NotStarted, Addr: "ha.verify", Phase: engine.PhaseApply},
	} {
		v.handle(e)
	}
	if err := v.close(); err != nil {
		t.Fatal(err)
	}
	want := `2026-11-27T07:40:01Z apply  image.pull[rs1] started
2026-11-27T07:40:01Z apply  bootstrap.run started
2026-11-27T07:40:03Z apply  image.pull[rs1] done in 2s
2026-11-27T07:40:04Z apply  bootstrap.run waiting for http://10.0.0.11:8080/ping (2m10s)
2026-11-27T07:40:15Z apply  bootstrap.run still running (14s): waiting for http://10.0.0.11:8080/ping
2026-11-27T07:40:21Z apply  bootstrap.run FAILED after 20s: ping: connection refused stderr: x
2026-11-27T07:40:21Z apply  bootstrap.stop skipped: upstream failed: bootstrap.run
2026-11-27T07:40:21Z apply  ha.verify not started: interrupted
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("event lines (-want +got):\n%s", diff)
	}
}

func TestPlanProbesAreQuietInPlainMode(t *testing.T) {
	var b bytes.Buffer
	v := newEventView(&b, eventViewOptions{Mode: eventsPlain, QuietProbes: true})
	v.handle(engine.Event{Time: created, Kind: engine.ProbeStarted, Addr: "a", Phase: engine.PhaseProbe})
	v.handle(engine.Event{Time: created, Kind: engine.ProbeFinished, Addr: "a", Phase: engine.PhaseProbe})
	v.handle(engine.Event{Time: created, Kind: engine.ProbeFinished, Addr: "b", Phase: engine.PhaseProbe, Err: errors.New("ssh: connect refused")})
	want := "2026-11-27T07:40:00Z probe  b probe failed after 0s: ssh: connect refused\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestJSONEventLines(t *testing.T) {
	var b bytes.Buffer
	v := newEventView(&b, eventViewOptions{Mode: eventsJSON})
	v.handle(engine.Event{Time: created, Kind: engine.ApplyStarted, Addr: "image.pull[rs1]", Host: "rs1", Phase: engine.PhaseApply})
	v.handle(engine.Event{Time: created, Kind: engine.ApplyFailed, Addr: "image.pull[rs1]", Host: "rs1", Phase: engine.PhaseApply, Err: errors.New("boom"), Elapsed: 1500 * time.Millisecond})
	// What a remote machine said reaches the lines escaped.
	v.handle(engine.Event{Time: created, Kind: engine.ProgressReported, Addr: "image.pull[rs1]", Host: "rs1", Phase: engine.PhaseApply, Message: "rs1 said evil\u202e\x7f"})
	if err := v.close(); err != nil {
		t.Fatal(err)
	}
	want := `{"time":"2026-11-27T07:40:00Z","kind":"apply_started","address":"image.pull[rs1]","host":"rs1","phase":"apply"}
{"time":"2026-11-27T07:40:00Z","kind":"apply_failed","address":"image.pull[rs1]","host":"rs1","phase":"apply","error":"boom","elapsed_ms":1500}
{"time":"2026-11-27T07:40:00Z","kind":"progress","address":"image.pull[rs1]","host":"rs1","phase":"apply","message":"rs1 said evil\u202e\u007f"}
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestLiveViewCollapsesFinishedSteps(t *testing.T) {
	now := created
	var b bytes.Buffer
	v := newEventView(&b, eventViewOptions{Mode: eventsLive, Now: func() time.Time { return now }})
	v.handle(engine.Event{Time: now, Kind: engine.ApplyStarted, Addr: "bootstrap.run", Phase: engine.PhaseApply})
	now = now.Add(130 * time.Second)
	v.handle(engine.Event{Time: now, Kind: engine.ProgressReported, Addr: "bootstrap.run", Phase: engine.PhaseApply, Message: "waiting for rs1:8080/ping"})
	v.tick()
	v.handle(engine.Event{Time: now, Kind: engine.ApplyFinished, Addr: "bootstrap.run", Phase: engine.PhaseApply, Elapsed: 130 * time.Second})
	if err := v.close(); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "• bootstrap.run 2m10s  waiting for rs1:8080/ping\n") {
		t.Errorf("no running line with elapsed time:\n%q", out)
	}
	if !strings.HasSuffix(out, "\x1b[1A\x1b[J✓ bootstrap.run 2m10s\n") {
		t.Errorf("finished step did not replace the live region with one line:\n%q", out)
	}
}

func TestApplySummary(t *testing.T) {
	res := &engine.Result{Steps: []engine.StepResult{
		{Addr: "db.database", Status: engine.StatusUnchanged},
		{Addr: "image.pull[rs1]", Host: "rs1", Status: engine.StatusApplied, Elapsed: time.Second},
		{Addr: "bootstrap.run", Host: "rs1", Status: engine.StatusFailed, Elapsed: 20 * time.Minute,
			Err: &engine.StepError{Addr: "bootstrap.run", Host: "rs1", Phase: engine.PhaseApply, Err: errors.New("no /ping after 20m0s\nlast status: 503")}},
		{Addr: "bootstrap.stop", Host: "rs1", Status: engine.StatusSkipped, Cause: "bootstrap.run"},
		{Addr: "cert.distribute[h1]", Host: "h1", Status: engine.StatusNotStarted},
	}}
	var b bytes.Buffer
	if err := renderApplySummary(&b, res, textOptions{}); err != nil {
		t.Fatal(err)
	}
	golden(t, "apply_summary.txt.golden", b.String())
}

// A restore that did not finish points at the restore again, never at an
// apply that would start the cluster on a database the load may have cut.
func TestApplySummaryOfARestore(t *testing.T) {
	res := &engine.Result{Steps: []engine.StepResult{
		{Addr: "restore.stop[rs1]", Host: "rs1", Status: engine.StatusApplied},
		{Addr: "restore.load", Status: engine.StatusFailed, Err: errors.New("mysql: signal: killed")},
	}}
	var b bytes.Buffer
	if err := renderApplySummary(&b, res, textOptions{}); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "the restore did not finish. Fix the cause and run the same haplan restore again") || strings.Contains(out, "`haplan apply` resumes") {
		t.Errorf("summary of a cut restore:\n%s", out)
	}
}

// A file's diff is shown under its detail: indented in text, in a diff
// fence in markdown.
func TestRenderFileDiff(t *testing.T) {
	p := &plans.Plan{FormatVersion: plans.FormatVersion, Cluster: "lab", Changes: []plans.Change{{
		Addr: "lb.config", Kind: "lb.config", Host: "lb", Action: plans.Update, Reason: "differs",
		Details: []plans.Detail{{Name: "config", Old: "aaa", New: "bbb", Diff: []string{"@@ -1,2 +1,2 @@", " global", "-    maxconn 10", "+    maxconn 4096"}}},
	}}}
	var text, md bytes.Buffer
	if err := renderText(&text, p, textOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "      config: aaa -> bbb\n        @@ -1,2 +1,2 @@\n         global\n        -    maxconn 10\n        +    maxconn 4096\n") {
		t.Errorf("text:\n%s", text.String())
	}
	if err := renderMarkdown(&md, p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "    ```diff\n    @@ -1,2 +1,2 @@\n     global\n    -    maxconn 10\n    +    maxconn 4096\n    ```\n") {
		t.Errorf("markdown:\n%s", md.String())
	}
}

// A walk that stopped nodes and did not start them again says the server
// is down, how to start it, and the backup to go back to.
func TestStoppedNotStartedWarning(t *testing.T) {
	res := &engine.Result{Steps: []engine.StepResult{
		{Addr: "ha.stop[rs1]", Host: "rs1", Status: engine.StatusApplied},
		{Addr: "ha.stop[rs2]", Host: "rs2", Status: engine.StatusApplied},
		{Addr: "ha.start[rs1]", Host: "rs1", Status: engine.StatusApplied},
		{Addr: "ha.start[rs2]", Host: "rs2", Status: engine.StatusSkipped},
	}}
	var b bytes.Buffer
	stoppedNotStarted(&b, []*engine.Result{res}, stopHint{backup: "/b/lab-pre-upgrade-1.sql", manifest: "cluster.yaml"})
	for _, want := range []string{"stopped rancher-ha on rs2 and did not start it again: the cluster runs without them",
		"haplan apply -f cluster.yaml again", "haplan restore -f cluster.yaml /b/lab-pre-upgrade-1.sql"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	res.Steps[3].Status = engine.StatusApplied
	stoppedNotStarted(&b, []*engine.Result{res}, stopHint{manifest: "cluster.yaml"})
	if b.Len() != 0 {
		t.Errorf("warned though every node started:\n%s", b.String())
	}

	// A restore walks twice: stop and load, then start. Both walks count;
	// what to run next depends on whether the dump was loaded.
	stopAndLoad := func(load engine.Status) *engine.Result {
		return &engine.Result{Steps: []engine.StepResult{
			{Addr: "restore.stop[rs1]", Host: "rs1", Status: engine.StatusApplied},
			{Addr: "restore.load", Status: load},
		}}
	}
	hint := stopHint{manifest: "cluster.yaml", dump: "lab.sql"}
	for _, tc := range []struct {
		name   string
		walked []*engine.Result
		want   string
	}{
		{"interrupted before the load", []*engine.Result{stopAndLoad(engine.StatusNotStarted)}, "The dump was not loaded. To restore it: haplan restore -f cluster.yaml lab.sql again"},
		{"the load failed or was cut", []*engine.Result{stopAndLoad(engine.StatusFailed)}, "The dump may be partly loaded: do not start the cluster on it"},
		{"loaded, not started", []*engine.Result{stopAndLoad(engine.StatusApplied)}, "The dump is loaded: haplan apply -f cluster.yaml starts every node together"},
		{"started by the second walk", []*engine.Result{stopAndLoad(engine.StatusApplied), {Steps: []engine.StepResult{{Addr: "ha.start[rs1]", Host: "rs1", Status: engine.StatusApplied}}}}, ""},
	} {
		b.Reset()
		stoppedNotStarted(&b, tc.walked, hint)
		if tc.want == "" && b.Len() != 0 || !strings.Contains(b.String(), tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, b.String(), tc.want)
		}
	}
}
