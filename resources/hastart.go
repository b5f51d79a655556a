package resources

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/transport"
)

// haStart runs the cluster's rancher-ha.sh on one node with the manifest's
// image, after writing the node's cluster IP into agent.conf. All pending
// ha.start steps form one barrier group: Rancher's master waits only about a
// minute for the other nodes.
type haStart struct {
	base
	node manifests.Node
}

var (
	_ engine.Step    = (*haStart)(nil)
	_ engine.Barrier = (*haStart)(nil)
)

// BarrierGroup puts every node's start in one group.
func (s *haStart) BarrierGroup() string { return "ha.start" }

type haStartState struct {
	Container    string `json:"container"` // docker status or "absent"
	Image        string `json:"image,omitempty"`
	StartedWith  string `json:"started_with,omitempty"` // digest of the script it was started with
	ScriptDigest string `json:"script_digest,omitempty"`
	ClusterIP    string `json:"cluster_ip,omitempty"` // from agent.conf
	// StartedSize is the cluster size of the script it was started with;
	// 0 when unknown.
	StartedSize int `json:"started_size,omitempty"`
}

type startRecord struct {
	ScriptDigest string    `json:"script_digest"`
	Image        string    `json:"image"`
	ClusterIP    string    `json:"cluster_ip"`
	ClusterSize  int       `json:"cluster_size,omitempty"`
	Started      time.Time `json:"started"`
}

// FinishOnceStarted: once the nodes have been stopped (an upgrade) or
// anything before them changed, their start goes on after a first
// interrupt: leaving every node stopped is the one outcome worse than
// finishing.
func (s *haStart) FinishOnceStarted() bool { return true }

var _ engine.Finisher = (*haStart)(nil)

func (s *haStart) Probe(ctx context.Context) (engine.State, error) {
	return s.env.haState(ctx, s.node)
}

// haState is how rancher-ha runs on a node and what it was started with:
// what ha.start and ha.stop decide on.
func (e *Env) haState(ctx context.Context, n manifests.Node) (haStartState, error) {
	f, err := e.scripts(ctx)
	if err != nil {
		return haStartState{}, err
	}
	r, err := e.runner(ctx, nodeTarget(n))
	if err != nil {
		return haStartState{}, err
	}
	st := haStartState{ScriptDigest: f.Digest[n.Name]}
	if st.Container, st.Image, err = containerStatus(ctx, r, layout.HA); err != nil {
		return haStartState{}, err
	}
	if b, ok, err := transport.ReadFile(ctx, r, layout.Started); err != nil {
		return haStartState{}, err
	} else if ok {
		var rec startRecord
		if json.Unmarshal(b, &rec) == nil {
			st.StartedWith, st.StartedSize = rec.ScriptDigest, rec.ClusterSize
			if st.StartedSize == 0 && rec.ScriptDigest == st.ScriptDigest {
				// Started before records kept the size: the script it
				// was started with is still the one it holds.
				st.StartedSize = f.Params[n.Name].ClusterSize
			}
		}
	}
	if b, ok, err := transport.ReadFile(ctx, r, layout.AgentConf); err != nil {
		return haStartState{}, err
	} else if ok {
		st.ClusterIP = confValue(string(b), "CATTLE_HA_CLUSTER_IP")
	}
	return st, nil
}

// resizing reports a running rancher-ha started with a script for another
// cluster size than the manifest's node count.
func (e *Env) resizing(st haStartState) bool {
	return st.Container != "absent" && st.StartedSize != 0 && st.StartedSize != len(e.c.Nodes)
}

// otherScript reports a rancher-ha started from another script than the
// one its node holds.
func otherScript(st haStartState) bool {
	return st.ScriptDigest != "" && st.StartedWith != "" && st.StartedWith != st.ScriptDigest
}

func (s *haStart) Diff(cur engine.State) plans.Change {
	st := cur.(haStartState)
	img := s.env.c.Rancher.Image
	ip := s.node.ClusterIP
	details := changed(plans.Detail{Name: "image", Old: st.Image, New: img}, plans.Detail{Name: "cluster IP", Old: st.ClusterIP, New: ip})
	switch {
	case st.Container == "absent":
		return s.change(plans.Create, fmt.Sprintf("rancher-ha is not running on %s", s.node.Name), details...)
	case st.Image != img:
		return s.change(plans.Replace, fmt.Sprintf("upgrade: rancher-ha runs %s, the manifest says %s (every node starts %s together, after ha.stop)", st.Image, img, img), details...)
	case s.env.resizing(st):
		return s.change(plans.Replace, fmt.Sprintf("resize: rancher-ha runs with cluster size %d, the manifest has %s (every node starts with the new rancher-ha.sh together, after ha.stop)", st.StartedSize, nodeCount(len(s.env.c.Nodes))),
			plans.Detail{Name: "clusterSize", Old: strconv.Itoa(st.StartedSize), New: strconv.Itoa(len(s.env.c.Nodes))})
	case st.ClusterIP != ip:
		return s.change(plans.Replace, fmt.Sprintf("cluster IP in agent.conf is %q, the manifest says %s", st.ClusterIP, ip), details...)
	case otherScript(st):
		return s.change(plans.Replace, "rancher-ha was started from another rancher-ha.sh than the cluster's",
			plans.Detail{Name: "script", Old: short(st.StartedWith), New: short(st.ScriptDigest), Sensitive: true})
	}
	c := s.change(plans.NoOp, fmt.Sprintf("rancher-ha %s on %s", st.Container, s.node.Name))
	if st.Container != "running" {
		c.Warnings = append(c.Warnings, fmt.Sprintf("rancher-ha on %s is %s (docker restarts it; see docker logs rancher-ha)", s.node.Name, st.Container))
	}
	return c
}

func (s *haStart) Apply(ctx context.Context, _ plans.Change) error {
	r, err := s.env.runner(ctx, nodeTarget(s.node))
	if err != nil {
		return err
	}
	// The script first: a step that cannot start leaves the node as it
	// found it.
	script, ok, err := transport.ReadFile(ctx, r, layout.Script)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s has no %s: script.generate did not run", s.node.Name, layout.Script)
	}
	old, _, err := transport.ReadFile(ctx, r, layout.AgentConf)
	if err != nil {
		return err
	}
	conf := setConf(string(old), map[string]string{
		"CATTLE_HA_CLUSTER_IP": s.node.ClusterIP,
		"CATTLE_AGENT_IP":      s.node.ClusterIP,
	})
	if conf != string(old) {
		if err := transport.WriteFile(ctx, r, layout.AgentConf, []byte(conf), 0o600); err != nil {
			return err
		}
	}
	img := s.env.c.Rancher.Image
	engine.Progress(ctx, "sh rancher-ha.sh %s", img)
	if _, err := runWithin(ctx, r, "sh "+layout.Script+" "+transport.Quote(img), true, s.env.c.Rancher.Timeouts.Pull); err != nil {
		return fmt.Errorf("run rancher-ha.sh on %s: %w%s", s.node.Name, err, s.env.restoreHint())
	}
	var meta scriptMeta
	if b, ok, err := transport.ReadFile(ctx, r, layout.ScriptMeta); err != nil {
		return err
	} else if ok {
		_ = json.Unmarshal(b, &meta) // no record: a size nobody knows
	}
	rec, err := json.Marshal(startRecord{ScriptDigest: digest(script), Image: img, ClusterIP: s.node.ClusterIP,
		ClusterSize: meta.ClusterSize, Started: time.Now().UTC()})
	if err != nil {
		return err
	}
	return transport.WriteFile(ctx, r, layout.Started, append(rec, '\n'), 0o600)
}

// confValue reads KEY from "export KEY=value" / "KEY=value" lines.
func confValue(conf, key string) string {
	v := ""
	for _, line := range strings.Split(conf, "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "export ")
		if k, val, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == key {
			v = strings.Trim(strings.TrimSpace(val), `"'`)
		}
	}
	return v
}

// setConf sets keys in a shell env file, keeping every other line.
func setConf(conf string, kv map[string]string) string {
	var out []string
	done := map[string]bool{}
	for _, line := range strings.Split(strings.TrimRight(conf, "\n"), "\n") {
		t := strings.TrimPrefix(strings.TrimSpace(line), "export ")
		if k, _, ok := strings.Cut(t, "="); ok {
			if v, mine := kv[strings.TrimSpace(k)]; mine {
				if !done[k] {
					out = append(out, fmt.Sprintf("export %s=%s", k, v))
					done[k] = true
				}
				continue
			}
		}
		if line != "" || len(out) > 0 {
			out = append(out, line)
		}
	}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !done[k] {
			out = append(out, fmt.Sprintf("export %s=%s", k, kv[k]))
		}
	}
	return strings.Join(out, "\n") + "\n"
}
