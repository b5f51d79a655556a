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
	g := mustGraph(t, down, after, up, b1, b2)

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
	if diff := cmp.Diff([]string{"cert.distribute[h2]", "ha.start[rs2]"}, unknown); diff != "" {
		t.Errorf("unknown changes (-want +got):\n%s", diff)
	}
	if p.Probes["cert.distribute[h2]"] != "unreachable" {
		t.Errorf("probe digest of an unreachable step = %q", p.Probes["cert.distribute[h2]"])
	}
	if line := p.SummaryLine(); !strings.Contains(line, "2 steps not probed (h2, rs2 did not answer)") {
		t.Errorf("summary %q does not count the steps that were not probed", line)
	}

	res, err := Apply(context.Background(), g, p, Options{})
	var np *NotProbedError
	if !errors.As(err, &np) {
		t.Fatalf("Apply error %v, want a NotProbedError", err)
	}
	want := map[Addr]Status{
		"cert.distribute[h2]": StatusFailed, "after": StatusSkipped, "cert.distribute[h1]": StatusApplied,
		"ha.start[rs1]": StatusApplied, "ha.start[rs2]": StatusFailed,
	}
	if diff := cmp.Diff(want, statuses(res)); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if down.applies.Load() != 0 || b2.applies.Load() != 0 {
		t.Error("Apply ran a step that was never probed")
	}
}
