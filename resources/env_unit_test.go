package resources

import (
	"context"
	"errors"
	"testing"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/transport"
	"github.com/haplan/haplan/transport/transporttest"
)

// gateStep tries a mutating command on rs1 in each phase and keeps what
// the Env's runner answered.
type gateStep struct {
	r              *rig
	probes, applys []error
}

func (s *gateStep) Addr() engine.Addr   { return "gate" }
func (s *gateStep) Deps() []engine.Addr { return nil }
func (s *gateStep) Host() string        { return "rs1" }
func (s *gateStep) Diff(engine.State) plans.Change {
	return plans.Change{Action: plans.Update, Reason: "always"}
}

func (s *gateStep) try(ctx context.Context) error {
	run, err := s.r.env.runner(ctx, nodeTarget(s.r.c.Nodes[0]))
	if err != nil {
		return err
	}
	_, err = run.Run(ctx, transport.Cmd{Line: "touch /tmp/gate", Mutates: true})
	return err
}

func (s *gateStep) Probe(ctx context.Context) (engine.State, error) {
	s.probes = append(s.probes, s.try(ctx))
	return struct{}{}, nil
}

func (s *gateStep) Apply(ctx context.Context, _ plans.Change) error {
	s.applys = append(s.applys, s.try(ctx))
	return nil
}

// The runner a step gets from its Env refuses mutating commands in the
// plan's probe and in the re-check before Apply (transport.ReadOnly, the
// double never sees them), and lets them through in Apply alone: the
// engine decides, through the context.
func TestRunnerIsReadOnlyOutsideApply(t *testing.T) {
	r := newRig(t)
	rs1 := r.host("rs1")
	rs1.On(transporttest.Line("touch /tmp/gate")).Once()
	s := &gateStep{r: r}
	g, err := engine.NewGraph([]engine.Step{s})
	if err != nil {
		t.Fatal(err)
	}
	p, err := engine.Plan(context.Background(), g, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Apply(context.Background(), g, p, engine.Options{}); err != nil {
		t.Fatal(err)
	}
	if len(s.probes) != 2 {
		t.Fatalf("%d probes, want the plan's and the re-check's", len(s.probes))
	}
	for i, err := range s.probes {
		if !errors.Is(err, transport.ErrReadOnly) {
			t.Errorf("probe %d: a mutating command gave %v, want ErrReadOnly", i, err)
		}
	}
	if len(s.applys) != 1 || s.applys[0] != nil {
		t.Errorf("apply: %v, want the command run", s.applys)
	}
	if n := len(rs1.Calls()); n != 1 {
		t.Errorf("the node saw %d commands, want only Apply's", n)
	}
	rs1.AssertExpectationsMet(t)
}
