package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/haplan/haplan/lab"
	"github.com/haplan/haplan/transport"
)

// overhead is apply's engine overhead on a full install (issue 6): the wall
// time of `haplan apply` from a reset cluster against the waits it cannot
// avoid on its critical path.
type overhead struct {
	Wall float64 `json:"wall_seconds"`
	// BootstrapWait is how long the bootstrap server took to answer /ping
	// after bootstrap.run's docker run: from its first "waiting for"
	// progress event to the first "pong" the bench's observer saw.
	BootstrapWait float64 `json:"bootstrap_wait_seconds"`
	// ClusterWait is how long the cluster took to form after the last
	// ha.start finished, to the moment the observer saw it formed.
	ClusterWait float64 `json:"cluster_wait_seconds"`
	// What haplan spent on the same waits: bootstrap.run from its first
	// "waiting for" event to its end, and ha.verify's apply. The difference
	// to the observed waits (PollLag) is how late haplan noticed.
	HaplanBootstrapWait float64 `json:"haplan_bootstrap_wait_seconds"`
	HaplanClusterWait   float64 `json:"haplan_cluster_wait_seconds"`
	PollLag             float64 `json:"poll_lag_seconds"`
	// SeenByHaplan names the waits whose end haplan saw before the
	// observer: their end is haplan's.
	SeenByHaplan []string `json:"seen_by_haplan,omitempty"`
	// Overhead is Wall minus the two waits; Percent is it over Wall.
	Overhead float64 `json:"overhead_seconds"`
	Percent  float64 `json:"overhead_percent"`
	// Where the overhead goes: before the first step starts (load, SSH,
	// lock, preflight, plan), steps running outside the observed waits (the
	// union of their intervals; PollLag included), no step running between
	// the first start and the last end, and after the last step (summary,
	// lock release, exit).
	BeforeFirstStep float64            `json:"before_first_step_seconds"`
	StepsWork       float64            `json:"steps_outside_waits_seconds"`
	Idle            float64            `json:"idle_between_steps_seconds"`
	AfterLastStep   float64            `json:"after_last_step_seconds"`
	Steps           map[string]float64 `json:"steps_seconds"` // apply time per step
}

// event is the part of `haplan apply --json`'s event lines the bench reads
// (cmd/haplan/view_events.go, jsonEvent).
type event struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Address string    `json:"address"`
	Message string    `json:"message"`
}

// analyse computes the overhead from the events of an apply that ran from
// start to end, and the moments the observer saw the bootstrap server ready
// and the cluster formed.
func analyse(events []event, start, end, bootReady, formed time.Time) (overhead, error) {
	o := overhead{Wall: end.Sub(start).Seconds(), Steps: map[string]float64{}}
	type span struct{ from, to time.Time }
	began := map[string]time.Time{}
	var spans []span
	var firstWait, haStarted time.Time
	for _, e := range events {
		switch e.Kind {
		case "apply_started":
			began[e.Address] = e.Time
		case "progress":
			if e.Address == "bootstrap.run" && firstWait.IsZero() && strings.HasPrefix(e.Message, "waiting for") {
				firstWait = e.Time
			}
		case "apply_failed", "skipped", "not_started":
			return o, fmt.Errorf("%s %s: %s", e.Address, e.Kind, e.Message)
		case "apply_finished":
			b, ok := began[e.Address]
			if !ok {
				return o, fmt.Errorf("%s finished without starting", e.Address)
			}
			spans = append(spans, span{b, e.Time})
			o.Steps[e.Address] = e.Time.Sub(b).Seconds()
			switch {
			case e.Address == "bootstrap.run":
				if !firstWait.IsZero() {
					o.HaplanBootstrapWait = e.Time.Sub(firstWait).Seconds()
				}
			case e.Address == "ha.verify":
				o.HaplanClusterWait = e.Time.Sub(b).Seconds()
			case strings.HasPrefix(e.Address, "ha.start[") && e.Time.After(haStarted):
				haStarted = e.Time
			}
		}
	}
	if len(spans) == 0 {
		return o, fmt.Errorf("no step was applied")
	}
	for _, w := range []string{"bootstrap.run", "ha.verify"} {
		if _, ok := o.Steps[w]; !ok {
			return o, fmt.Errorf("%s was not applied: the cluster was not reset", w)
		}
	}
	if firstWait.IsZero() || haStarted.IsZero() {
		return o, fmt.Errorf("no bootstrap wait or no ha.start in the events")
	}
	// haplan's own checks passing prove the same moments: a wait that
	// haplan saw end before the observer did (one poll apart) ended then.
	bootEnd := firstWait.Add(time.Duration(o.HaplanBootstrapWait * float64(time.Second)))
	if bootReady.IsZero() || bootReady.After(bootEnd) {
		bootReady = bootEnd
		o.SeenByHaplan = append(o.SeenByHaplan, "bootstrap")
	}
	verifyEnd := end
	if b, ok := began["ha.verify"]; ok {
		verifyEnd = b.Add(time.Duration(o.HaplanClusterWait * float64(time.Second)))
	}
	if formed.IsZero() || formed.After(verifyEnd) {
		formed = verifyEnd
		o.SeenByHaplan = append(o.SeenByHaplan, "cluster")
	}
	if bootReady.Before(firstWait) || formed.Before(haStarted) {
		return o, fmt.Errorf("the observer saw the bootstrap ready at %s (wait began %s) and the cluster formed at %s (ha.start ended %s)",
			bootReady.Format(time.RFC3339Nano), firstWait.Format(time.RFC3339Nano), formed.Format(time.RFC3339Nano), haStarted.Format(time.RFC3339Nano))
	}
	o.BootstrapWait = bootReady.Sub(firstWait).Seconds()
	o.ClusterWait = formed.Sub(haStarted).Seconds()
	o.PollLag = o.HaplanBootstrapWait - o.BootstrapWait + o.HaplanClusterWait - o.ClusterWait
	slices.SortFunc(spans, func(a, b span) int { return a.from.Compare(b.from) })
	first, last := spans[0].from, spans[0].to
	busy := 0.0 // union of the step intervals
	cur := spans[0]
	for _, s := range spans[1:] {
		if s.from.After(cur.to) {
			busy += cur.to.Sub(cur.from).Seconds()
			cur = s
		} else if s.to.After(cur.to) {
			cur.to = s.to
		}
	}
	busy += cur.to.Sub(cur.from).Seconds()
	for _, s := range spans {
		if s.to.After(last) {
			last = s.to
		}
	}
	o.BeforeFirstStep = first.Sub(start).Seconds()
	o.AfterLastStep = end.Sub(last).Seconds()
	o.Idle = last.Sub(first).Seconds() - busy
	o.StepsWork = busy - o.BootstrapWait - o.ClusterWait
	o.Overhead = o.Wall - o.BootstrapWait - o.ClusterWait
	o.Percent = 100 * o.Overhead / o.Wall
	return o, nil
}

func parseEvents(r io.Reader) ([]event, error) {
	var out []event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("event line %q: %w", line, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// measureOverhead resets the lab's cluster (as e2e's resetCluster does) and
// times a full `haplan apply --json` of lab/out/cluster.yaml, while an
// observer watches the bootstrap server and the cluster from outside.
func (c *config) measureOverhead(ctx context.Context) (overhead, error) {
	if err := resetCluster(ctx, c.lab); err != nil {
		return overhead{}, fmt.Errorf("reset the cluster: %w", err)
	}
	var nodes []string
	for _, h := range c.lab.ByRole(lab.RoleNode) {
		nodes = append(nodes, h.Name)
	}
	lbs := c.lab.ByRole(lab.RoleLB)
	if len(nodes) == 0 || len(lbs) == 0 {
		return overhead{}, fmt.Errorf("the lab has no nodes or no load balancer")
	}
	obs := newObserver(c.lab.IPs, nodes, lbs[0].Name)
	pool := transport.NewPool(transport.PoolOptions{})
	defer pool.Close()
	ssh := c.lab.SSH
	boot, err := pool.Client(ctx, transport.Config{Host: nodes[0], Address: c.lab.IPs[nodes[0]], Port: ssh.Port, User: ssh.User,
		IdentityFile: ssh.IdentityFile, KnownHostsFile: ssh.KnownHostsFile, HostKeyPolicy: "strict", ConnectTimeout: 10 * time.Second})
	if err != nil {
		return overhead{}, fmt.Errorf("observer: ssh to %s: %w", nodes[0], err)
	}
	obs.bootstrapDial = boot.DialContext
	octx, stop := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { obs.run(octx); close(watched) }()
	cmd := exec.CommandContext(ctx, c.bin, "apply", "--auto-approve", "--json", "-f", c.lab.Manifest)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err = cmd.Run()
	end := time.Now()
	stop()
	<-watched
	if err != nil {
		return overhead{}, fmt.Errorf("haplan apply: %v\n%s", err, lastBytes(errb.String(), 3000))
	}
	events, err := parseEvents(&out)
	if err != nil {
		return overhead{}, err
	}
	ready, formed := obs.moments()
	return analyse(events, start, end, ready, formed)
}

// resetCluster removes what haplan installed on the lab's cluster: the
// containers, image and /var/lib/rancher on the nodes, the CA on agent
// hosts, HAProxy's config on the LB, the database and its users.
func resetCluster(ctx context.Context, l *lab.Lab) error { return l.ResetCluster(ctx, "cattle") }
