package resources

import (
	"fmt"
	"testing"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/plans"
)

const stopLine = `ids=$(docker ps -aq --filter name=^/rancher-ha); [ -z "$ids" ] || docker rm -f $ids >/dev/null`

var stops = []engine.Addr{"ha.stop[rs1]", "ha.stop[rs2]", "ha.stop[rs3]"}

// An upgrade stops rancher-ha on every node that runs the old image, each
// with the one line that also removes what cluster-manager started.
func TestHAStopStopsEveryOldNode(t *testing.T) {
	r := newRig(t)
	for _, n := range []string{"rs1", "rs2", "rs3"} {
		r.holdScript(n, unitScript)
		h := haStartNode(r, n, "running rancher/server:v1.0.0", "", "")
		h.On(mutatingLine(stopLine)).Once()
	}
	g := r.graph(stops...)
	p := r.plan(g)
	for _, a := range stops {
		if c := planned(t, p, a); c.Action != plans.Delete {
			t.Errorf("%s: %s %q, want delete", a, c.Action, c.Reason)
		}
	}
	if _, err := r.apply(g, p); err != nil {
		t.Fatal(err)
	}
	r.fleet.AssertExpectationsMet(t)
}

// With one node not answering no node is stopped: the stops are a barrier
// group, and an upgrade never leaves nodes stopped that cannot all start.
func TestHAStopAllOrNone(t *testing.T) {
	r := newRig(t)
	for _, n := range []string{"rs1", "rs2"} {
		r.holdScript(n, unitScript)
		haStartNode(r, n, "running rancher/server:v1.0.0", "", "")
	}
	r.fleet.Unreachable("rs3")
	g := r.graph(stops...)
	p := r.plan(g)
	if c := planned(t, p, "ha.stop[rs3]"); c.Action != plans.Unknown {
		t.Fatalf("ha.stop[rs3]: %s, want unknown (its node does not answer)", c.Action)
	}
	res, _ := r.apply(g, p)
	for _, a := range []engine.Addr{"ha.stop[rs1]", "ha.stop[rs2]"} {
		if s := outcome(t, res, a).Status; s != engine.StatusSkipped {
			t.Errorf("%s: %s, want skipped", a, s)
		}
	}
	for _, n := range []string{"rs1", "rs2"} {
		if m := mutating(r.host(n).Calls()); len(m) != 0 {
			t.Errorf("%s ran %q", n, m)
		}
	}
}

// Not an upgrade: a node on the manifest's image, or without rancher-ha,
// is not stopped.
func TestHAStopNoUpgrade(t *testing.T) {
	r := newRig(t)
	for _, n := range []string{"rs1", "rs2", "rs3"} {
		r.holdScript(n, unitScript)
	}
	started := fmt.Sprintf(`{"script_digest":%q,"cluster_size":3}`, digest(unitScript))
	haStartNode(r, "rs1", "running rancher/server:v1.0.1", started, "")
	haStartNode(r, "rs2", "absent", "", "")
	haStartNode(r, "rs3", "exited rancher/server:v1.0.1", started, "")
	p := r.plan(r.graph(stops...))
	for _, a := range stops {
		if c := planned(t, p, a); c.Action != plans.NoOp {
			t.Errorf("%s: %s %q, want no-op", a, c.Action, c.Reason)
		}
	}
}
