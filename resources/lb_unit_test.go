package resources

import (
	"errors"
	"strings"
	"testing"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/transport"
	"github.com/haplan/haplan/transport/transporttest"
)

const (
	haproxyCfg     = "/etc/haproxy/haproxy.cfg"
	haproxyNew     = "/etc/haproxy/haproxy.cfg.haplan-new"
	haproxyPidof   = "pidof haproxy >/dev/null 2>&1 && echo running || echo stopped"
	haproxyCheck   = "haproxy -c -q -f '/etc/haproxy/haproxy.cfg.haplan-new' || { rc=$?; rm -f '/etc/haproxy/haproxy.cfg.haplan-new'; exit $rc; }"
	haproxyMove    = "mv -f '/etc/haproxy/haproxy.cfg.haplan-new' '/etc/haproxy/haproxy.cfg'"
	haproxyDefault = "service haproxy reload || service haproxy start" // the manifest's default reloadCommand
)

func (r *rig) lbRender() []byte {
	return (&lbConfig{base: base{env: r.env}}).render()
}

// lbProbe sets what the probe reads on the load balancer: the config (nil:
// absent) and whether haproxy runs.
func lbProbe(r *rig, cfg []byte, running bool) *transporttest.Runner {
	lb := r.host(layout.LBHost)
	if cfg == nil {
		lb.On(transporttest.StatOf(haproxyCfg)).Absent()
	} else {
		lb.On(transporttest.StatOf(haproxyCfg)).Stat(0o644, cfg)
		lb.On(transporttest.ReadOf(haproxyCfg)).Stdout(string(cfg)).Maybe() // for the plan's diff
	}
	out := "stopped\n"
	if running {
		out = "running\n"
	}
	lb.On(transporttest.Line(haproxyPidof).And("read-only", func(c transport.Cmd) bool { return !c.Mutates })).Stdout(out)
	return lb
}

// A new configuration is written next to the live one, validated by
// haproxy -c, and only then moved into place and haproxy reloaded.
func TestLBConfigWritesValidatesThenReloads(t *testing.T) {
	r := newRig(t)
	lb := lbProbe(r, nil, false)
	lb.On(transporttest.WriteOf(haproxyNew)).Once()
	lb.On(mutatingLine(haproxyCheck)).Once()
	lb.On(mutatingLine(haproxyMove)).Once()
	lb.On(mutatingLine(haproxyDefault)).Once()

	g := r.graph("lb.config")
	p := r.plan(g)
	c := planned(t, p, "lb.config")
	if c.Action != plans.Create || c.Host != layout.LBHost {
		t.Fatalf("change %s on %q, want create on the lb", c.Action, c.Host)
	}
	m := r.mark()
	res, err := r.apply(g, p)
	if err != nil {
		t.Fatal(err)
	}
	if s := outcome(t, res, "lb.config"); s.Status != engine.StatusApplied {
		t.Errorf("status %s", s.Status)
	}
	cmds := r.since(m, layout.LBHost)
	var changes []string
	for _, c := range cmds {
		if !c.Mutates {
			continue
		}
		if w, ok := transporttest.ParseWrite(c); ok {
			changes = append(changes, "write "+w.Path)
		} else {
			changes = append(changes, c.Line)
		}
	}
	want := []string{"write " + haproxyNew, haproxyCheck, haproxyMove, haproxyDefault}
	if strings.Join(changes, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes on the lb:\n%s\nwant:\n%s", strings.Join(changes, "\n"), strings.Join(want, "\n"))
	}
	w, _ := lb.Written(haproxyNew)
	if w.Mode != 0o644 || string(w.Data) != string(r.lbRender()) {
		t.Errorf("new config mode %v, %d bytes; want 0644 and the rendered configuration", w.Mode, len(w.Data))
	}
	for _, n := range r.c.Nodes {
		if !strings.Contains(string(w.Data), "server "+n.Name+" "+n.Address+":443 check port 18080") {
			t.Errorf("the configuration lacks node %s", n.Name)
		}
	}
	r.fleet.AssertExpectationsMet(t)
}

// A configuration that differs is shown as the diff of the file, with a
// line that may hold a credential masked.
func TestLBConfigPlanShowsTheDiff(t *testing.T) {
	r := newRig(t)
	extra := "listen stats\n    stats auth admin:hunter2\n    http-request set-header X-Api bearer-hunter2\n    acl ok req.hdr(x-token) -m str hunter2\n"
	live := strings.Replace(string(r.lbRender()), "    balance source\n", "    balance leastconn\n", 1) + extra
	if live == string(r.lbRender())+extra {
		t.Fatal("the rendered configuration has no 'balance source' line to change")
	}
	lbProbe(r, []byte(live), true)
	c := planned(t, r.plan(r.graph("lb.config")), "lb.config")
	if c.Action != plans.Update || len(c.Details) != 1 {
		t.Fatalf("change %s %+v", c.Action, c.Details)
	}
	diff := strings.Join(c.Details[0].Diff, "\n")
	for _, want := range []string{"-    balance leastconn", "+    balance source", "-    stats (masked: may hold a secret)", "-    http-request (masked: may hold a secret)", "-    acl (masked: may hold a secret)"} {
		if !strings.Contains(diff, want) {
			t.Errorf("diff lacks %q:\n%s", want, diff)
		}
	}
	if strings.Contains(diff, "hunter2") {
		t.Errorf("the diff shows a credential:\n%s", diff)
	}
}

// A configuration haproxy rejects never replaces the running one: no move,
// no reload, and the error says the running one is untouched.
func TestLBConfigRejected(t *testing.T) {
	r := newRig(t)
	lb := lbProbe(r, []byte("# hand-edited\n"), true)
	lb.On(transporttest.WriteOf(haproxyNew)).Once()
	lb.On(transporttest.Line(haproxyCheck)).Stderr("[ALERT] config : parsing [/etc/haproxy/haproxy.cfg.haplan-new:3]: unknown keyword\n").Exit(1).Once()
	g := r.graph("lb.config")
	p := r.plan(g)
	if c := planned(t, p, "lb.config"); c.Action != plans.Update || !strings.Contains(c.Reason, "differs from the manifest") {
		t.Errorf("change %s %q", c.Action, c.Reason)
	}
	_, err := r.apply(g, p)
	var pe *transport.ProcessError
	if !errors.As(err, &pe) || pe.Host != layout.LBHost || pe.Command != haproxyCheck {
		t.Fatalf("err = %v, want haproxy -c's ProcessError", err)
	}
	for _, want := range []string{"rejected, the running one is untouched", "unknown keyword"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	r.fleet.AssertExpectationsMet(t) // neither the move nor the reload is expected
}

// A check that did not run to a verdict (the connection dropped) is not
// called a rejection, and nothing is moved.
func TestLBConfigCheckCutOff(t *testing.T) {
	r := newRig(t)
	lb := lbProbe(r, nil, false)
	lb.On(transporttest.WriteOf(haproxyNew)).Once()
	lb.On(transporttest.Line(haproxyCheck)).Err(&transport.ConnectionLostError{Host: layout.LBHost, Command: haproxyCheck, Reason: "the host closed it"}).Once()
	g := r.graph("lb.config")
	_, err := r.apply(g, r.plan(g))
	if err == nil || !strings.Contains(err.Error(), "check the new haproxy configuration") || strings.Contains(err.Error(), "rejected") {
		t.Errorf("err = %v", err)
	}
	r.fleet.AssertExpectationsMet(t)
}

// The manifest's configuration, served: nothing to do. The same
// configuration with haproxy stopped: written, checked and reloaded (the
// reload command starts it).
func TestLBConfigConvergedAndStopped(t *testing.T) {
	t.Run("converged", func(t *testing.T) {
		r := newRig(t)
		lbProbe(r, r.lbRender(), true)
		p := r.plan(r.graph("lb.config"))
		if c := planned(t, p, "lb.config"); c.Action != plans.NoOp {
			t.Errorf("change %s %q, want no-op", c.Action, c.Reason)
		}
		r.fleet.AssertExpectationsMet(t)
	})
	t.Run("stopped", func(t *testing.T) {
		r := newRig(t)
		lb := lbProbe(r, r.lbRender(), false)
		lb.On(transporttest.WriteOf(haproxyNew)).Once()
		lb.On(mutatingLine(haproxyCheck)).Once()
		lb.On(mutatingLine(haproxyMove)).Once()
		lb.On(mutatingLine(haproxyDefault)).Once()
		g := r.graph("lb.config")
		p := r.plan(g)
		if c := planned(t, p, "lb.config"); c.Action != plans.Update || c.Reason != "haproxy is not running" {
			t.Errorf("change %s %q", c.Action, c.Reason)
		}
		if _, err := r.apply(g, p); err != nil {
			t.Fatal(err)
		}
		r.fleet.AssertExpectationsMet(t)
	})
}

// A reload that fails fails the step, naming the command.
func TestLBConfigReloadFails(t *testing.T) {
	r := newRig(t)
	lb := lbProbe(r, nil, false)
	lb.On(transporttest.WriteOf(haproxyNew)).Once()
	lb.On(transporttest.Line(haproxyCheck)).Once()
	lb.On(transporttest.Line(haproxyMove)).Once()
	lb.On(transporttest.Line(haproxyDefault)).Stderr("Job for haproxy.service failed.\n").Exit(1).Once()
	g := r.graph("lb.config")
	_, err := r.apply(g, r.plan(g))
	var pe *transport.ProcessError
	if !errors.As(err, &pe) || pe.Command != haproxyDefault || !strings.Contains(err.Error(), "reload haproxy") {
		t.Errorf("err = %v", err)
	}
	r.fleet.AssertExpectationsMet(t)
}
