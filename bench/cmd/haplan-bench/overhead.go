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
)

// overhead is apply's engine overhead on a full install (issue 6): the wall
// time of `haplan apply` from a reset cluster against the waits it cannot
// avoid on its critical path.
type overhead struct {
	Wall float64 `json:"wall_seconds"`
	// BootstrapWait is bootstrap.run's wait for /ping after its docker run:
	// from its first "waiting for" progress event to its end.
	BootstrapWait float64 `json:"bootstrap_wait_seconds"`
	// ClusterWait is ha.verify's apply: waiting for the cluster to form.
	ClusterWait float64 `json:"cluster_wait_seconds"`
	// Overhead is Wall minus the two waits; Percent is it over Wall.
	Overhead float64 `json:"overhead_seconds"`
	Percent  float64 `json:"overhead_percent"`
	// Where the overhead goes: before the first step starts (load, SSH,
	// lock, preflight, plan), steps running outside the waits (the union of
	// their intervals), no step running between the first start and the last
	// end, and after the last step (summary, lock release, exit).
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
// start to end.
func analyse(events []event, start, end time.Time) (overhead, error) {
	o := overhead{Wall: end.Sub(start).Seconds(), Steps: map[string]float64{}}
	type span struct{ from, to time.Time }
	began := map[string]time.Time{}
	var spans []span
	var firstWait time.Time
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
			switch e.Address {
			case "bootstrap.run":
				if !firstWait.IsZero() {
					o.BootstrapWait = e.Time.Sub(firstWait).Seconds()
				}
			case "ha.verify":
				o.ClusterWait = e.Time.Sub(b).Seconds()
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
// times a full `haplan apply --json` of lab/out/cluster.yaml.
func (c *config) measureOverhead(ctx context.Context) (overhead, error) {
	if err := resetCluster(ctx, c.lab); err != nil {
		return overhead{}, fmt.Errorf("reset the cluster: %w", err)
	}
	cmd := exec.CommandContext(ctx, c.bin, "apply", "--auto-approve", "--json", "-f", c.lab.Manifest)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	end := time.Now()
	if err != nil {
		return overhead{}, fmt.Errorf("haplan apply: %v\n%s", err, lastBytes(errb.String(), 3000))
	}
	events, err := parseEvents(&out)
	if err != nil {
		return overhead{}, err
	}
	return analyse(events, start, end)
}

// resetCluster removes what haplan installed on the lab's cluster: the
// containers, image and /var/lib/rancher on the nodes, the CA on agent
// hosts, HAProxy's config on the LB, the database and its users.
func resetCluster(ctx context.Context, l *lab.Lab) error { return l.ResetCluster(ctx, "cattle") }
