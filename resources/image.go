package resources

import (
	"context"
	"fmt"
	"strings"

	"github.com/haplan/haplan/dockerapi"
	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/transport"
)

// imagePull makes sure every image a node needs is on it before anything
// needs it: the server image, so the HA start does not wait on a pull and
// all nodes start together, and the agent images the node would otherwise
// pull from the registry while the cluster forms (cluster-manager runs the
// agent from setting bootstrap.required.image, pulling it when missing;
// cattle uses agent.instance.image for the network agent). A node that
// cannot reach the registry then still forms.
type imagePull struct {
	base
	node manifests.Node
}

var _ engine.Step = (*imagePull)(nil)

// imagePullState maps each wanted image to its local ID, "" when missing.
type imagePullState struct {
	Images map[string]string `json:"images"`
}

// images are the references every node needs, in pull order.
func (e *Env) images() []string {
	r := e.c.Rancher
	return []string{r.Image, r.AgentImage, r.AgentInstanceImage}
}

func (s *imagePull) Probe(ctx context.Context) (engine.State, error) {
	r, err := s.env.runner(ctx, nodeTarget(s.node))
	if err != nil {
		return nil, err
	}
	d := dockerapi.New(r)
	st := imagePullState{Images: map[string]string{}}
	for _, img := range s.env.images() {
		id, err := d.ImageID(ctx, img)
		if err != nil {
			return nil, fmt.Errorf("image %s on %s: %w", img, s.node.Name, err)
		}
		st.Images[img] = id
	}
	return st, nil
}

func (st imagePullState) missing(want []string) []string {
	var out []string
	for _, img := range want {
		if st.Images[img] == "" {
			out = append(out, img)
		}
	}
	return out
}

func (s *imagePull) Diff(cur engine.State) plans.Change {
	st := cur.(imagePullState)
	want := s.env.images()
	missing := st.missing(want)
	if len(missing) == 0 {
		return s.change(plans.NoOp, fmt.Sprintf("images present: %s", strings.Join(want, ", ")))
	}
	var details []plans.Detail
	for _, img := range missing {
		details = append(details, plans.Detail{Name: "image", New: img})
	}
	what := "image " + missing[0] + " is"
	if len(missing) > 1 {
		what = "images " + strings.Join(missing, ", ") + " are"
	}
	reason := fmt.Sprintf("%s not on %s", what, s.node.Name)
	if reg := s.env.c.Rancher.ImageRegistry; reg != "" {
		reason += " (pulled from " + reg + ")"
	}
	return s.change(plans.Create, reason, details...)
}

// Apply pulls the images the node lacks, one after the other.
func (s *imagePull) Apply(ctx context.Context, _ plans.Change) error {
	r, err := s.env.runner(ctx, nodeTarget(s.node))
	if err != nil {
		return err
	}
	d := dockerapi.New(r)
	for _, img := range s.env.images() {
		if id, err := d.ImageID(ctx, img); err != nil {
			return err
		} else if id != "" {
			continue
		}
		if reg := s.env.c.Rancher.ImageRegistry; reg != "" {
			// From the site's own registry, under the name the script, the
			// server and cluster-manager use.
			from := reg + "/" + img
			engine.Progress(ctx, "docker pull %s (tagged %s)", from, img)
			if _, err := runWithin(ctx, r, "docker pull "+transport.Quote(from)+" && docker tag "+transport.Quote(from)+" "+transport.Quote(img), true, s.env.c.Rancher.Timeouts.Pull); err != nil {
				return err
			}
			continue
		}
		engine.Progress(ctx, "docker pull %s", img)
		if _, err := runWithin(ctx, r, "docker pull "+transport.Quote(img), true, s.env.c.Rancher.Timeouts.Pull); err != nil {
			return err
		}
	}
	return nil
}
