package resources

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/transport"
	"github.com/haplan/haplan/transport/transporttest"
)

// bootstrapRunLine is the docker run of the bootstrap server: published on
// the node's loopback only, its settings read from the env file, which is
// removed whatever docker run did, and docker run's status kept.
const bootstrapRunLine = "docker run -d --name haplan-bootstrap -p 127.0.0.1:8080:8080 " +
	"--env-file /var/lib/rancher/etc/haplan/bootstrap.env -v /var/run/docker.sock:/var/run/docker.sock " +
	"'rancher/server:v1.0.1'; rc=$?; rm -f /var/lib/rancher/etc/haplan/bootstrap.env; exit $rc"

// A cluster without a script gets a bootstrap server: its database
// settings go to a 0600 env file over stdin (the password in no command
// line), docker run reads and removes it, and the step waits until the
// server answers /ping and uses the external database.
func TestBootstrapRunStartsServer(t *testing.T) {
	r := newRig(t)
	r.noScript("rs1", "rs2", "rs3")
	rs1 := r.host("rs1")
	rs1.On(inspectContainer(layout.Bootstrap)).Stdout("absent\n")
	rs1.On(transporttest.WriteOf(layout.BootstrapEnv)).Once()
	rs1.On(mutatingLine(bootstrapRunLine)).Stdout("4f1c0ffee\n").Once()
	api := &fakeRancher{dbHost: "10.0.0.20"}
	serveOn(t, rs1, layout.BootstrapPort, api)

	g := r.graph("bootstrap.run")
	p := r.plan(g)
	c := planned(t, p, "bootstrap.run")
	if c.Action != plans.Create || c.Host != "rs1" {
		t.Fatalf("change %s on %q, want create on rs1", c.Action, c.Host)
	}
	m := r.mark()
	res, err := r.apply(g, p)
	if err != nil {
		t.Fatal(err)
	}
	if s := outcome(t, res, "bootstrap.run"); s.Status != engine.StatusApplied {
		t.Errorf("status %s", s.Status)
	}
	cmds := r.since(m, "rs1")
	w, ok := rs1.Written(layout.BootstrapEnv)
	if !ok {
		t.Fatal("no env file written")
	}
	if w.Mode != 0o600 {
		t.Errorf("env file mode %v, want 0600", w.Mode)
	}
	wantEnv := "CATTLE_DB_CATTLE_MYSQL_HOST=10.0.0.20\nCATTLE_DB_CATTLE_MYSQL_PORT=3306\nCATTLE_DB_CATTLE_MYSQL_NAME=cattle\n" +
		"CATTLE_DB_CATTLE_USERNAME=cattle\nCATTLE_DB_CATTLE_PASSWORD=" + unitDBPassword + "\n"
	if string(w.Data) != wantEnv {
		t.Errorf("env file:\n%s\nwant:\n%s", w.Data, wantEnv)
	}
	iw, ir := indexOf(cmds, transporttest.WriteOf(layout.BootstrapEnv)), indexOf(cmds, transporttest.Line(bootstrapRunLine))
	if iw < 0 || ir < 0 || iw > ir {
		t.Errorf("env file written at %d, docker run at %d: the file must exist before docker run reads it", iw, ir)
	}
	if run := cmds[ir]; run.Timeout != r.c.Rancher.Timeouts.Pull {
		t.Errorf("docker run timeout %s, want rancher.timeouts.pull (it may pull the image)", run.Timeout)
	}
	// The password travels once, in the env file's stdin.
	for _, h := range r.hosts() {
		for _, c := range r.host(h).Calls() {
			if strings.Contains(string(c.Stdin), unitDBPassword) && !transporttest.WriteOf(layout.BootstrapEnv).Matches(c) {
				t.Errorf("%s: the password went to %q", h, c.Line)
			}
		}
	}
	if !slices.Contains(rs1.Dials(), "tcp 127.0.0.1:8080") {
		t.Errorf("the server was not reached on rs1's loopback through SSH; dials: %v", rs1.Dials())
	}
	if !slices.Contains(api.requests, "GET /ping") || !slices.Contains(api.requests, "GET /v1/haconfigs") {
		t.Errorf("API requests %v, want /ping then /v1/haconfigs", api.requests)
	}
	r.fleet.AssertExpectationsMet(t)
}

// A leftover container (exited, or another image) is removed in the same
// command that starts the new one.
func TestBootstrapRunReplacesLeftover(t *testing.T) {
	r := newRig(t)
	r.noScript("rs1", "rs2", "rs3")
	rs1 := r.host("rs1")
	rs1.On(inspectContainer(layout.Bootstrap)).Stdout("exited rancher/server:v1.0.1\n")
	rs1.On(transporttest.WriteOf(layout.BootstrapEnv)).Once()
	rs1.On(mutatingLine("docker rm -f haplan-bootstrap >/dev/null 2>&1; " + bootstrapRunLine)).Once()
	serveOn(t, rs1, layout.BootstrapPort, &fakeRancher{dbHost: "10.0.0.20"})
	g := r.graph("bootstrap.run")
	p := r.plan(g)
	if c := planned(t, p, "bootstrap.run"); c.Action != plans.Replace || !strings.Contains(c.Reason, "exited") {
		t.Errorf("change %s %q, want replace naming the exited container", c.Action, c.Reason)
	}
	if _, err := r.apply(g, p); err != nil {
		t.Fatal(err)
	}
	r.fleet.AssertExpectationsMet(t)
}

// A bootstrap server already running the manifest's image is only waited
// for: nothing is written or started.
func TestBootstrapRunWaitsForRunningServer(t *testing.T) {
	r := newRig(t)
	r.noScript("rs1", "rs2", "rs3")
	rs1 := r.host("rs1")
	rs1.On(inspectContainer(layout.Bootstrap)).Stdout("running rancher/server:v1.0.1\n")
	serveOn(t, rs1, layout.BootstrapPort, &fakeRancher{dbHost: "10.0.0.20"})
	g := r.graph("bootstrap.run")
	p := r.plan(g)
	if c := planned(t, p, "bootstrap.run"); c.Action != plans.Update {
		t.Errorf("change %s, want update (wait)", c.Action)
	}
	if _, err := r.apply(g, p); err != nil {
		t.Fatal(err)
	}
	if got := mutating(rs1.Calls()); len(got) != 0 {
		t.Errorf("changed the node: %q", got)
	}
	r.fleet.AssertExpectationsMet(t)
}

// A server that answers with its embedded database (the CATTLE_DB_*
// settings did not take) fails the step instead of generating a script
// for the wrong database.
func TestBootstrapRunRefusesEmbeddedDatabase(t *testing.T) {
	r := newRig(t)
	r.noScript("rs1", "rs2", "rs3")
	rs1 := r.host("rs1")
	rs1.On(inspectContainer(layout.Bootstrap)).Stdout("running rancher/server:v1.0.1\n")
	serveOn(t, rs1, layout.BootstrapPort, &fakeRancher{dbHost: "localhost"})
	g := r.graph("bootstrap.run")
	_, err := r.apply(g, r.plan(g))
	if err == nil || !strings.Contains(err.Error(), `embedded database (dbHost "localhost")`) {
		t.Errorf("err = %v, want the embedded database refused", err)
	}
}

// A server that never answers fails the step at rancher.timeouts.bootstrap,
// naming where it was waited for.
func TestBootstrapRunTimesOut(t *testing.T) {
	r := newRig(t, func(c *manifests.Cluster) { c.Rancher.Timeouts.Bootstrap = 600 * time.Millisecond })
	r.noScript("rs1", "rs2", "rs3")
	rs1 := r.host("rs1")
	rs1.On(inspectContainer(layout.Bootstrap)).Stdout("running rancher/server:v1.0.1\n")
	// No OnDial: every dial of the server is refused.
	g := r.graph("bootstrap.run")
	start := time.Now()
	_, err := r.apply(g, r.plan(g))
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:8080 on rs1 (through ssh) did not answer /ping within 600ms") {
		t.Errorf("err = %v", err)
	}
	if !errors.Is(err, transporttest.ErrDialRefused) {
		t.Errorf("err does not carry the last ping's failure: %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("took %s for a 600ms limit", el)
	}
}

// docker run failing fails the step with the client's error; the env
// file's removal is part of that same command line, and is done again on
// its own in case the command was cut off before it got there.
func TestBootstrapRunDockerRunFails(t *testing.T) {
	r := newRig(t)
	r.noScript("rs1", "rs2", "rs3")
	rs1 := r.host("rs1")
	rs1.On(inspectContainer(layout.Bootstrap)).Stdout("absent\n")
	rs1.On(transporttest.WriteOf(layout.BootstrapEnv)).Once()
	rs1.On(transporttest.Line(bootstrapRunLine)).
		Stderr("docker: Error response from daemon: driver failed programming external connectivity: Bind for 127.0.0.1:8080 failed: port is already allocated.\n").
		Exit(125).Once()
	rs1.On(transporttest.Line("rm -f " + layout.BootstrapEnv)).Once()
	g := r.graph("bootstrap.run")
	_, err := r.apply(g, r.plan(g))
	var pe *transport.ProcessError
	if !errors.As(err, &pe) || pe.Host != "rs1" || pe.ExitCode != 125 || pe.Command != bootstrapRunLine {
		t.Fatalf("err = %v, want the docker run's ProcessError", err)
	}
	for _, want := range []string{"start bootstrap server", "port is already allocated"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), unitDBPassword) {
		t.Error("the error carries the password")
	}
	if slices.Contains(rs1.Dials(), "tcp 127.0.0.1:8080") {
		t.Error("waited for a server that did not start")
	}
	r.fleet.AssertExpectationsMet(t)
}

// Once a node holds the script, no bootstrap server is needed: the probe
// does not even look at the container.
func TestBootstrapRunNotNeededOnceScriptExists(t *testing.T) {
	r := newRig(t)
	r.noScript("rs1", "rs3")
	r.holdScript("rs2", []byte("#!/bin/sh\n# the cluster's\n"))
	g := r.graph("bootstrap.run")
	p := r.plan(g)
	if c := planned(t, p, "bootstrap.run"); c.Action != plans.NoOp {
		t.Errorf("change %s %q, want no-op", c.Action, c.Reason)
	}
	r.fleet.AssertExpectationsMet(t) // no docker inspect expected: none may run
}

// While a node that may hold the script does not answer and no other node
// holds one, the bootstrap server is not planned: its script could give
// the cluster a second encryption key. The change is Unknown, naming the
// silent node, and apply starts nothing.
func TestBootstrapRunUnknownWhileANodeIsSilent(t *testing.T) {
	r := newRig(t)
	r.noScript("rs1", "rs3")
	r.fleet.Unreachable("rs2")
	g := r.graph("bootstrap.run")
	p := r.plan(g)
	c := planned(t, p, "bootstrap.run")
	if c.Action != plans.Unknown || c.Unreachable != "rs2" || !strings.Contains(c.Reason, "cannot tell whether the cluster already has a rancher-ha.sh") {
		t.Fatalf("change %s, unreachable %q, reason %q", c.Action, c.Unreachable, c.Reason)
	}
	m := r.mark()
	if _, err := r.apply(g, p); err == nil {
		t.Error("apply of an unknown change succeeded")
	}
	if got := r.since(m, "rs1"); len(got) != 0 {
		t.Errorf("apply ran %d commands on rs1", len(got))
	}
	r.fleet.AssertExpectationsMet(t)
}

// bootstrap.stop removes a bootstrap server once the script exists; the
// env file goes with it, and a container that vanished meanwhile counts as
// removed.
func TestBootstrapStopRemovesServer(t *testing.T) {
	r := newRig(t)
	script := []byte("#!/bin/sh\n# the cluster's\n")
	for _, n := range []string{"rs1", "rs2", "rs3"} {
		r.holdScript(n, script)
	}
	rs1 := r.host("rs1")
	rs1.On(inspectContainer(layout.Bootstrap)).Stdout("running rancher/server:v1.0.1\n")
	line := "docker rm -f haplan-bootstrap >/dev/null || ! docker inspect haplan-bootstrap >/dev/null 2>&1; rc=$?; rm -f /var/lib/rancher/etc/haplan/bootstrap.env; exit $rc"
	rs1.On(mutatingLine(line)).Once()
	g := r.graph("bootstrap.stop")
	p := r.plan(g)
	if c := planned(t, p, "bootstrap.stop"); c.Action != plans.Delete || c.Host != "rs1" {
		t.Errorf("change %s on %q, want delete on rs1", c.Action, c.Host)
	}
	res, err := r.apply(g, p)
	if err != nil {
		t.Fatal(err)
	}
	if s := outcome(t, res, "bootstrap.stop"); s.Status != engine.StatusApplied {
		t.Errorf("status %s", s.Status)
	}
	r.fleet.AssertExpectationsMet(t)
}

// With no container left and the script generated there is nothing to
// stop; with no container and no script yet (the run that starts one), the
// stop is planned and then only removes the env file.
func TestBootstrapStopWithoutContainer(t *testing.T) {
	t.Run("script exists", func(t *testing.T) {
		r := newRig(t)
		r.holdScript("rs1", []byte("#!/bin/sh\n"))
		r.noScript("rs2", "rs3")
		r.host("rs1").On(inspectContainer(layout.Bootstrap)).Stdout("absent\n")
		g := r.graph("bootstrap.stop")
		if c := planned(t, r.plan(g), "bootstrap.stop"); c.Action != plans.NoOp {
			t.Errorf("change %s %q, want no-op", c.Action, c.Reason)
		}
		r.fleet.AssertExpectationsMet(t)
	})
	t.Run("no script yet", func(t *testing.T) {
		r := newRig(t)
		r.noScript("rs1", "rs2", "rs3")
		rs1 := r.host("rs1")
		rs1.On(inspectContainer(layout.Bootstrap)).Stdout("absent\n")
		rs1.On(mutatingLine("rm -f /var/lib/rancher/etc/haplan/bootstrap.env")).Once()
		g := r.graph("bootstrap.stop")
		p := r.plan(g)
		if c := planned(t, p, "bootstrap.stop"); c.Action != plans.Delete {
			t.Errorf("change %s, want delete", c.Action)
		}
		if _, err := r.apply(g, p); err != nil {
			t.Fatal(err)
		}
		r.fleet.AssertExpectationsMet(t)
	})
}

// A removal that fails fails the step, naming the host and the command.
func TestBootstrapStopFailure(t *testing.T) {
	r := newRig(t)
	r.holdScript("rs1", []byte("#!/bin/sh\n"))
	r.noScript("rs2", "rs3")
	rs1 := r.host("rs1")
	rs1.On(inspectContainer(layout.Bootstrap)).Stdout("running rancher/server:v1.0.1\n")
	rs1.On(transporttest.Regexp(`^docker rm -f haplan-bootstrap`)).Stderr("Error response from daemon: device or resource busy\n").Exit(1).Once()
	g := r.graph("bootstrap.stop")
	_, err := r.apply(g, r.plan(g))
	var pe *transport.ProcessError
	if !errors.As(err, &pe) || pe.Host != "rs1" || !strings.HasPrefix(pe.Command, "docker rm -f haplan-bootstrap") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "bootstrap.stop on rs1") || !strings.Contains(err.Error(), "device or resource busy") {
		t.Errorf("error %q", err)
	}
	r.fleet.AssertExpectationsMet(t)
}
