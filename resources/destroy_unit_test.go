package resources

import (
	"testing"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/transport/transporttest"
)

const (
	destroyNodeProbe = "docker ps -a --format '{{.Names}}' | grep -E '^(rancher-ha($|-)|haplan-bootstrap$|rancher-agent(-state)?$)' || true; test -e /var/lib/rancher/etc && echo FILES; true"
	destroyNodeLine  = `ids=$(docker ps -aq --filter name=^/rancher-ha --filter name=^/haplan-bootstrap --filter name=^/rancher-agent$ --filter name=^/rancher-agent-state$); [ -z "$ids" ] || docker rm -f $ids >/dev/null; rm -rf /var/lib/rancher/etc`
)

// A node's containers and files are removed with one line; a node with
// nothing of the cluster left plans nothing (a second destroy is empty).
func TestDestroyNode(t *testing.T) {
	r := newRig(t)
	steps := map[engine.Addr]engine.Step{}
	for _, s := range CompileDestroy(r.c, r.env, DestroyOptions{}) {
		steps[s.Addr()] = s
	}
	rs1 := r.host("rs1")
	rs1.On(transporttest.Line(destroyNodeProbe)).Stdout("rancher-ha\nrancher-ha-zk\nFILES\n").Times(2)
	rs1.On(mutatingLine(destroyNodeLine)).Once()
	r.host("rs2").On(transporttest.Line(destroyNodeProbe)).Stdout("")
	g, err := engine.NewGraph([]engine.Step{isolate(steps["destroy.node[rs1]"], nil), isolate(steps["destroy.node[rs2]"], nil)})
	if err != nil {
		t.Fatal(err)
	}
	p := r.plan(g)
	if c := planned(t, p, "destroy.node[rs1]"); c.Action != plans.Delete {
		t.Errorf("rs1: %s %q, want delete", c.Action, c.Reason)
	}
	if c := planned(t, p, "destroy.node[rs2]"); c.Action != plans.NoOp {
		t.Errorf("rs2: %s %q, want no-op", c.Action, c.Reason)
	}
	if _, err := r.apply(g, p); err != nil {
		t.Fatal(err)
	}
	r.fleet.AssertExpectationsMet(t)
}
