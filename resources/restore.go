package resources

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/haplan/haplan/dockerapi"
	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/plans"
)

// A restore is two plans, both applied by the engine: first the restore
// steps compiled here (every node's rancher-ha containers removed, so no
// node uses the database while it is replaced, then the dump loaded), then
// the manifest's own plan, whose ha.start steps start every node again,
// together, from the same script (cmd/haplan restore runs both).

// CompileRestore returns the steps that stop the cluster and load the
// dump at path, made by Backup and described by info.
func CompileRestore(c *manifests.Cluster, e *Env, path string, info BackupInfo) []engine.Step {
	var steps []engine.Step
	var stops []engine.Addr
	for _, n := range c.Nodes {
		a := addr("restore.stop", n.Name)
		stops = append(stops, a)
		steps = append(steps, &restoreStop{base: base{addr: a, host: n.Name, env: e}, node: n})
	}
	steps = append(steps, &restoreLoad{base: base{addr: addr("restore.load", ""), deps: stops, env: e}, path: path, info: info})
	return steps
}

// restoreStop removes rancher-ha and what cluster-manager started after
// it (rancher-ha-*) on one node. The stops are a barrier group: with one
// node not answering none is stopped (it could still write to the
// database while the dump is loaded).
type restoreStop struct {
	base
	node manifests.Node
}

var _ engine.Barrier = (*restoreStop)(nil)

func (s *restoreStop) BarrierGroup() string { return "restore.stop" }

type restoreStopState struct {
	// Containers are the node's rancher-ha containers, by name.
	Containers []string `json:"containers"`
}

func (s *restoreStop) Probe(ctx context.Context) (engine.State, error) {
	r, err := s.env.runner(ctx, nodeTarget(s.node))
	if err != nil {
		return nil, err
	}
	cs, err := dockerapi.New(r).List(ctx)
	if err != nil {
		return nil, err
	}
	st := restoreStopState{Containers: []string{}}
	for _, c := range cs {
		if c.Name == layout.HA || strings.HasPrefix(c.Name, layout.HA+"-") {
			st.Containers = append(st.Containers, c.Name)
		}
	}
	slices.Sort(st.Containers) // the plan reads the same whatever order docker lists them in
	return st, nil
}

func (s *restoreStop) Diff(cur engine.State) plans.Change {
	st := cur.(restoreStopState)
	if len(st.Containers) == 0 {
		return s.change(plans.NoOp, "rancher-ha is not running on "+s.node.Name)
	}
	return s.change(plans.Delete, fmt.Sprintf("stop rancher-ha on %s (%s): the Rancher server is down until the restore ends", s.node.Name, strings.Join(st.Containers, ", ")))
}

func (s *restoreStop) Apply(ctx context.Context, _ plans.Change) error {
	r, err := s.env.runner(ctx, nodeTarget(s.node))
	if err != nil {
		return err
	}
	_, err = run(ctx, r, removeHAContainers, true)
	return err
}

// restoreLoad loads the dump into the database server.
type restoreLoad struct {
	base
	path string
	info BackupInfo
}

type restoreLoadState struct {
	Dump string `json:"dump"` // the dump file's digest
}

func (s *restoreLoad) Probe(ctx context.Context) (engine.State, error) {
	d, err := fileDigest(s.path)
	if err != nil {
		return nil, err
	}
	if d != s.info.SHA256 {
		return nil, fmt.Errorf("%s: its SHA-256 is %s, its record says %s: the dump changed since it was made", s.path, d, s.info.SHA256)
	}
	return restoreLoadState{Dump: d}, nil
}

func (s *restoreLoad) Diff(engine.State) plans.Change {
	return s.change(plans.Replace, fmt.Sprintf("replace database %q with the dump of %s (%s, %d bytes)", s.env.c.Database.Name,
		s.info.Created.Format("2006-01-02 15:04:05 UTC"), s.path, s.info.Size),
		plans.Detail{Name: "server image", New: s.info.ServerImage},
		plans.Detail{Name: "dump", New: short("sha256:" + s.info.SHA256)})
}

func (s *restoreLoad) Apply(ctx context.Context, _ plans.Change) error {
	f, err := os.Open(s.path)
	if err != nil {
		return err
	}
	defer f.Close()
	engine.Progress(ctx, "loading %s into database %s", s.path, s.env.c.Database.Name)
	return s.env.Restore(ctx, f)
}

// fileDigest is the hex SHA-256 of a file.
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
