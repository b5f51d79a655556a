package resources

import (
	"context"
	"fmt"

	"github.com/haplan/haplan/dockerapi"
	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/transport"
)

// imagePull makes sure the server image is on a node before anything needs
// it, so the HA start does not wait on a pull and all nodes start together.
type imagePull struct {
	base
	node manifests.Node
}

var _ engine.Step = (*imagePull)(nil)

type imagePullState struct {
	Present bool   `json:"present"`
	ID      string `json:"id,omitempty"`
}

func (s *imagePull) Probe(ctx context.Context) (engine.State, error) {
	r, err := s.env.runner(ctx, nodeTarget(s.node), false)
	if err != nil {
		return nil, err
	}
	id, err := dockerapi.New(r).ImageID(ctx, s.env.c.Rancher.Image)
	if err != nil || id == "" {
		return imagePullState{}, err
	}
	return imagePullState{Present: true, ID: id}, nil
}

func (s *imagePull) Diff(cur engine.State) plans.Change {
	st := cur.(imagePullState)
	img := s.env.c.Rancher.Image
	if !st.Present {
		return s.change(plans.Create, fmt.Sprintf("image %s is not on %s", img, s.node.Name), plans.Detail{Name: "image", New: img})
	}
	return s.change(plans.NoOp, fmt.Sprintf("image %s present", img))
}

func (s *imagePull) Apply(ctx context.Context, _ plans.Change) error {
	r, err := s.env.runner(ctx, nodeTarget(s.node), true)
	if err != nil {
		return err
	}
	engine.Progress(ctx, "docker pull %s", s.env.c.Rancher.Image)
	_, err = run(ctx, r, "docker pull "+transport.Quote(s.env.c.Rancher.Image), true)
	return err
}
