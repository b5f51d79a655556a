package resources

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/transport"
	"github.com/haplan/haplan/transport/transporttest"
)

const haStartLine = "sh /var/lib/rancher/etc/haplan/rancher-ha.sh 'rancher/server:v1.0.1'"

// haStartNode sets what the probe of ha.start reads on node: the HA
// container, started.json and agent.conf ("" for absent ones).
func haStartNode(r *rig, node, container, started, agentConf string) *transporttest.Runner {
	h := r.host(node)
	h.On(inspectContainer(layout.HA)).Stdout(container + "\n")
	meta, err := json.Marshal(scriptMeta{scriptParams: r.env.wantParams(), ScriptDigest: digest(unitScript)})
	if err != nil {
		r.t.Fatal(err)
	}
	h.On(transporttest.ReadOf(layout.ScriptMeta)).Stdout(string(meta)).Maybe() // read by Apply
	for p, v := range map[string]string{layout.Started: started, layout.AgentConf: agentConf} {
		if v == "" {
			h.On(transporttest.ReadOf(p)).Absent()
		} else {
			h.On(transporttest.ReadOf(p)).Stdout(v)
		}
	}
	return h
}

// A node without rancher-ha gets its cluster IP into agent.conf (0600),
// then runs the cluster's script with the manifest's image (the pull
// timeout: it pulls), then records which script and image it started.
func TestHAStartRunsScript(t *testing.T) {
	r := newRig(t, func(c *manifests.Cluster) { c.Nodes[0].ClusterIP = "192.168.50.11" })
	for _, n := range []string{"rs1", "rs2", "rs3"} {
		r.holdScript(n, unitScript)
	}
	rs1 := haStartNode(r, "rs1", "absent", "", "")
	rs1.On(transporttest.ReadOf(layout.Script)).Stdout(string(unitScript))
	rs1.On(transporttest.WriteOf(layout.AgentConf)).Once()
	rs1.On(mutatingLine(haStartLine)).Once()
	rs1.On(transporttest.WriteOf(layout.Started)).Once()

	g := r.graph("ha.start[rs1]")
	p := r.plan(g)
	c := planned(t, p, "ha.start[rs1]")
	if c.Action != plans.Create || c.Host != "rs1" {
		t.Fatalf("change %s on %q, want create on rs1", c.Action, c.Host)
	}
	m := r.mark()
	if _, err := r.apply(g, p); err != nil {
		t.Fatal(err)
	}
	cmds := r.since(m, "rs1")
	iConf := indexOf(cmds, transporttest.WriteOf(layout.AgentConf))
	iRun := indexOf(cmds, transporttest.Line(haStartLine))
	iRec := indexOf(cmds, transporttest.WriteOf(layout.Started))
	if iConf < 0 || !(iConf < iRun && iRun < iRec) {
		t.Errorf("agent.conf at %d, script at %d, started.json at %d: want that order", iConf, iRun, iRec)
	}
	if cmds[iRun].Timeout != r.c.Rancher.Timeouts.Pull {
		t.Errorf("script timeout %s, want the pull timeout", cmds[iRun].Timeout)
	}
	conf, _ := rs1.Written(layout.AgentConf)
	if want := "export CATTLE_AGENT_IP=192.168.50.11\nexport CATTLE_HA_CLUSTER_IP=192.168.50.11\n"; string(conf.Data) != want || conf.Mode != 0o600 {
		t.Errorf("agent.conf (mode %v):\n%s\nwant (0600):\n%s", conf.Mode, conf.Data, want)
	}
	w, _ := rs1.Written(layout.Started)
	var rec startRecord
	if err := json.Unmarshal(w.Data, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.ScriptDigest != digest(unitScript) || rec.Image != "rancher/server:v1.0.1" || rec.ClusterIP != "192.168.50.11" || rec.ClusterSize != 3 || rec.Started.IsZero() || w.Mode != 0o600 {
		t.Errorf("started.json = %+v (mode %v)", rec, w.Mode)
	}
	noScriptInLines(t, r)
	r.fleet.AssertExpectationsMet(t)
}

// A running node whose agent.conf names another cluster IP is started
// again; the other settings of agent.conf are kept.
func TestHAStartRewritesClusterIP(t *testing.T) {
	r := newRig(t)
	for _, n := range []string{"rs1", "rs2", "rs3"} {
		r.holdScript(n, unitScript)
	}
	old := "export CATTLE_HA_PORT_REDIS=6379\nexport CATTLE_HA_CLUSTER_IP=10.9.9.9\nexport CATTLE_AGENT_IP=10.9.9.9\n"
	started := fmt.Sprintf(`{"script_digest":%q,"image":"rancher/server:v1.0.1","cluster_ip":"10.9.9.9"}`, digest(unitScript))
	rs2 := haStartNode(r, "rs2", "running rancher/server:v1.0.1", started, old)
	rs2.On(transporttest.ReadOf(layout.Script)).Stdout(string(unitScript))
	rs2.On(transporttest.WriteOf(layout.AgentConf)).Once()
	rs2.On(mutatingLine(haStartLine)).Once()
	rs2.On(transporttest.WriteOf(layout.Started)).Once()
	g := r.graph("ha.start[rs2]")
	p := r.plan(g)
	c := planned(t, p, "ha.start[rs2]")
	if c.Action != plans.Replace || !strings.Contains(c.Reason, `cluster IP in agent.conf is "10.9.9.9"`) {
		t.Fatalf("change %s %q", c.Action, c.Reason)
	}
	if _, err := r.apply(g, p); err != nil {
		t.Fatal(err)
	}
	conf, _ := rs2.Written(layout.AgentConf)
	want := "export CATTLE_HA_PORT_REDIS=6379\nexport CATTLE_HA_CLUSTER_IP=10.0.0.12\nexport CATTLE_AGENT_IP=10.0.0.12\n"
	if string(conf.Data) != want {
		t.Errorf("agent.conf:\n%s\nwant:\n%s", conf.Data, want)
	}
	r.fleet.AssertExpectationsMet(t)
}

// A node running the manifest's image from the cluster's script with the
// right cluster IP is left alone.
func TestHAStartConverged(t *testing.T) {
	r := newRig(t)
	for _, n := range []string{"rs1", "rs2", "rs3"} {
		r.holdScript(n, unitScript)
	}
	started := fmt.Sprintf(`{"script_digest":%q}`, digest(unitScript))
	haStartNode(r, "rs3", "running rancher/server:v1.0.1", started, "export CATTLE_HA_CLUSTER_IP=10.0.0.13\n")
	g := r.graph("ha.start[rs3]")
	p := r.plan(g)
	if c := planned(t, p, "ha.start[rs3]"); c.Action != plans.NoOp {
		t.Errorf("change %s %q, want no-op", c.Action, c.Reason)
	}
	r.fleet.AssertExpectationsMet(t)
}

// The script missing on the node at apply time fails the step before
// anything runs there; a script that fails fails the step with the
// client's error, and no start is recorded.
func TestHAStartFailures(t *testing.T) {
	t.Run("no script", func(t *testing.T) {
		r := newRig(t)
		r.noScript("rs1", "rs2", "rs3")
		rs1 := haStartNode(r, "rs1", "absent", "", "")
		rs1.On(transporttest.ReadOf(layout.Script)).Absent()
		rs1.On(transporttest.WriteOf(layout.AgentConf)).Maybe()
		g := r.graph("ha.start[rs1]")
		_, err := r.apply(g, r.plan(g))
		if err == nil || !strings.Contains(err.Error(), "rs1 has no "+layout.Script+": script.generate did not run") {
			t.Errorf("err = %v", err)
		}
		if i := indexOf(rs1.Calls(), transporttest.Line(haStartLine)); i >= 0 {
			t.Error("ran a script that is not there")
		}
		if _, ok := rs1.Written(layout.Started); ok {
			t.Error("recorded a start that did not happen")
		}
		r.fleet.AssertExpectationsMet(t)
	})
	t.Run("script fails", func(t *testing.T) {
		r := newRig(t)
		for _, n := range []string{"rs1", "rs2", "rs3"} {
			r.holdScript(n, unitScript)
		}
		rs1 := haStartNode(r, "rs1", "absent", "", "export CATTLE_HA_CLUSTER_IP=10.0.0.11\nexport CATTLE_AGENT_IP=10.0.0.11\n")
		rs1.On(transporttest.ReadOf(layout.Script)).Stdout(string(unitScript))
		rs1.On(transporttest.Line(haStartLine)).Stderr("docker: Error response from daemon: Conflict. The name \"/rancher-ha\" is already in use\n").Exit(1).Once()
		g := r.graph("ha.start[rs1]")
		_, err := r.apply(g, r.plan(g))
		var pe *transport.ProcessError
		if !errors.As(err, &pe) || pe.Host != "rs1" || pe.Command != haStartLine {
			t.Fatalf("err = %v, want the script's ProcessError", err)
		}
		if !strings.Contains(err.Error(), "run rancher-ha.sh on rs1") {
			t.Errorf("error %q", err)
		}
		if _, ok := rs1.Written(layout.Started); ok {
			t.Error("a failed start was recorded as started")
		}
		if _, ok := rs1.Written(layout.AgentConf); ok {
			t.Error("agent.conf rewritten though it already said the right IP")
		}
		r.fleet.AssertExpectationsMet(t)
	})
}

// The ha.start steps are one barrier group: when one node does not
// answer, its start is Unknown and no node starts, so the cluster is never
// started on fewer nodes than planned.
func TestHAStartGroupNeverStartsPartially(t *testing.T) {
	r := newRig(t)
	r.holdScript("rs1", unitScript)
	r.holdScript("rs2", unitScript)
	r.fleet.Unreachable("rs3")
	for _, n := range []string{"rs1", "rs2"} {
		haStartNode(r, n, "absent", "", "")
	}
	g := r.graph("ha.start[rs1]", "ha.start[rs2]", "ha.start[rs3]")
	p := r.plan(g)
	if c := planned(t, p, "ha.start[rs3]"); c.Action != plans.Unknown || c.Unreachable != "rs3" {
		t.Fatalf("rs3: %s, unreachable %q", c.Action, c.Unreachable)
	}
	for _, a := range []engine.Addr{"ha.start[rs1]", "ha.start[rs2]"} {
		if c := planned(t, p, a); c.Action != plans.Create {
			t.Fatalf("%s: %s, want create", a, c.Action)
		}
	}
	res, err := r.apply(g, p)
	if err == nil {
		t.Fatal("apply succeeded without rs3")
	}
	for _, a := range []engine.Addr{"ha.start[rs1]", "ha.start[rs2]"} {
		if s := outcome(t, res, a); s.Status != engine.StatusSkipped || s.Cause != "ha.start[rs3]" {
			t.Errorf("%s: %s (cause %s), want skipped because of ha.start[rs3]", a, s.Status, s.Cause)
		}
	}
	for _, h := range r.hosts() {
		if got := mutating(r.host(h).Calls()); len(got) != 0 {
			t.Errorf("%s was changed: %q", h, got)
		}
	}
	r.fleet.AssertExpectationsMet(t)
}
