package engine

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/haplan/haplan/plans"
)

// downErr says a machine did not answer, as the transport's connect error
// does.
type downErr struct{ host string }

func (e downErr) Error() string           { return e.host + ": connect failed: no route to host" }
func (e downErr) UnreachableHost() string { return e.host }

// One machine that does not answer is a finding: the plan has every other
// step, that step Unknown with the reason; apply fails it without trying,
// skips what depends on it, and applies the rest (Ansible's "unreachable").
func TestUnreachableHostIsPlannedAndSkipped(t *testing.T) {
	down := step("cert.distribute[h2]", plans.Create)
	down.host = "h2"
	down.probeErr = &StepError{Addr: "x", Err: errors.Join(errors.New("read ca.crt"), downErr{"h2"})}
	after := step("after", plans.Create, "cert.distribute[h2]")
	up := step("cert.distribute[h1]", plans.Create)
	up.host = "h1"
	barrier := func(a Addr, host string, action plans.Action) barrierFake {
		f := step(a, action)
		f.host = host
		return barrierFake{fake: f, group: "ha"}
	}
	b1, b2 := barrier("ha.start[rs1]", "rs1", plans.Create), barrier("ha.start[rs2]", "rs2", plans.Create)
	b2.probeErr = downErr{"rs2"}
	// A check after a node that is down, and a host that needs only the
	// check: the check is not stopped by a step that changed nothing.
	n3 := step("image.pull[rs3]", plans.Unknown)
	n3.host, n3.probeErr = "rs3", downErr{"rs3"}
	verify := step("ha.verify", plans.NoOp, "image.pull[rs3]")
	verify.check = true
	h4 := step("cert.distribute[h4]", plans.Create, "ha.verify")
	g := mustGraph(t, down, after, up, b1, b2, n3, verify, h4)

	p, err := Plan(context.Background(), g, Options{})
	if err != nil {
		t.Fatalf("Plan failed as a whole: %v", err)
	}
	var unknown []string
	for _, c := range p.Unknown() {
		unknown = append(unknown, c.Addr)
		if c.Host == "" || !strings.Contains(c.Reason, c.Host+" did not answer") {
			t.Errorf("%s: reason %q does not name its host", c.Addr, c.Reason)
		}
	}
	if diff := cmp.Diff([]string{"cert.distribute[h2]", "ha.start[rs2]", "image.pull[rs3]"}, unknown); diff != "" {
		t.Errorf("unknown changes (-want +got):\n%s", diff)
	}
	if p.Probes["cert.distribute[h2]"] != "unreachable" {
		t.Errorf("probe digest of an unreachable step = %q", p.Probes["cert.distribute[h2]"])
	}
	for _, c := range p.Unknown() {
		if c.Unreachable != c.Host {
			t.Errorf("%s: unreachable %q, want %q", c.Addr, c.Unreachable, c.Host)
		}
	}
	if line := p.SummaryLine(); !strings.Contains(line, "3 steps not probed (h2, rs2, rs3 did not answer)") {
		t.Errorf("summary %q does not count the steps that were not probed", line)
	}

	res, err := Apply(context.Background(), g, p, Options{})
	var np *NotProbedError
	if !errors.As(err, &np) {
		t.Fatalf("Apply error %v, want a NotProbedError", err)
	}
	// The barrier group does not start without rs2.
	want := map[Addr]Status{
		"cert.distribute[h2]": StatusFailed, "after": StatusSkipped, "cert.distribute[h1]": StatusApplied,
		"ha.start[rs1]": StatusSkipped, "ha.start[rs2]": StatusFailed,
		"image.pull[rs3]": StatusFailed, "ha.verify": StatusUnchanged, "cert.distribute[h4]": StatusApplied,
	}
	if diff := cmp.Diff(want, statuses(res)); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if down.applies.Load() != 0 || b2.applies.Load() != 0 || b1.applies.Load() != 0 {
		t.Error("Apply ran a step that was never probed, or a barrier group without one of its members")
	}
	for _, s := range res.Steps {
		if s.Addr == "ha.start[rs1]" && s.Cause != "ha.start[rs2]" {
			t.Errorf("ha.start[rs1] skipped because of %q, want ha.start[rs2]", s.Cause)
		}
	}
}
