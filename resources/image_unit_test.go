package resources

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/transport"
	"github.com/haplan/haplan/transport/transporttest"
)

// mutatingLine matches exactly line, sent as a mutating command.
func mutatingLine(line string) transporttest.Matcher {
	return transporttest.Line(line).And("mutating", func(c transport.Cmd) bool { return c.Mutates })
}

// A node that lacks the agent images gets exactly those pulled, in order,
// each image quoted, with rancher.timeouts.pull as the command's limit;
// the image it has is not pulled again.
func TestImagePullPullsWhatIsMissing(t *testing.T) {
	r := newRig(t)
	rs1 := r.host("rs1")
	rs1.On(inspectImage(r.c.Rancher.Image)).Stdout("sha256:0123\n")
	rs1.On(inspectImage(r.c.Rancher.AgentImage)).Stdout("absent\n")
	rs1.On(inspectImage(r.c.Rancher.AgentInstanceImage)).Stdout("absent\n")
	pullAgent := "docker pull 'rancher/agent:v1.0.1'"
	pullInstance := "docker pull 'rancher/agent-instance:v0.8.1'"
	rs1.On(mutatingLine(pullAgent)).Once()
	rs1.On(mutatingLine(pullInstance)).Once()

	g := r.graph("image.pull[rs1]")
	p := r.plan(g)
	c := planned(t, p, "image.pull[rs1]")
	if c.Action != plans.Create || c.Host != "rs1" {
		t.Fatalf("change = %s on %q, want create on rs1", c.Action, c.Host)
	}
	var want []string
	for _, d := range c.Details {
		want = append(want, d.New)
	}
	if strings.Join(want, ",") != "rancher/agent:v1.0.1,rancher/agent-instance:v0.8.1" {
		t.Errorf("details name %v, want the two missing images", want)
	}
	if !strings.Contains(c.Reason, "not on rs1") {
		t.Errorf("reason %q does not name the node", c.Reason)
	}

	m := r.mark()
	res, err := r.apply(g, p)
	if err != nil {
		t.Fatal(err)
	}
	if s := outcome(t, res, "image.pull[rs1]"); s.Status != engine.StatusApplied {
		t.Errorf("status %s, want applied", s.Status)
	}
	cmds := r.since(m, "rs1")
	if got := mutating(cmds); strings.Join(got, "\n") != pullAgent+"\n"+pullInstance {
		t.Errorf("mutating commands:\n%s\nwant the two pulls, agent first", strings.Join(got, "\n"))
	}
	for _, c := range cmds {
		if c.Mutates && c.Timeout != 7*time.Minute {
			t.Errorf("%q has timeout %s, want rancher.timeouts.pull (7m)", c.Line, c.Timeout)
		}
	}
	// The re-check reads the three images (read-only); Apply reads each
	// again just before pulling it.
	img := r.c.Rancher
	seq := []transporttest.Matcher{
		inspectImage(img.Image), inspectImage(img.AgentImage), inspectImage(img.AgentInstanceImage),
		inspectImage(img.Image), inspectImage(img.AgentImage), mutatingLine(pullAgent),
		inspectImage(img.AgentInstanceImage), mutatingLine(pullInstance),
	}
	if !inSequence(cmds, seq) {
		t.Errorf("apply ran:\n%s\nwant, in order: %v", strings.Join(lines(cmds), "\n"), seq)
	}
	r.fleet.AssertExpectationsMet(t)
}

// With rancher.imageRegistry every image comes from the site's registry
// and is tagged with the name the script and the server use.
func TestImagePullFromRegistry(t *testing.T) {
	r := newRig(t, func(c *manifests.Cluster) { c.Rancher.ImageRegistry = "registry.example:5000/mirror" })
	rs2 := r.host("rs2")
	var pulls []string
	for _, img := range r.env.images() {
		rs2.On(inspectImage(img)).Stdout("absent\n")
		from := transport.Quote("registry.example:5000/mirror/" + img)
		line := "docker pull " + from + " && docker tag " + from + " " + transport.Quote(img)
		rs2.On(mutatingLine(line)).Once()
		pulls = append(pulls, line)
	}
	g := r.graph("image.pull[rs2]")
	p := r.plan(g)
	if c := planned(t, p, "image.pull[rs2]"); !strings.Contains(c.Reason, "(pulled from registry.example:5000/mirror)") {
		t.Errorf("reason %q does not say where the images come from", c.Reason)
	}
	m := r.mark()
	if _, err := r.apply(g, p); err != nil {
		t.Fatal(err)
	}
	cmds := r.since(m, "rs2")
	if got := mutating(cmds); strings.Join(got, "\n") != strings.Join(pulls, "\n") {
		t.Errorf("pulls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(pulls, "\n"))
	}
	for _, c := range cmds {
		if c.Mutates && c.Timeout != 7*time.Minute {
			t.Errorf("%q has timeout %s, want rancher.timeouts.pull (7m)", c.Line, c.Timeout)
		}
	}
	r.fleet.AssertExpectationsMet(t)
}

// A pull that fails fails the step with the error the SSH client gives
// (host, command, Docker's message) and pulls nothing after it.
func TestImagePullFailureNamesHostAndCommand(t *testing.T) {
	r := newRig(t)
	rs1 := r.host("rs1")
	for _, img := range r.env.images() {
		rs1.On(inspectImage(img)).Stdout("absent\n")
	}
	rs1.On(mutatingLine("docker pull 'rancher/server:v1.0.1'")).
		Stderr("Error response from daemon: manifest for rancher/server:v1.0.1 not found\n").Exit(1).Once()
	g := r.graph("image.pull[rs1]")
	p := r.plan(g)
	m := r.mark()
	res, err := r.apply(g, p)
	if err == nil {
		t.Fatal("apply succeeded with a failed pull")
	}
	s := outcome(t, res, "image.pull[rs1]")
	var pe *transport.ProcessError
	if s.Status != engine.StatusFailed || !errors.As(s.Err, &pe) {
		t.Fatalf("status %s, err %v; want failed with a *transport.ProcessError", s.Status, s.Err)
	}
	if pe.Host != "rs1" || pe.Command != "docker pull 'rancher/server:v1.0.1'" || pe.ExitCode != 1 {
		t.Errorf("ProcessError = %+v", pe)
	}
	for _, want := range []string{"image.pull[rs1]", "rs1", `"docker pull 'rancher/server:v1.0.1'"`, "manifest for rancher/server:v1.0.1 not found"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if got := mutating(r.since(m, "rs1")); len(got) != 1 {
		t.Errorf("ran %q after the failed pull; the others must not be pulled", got)
	}
	r.fleet.AssertExpectationsMet(t)
}

// A pull that hangs is cut at rancher.timeouts.pull with a timeout error
// naming the host and the command.
func TestImagePullHangIsCutAtThePullTimeout(t *testing.T) {
	r := newRig(t, func(c *manifests.Cluster) { c.Rancher.Timeouts.Pull = 30 * time.Millisecond })
	rs1 := r.host("rs1")
	rs1.On(inspectImage(r.c.Rancher.Image)).Stdout("absent\n")
	rs1.On(inspectImage(r.c.Rancher.AgentImage)).Stdout("sha256:1\n")
	rs1.On(inspectImage(r.c.Rancher.AgentInstanceImage)).Stdout("sha256:2\n")
	rs1.On(mutatingLine("docker pull 'rancher/server:v1.0.1'")).Hang().Once()
	g := r.graph("image.pull[rs1]")
	_, err := r.apply(g, r.plan(g))
	var te *transport.TimeoutError
	if !errors.As(err, &te) || te.Host != "rs1" || te.After != 30*time.Millisecond || te.Command != "docker pull 'rancher/server:v1.0.1'" {
		t.Fatalf("err = %v, want a *transport.TimeoutError for the pull on rs1 after 30ms", err)
	}
	r.fleet.AssertExpectationsMet(t)
}

// A node that does not answer is a finding of the plan, not a failure:
// its pull is Unknown and the other node's is planned as usual; apply
// then runs nothing on it.
func TestImagePullUnreachableNodeIsUnknown(t *testing.T) {
	r := newRig(t)
	r.fleet.Unreachable("rs2")
	for _, img := range r.env.images() {
		r.host("rs1").On(inspectImage(img)).Stdout("sha256:present\n")
	}
	g := r.graph("image.pull[rs1]", "image.pull[rs2]")
	p := r.plan(g)
	c2 := planned(t, p, "image.pull[rs2]")
	if c2.Action != plans.Unknown || c2.Unreachable != "rs2" || !strings.Contains(c2.Reason, "rs2 did not answer") {
		t.Errorf("rs2: %s, unreachable %q, reason %q; want unknown, rs2", c2.Action, c2.Unreachable, c2.Reason)
	}
	if p.Probes["image.pull[rs2]"] != "unreachable" {
		t.Errorf("probe digest %q", p.Probes["image.pull[rs2]"])
	}
	if c1 := planned(t, p, "image.pull[rs1]"); c1.Action != plans.NoOp {
		t.Errorf("rs1: %s, want no-op (all images present)", c1.Action)
	}
	res, err := r.apply(g, p)
	var np *engine.NotProbedError
	if !errors.As(err, &np) {
		t.Errorf("apply: %v, want a NotProbedError for rs2", err)
	}
	if s := outcome(t, res, "image.pull[rs2]"); s.Status != engine.StatusFailed {
		t.Errorf("rs2: %s, want failed (not probed)", s.Status)
	}
	if s := outcome(t, res, "image.pull[rs1]"); s.Status != engine.StatusUnchanged {
		t.Errorf("rs1: %s, want unchanged", s.Status)
	}
	if n := len(r.host("rs2").Calls()); n != 0 {
		t.Errorf("%d commands ran on the unreachable node", n)
	}
	r.fleet.AssertExpectationsMet(t)
}

// A Docker that does not answer is not an absent image: the plan fails,
// naming the node and the image, instead of planning a pull.
func TestImagePullDeadDockerFailsThePlan(t *testing.T) {
	r := newRig(t)
	r.host("rs1").On(inspectImage(r.c.Rancher.Image)).
		Stderr("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n").Exit(1)
	_, err := engine.Plan(t.Context(), r.graph("image.pull[rs1]"), engine.Options{})
	if err == nil {
		t.Fatal("the plan succeeded though Docker does not answer")
	}
	for _, want := range []string{"image rancher/server:v1.0.1 on rs1", "Cannot connect to the Docker daemon"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, ok := engine.IsUnreachable(err); ok {
		t.Error("a failed docker read passed for an unreachable host")
	}
	r.fleet.AssertExpectationsMet(t)
}
