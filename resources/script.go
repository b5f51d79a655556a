package resources

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/rancherapi"
	"github.com/haplan/haplan/transport"
)

// scriptParams are the inputs a script was generated from. Kept next to the
// script on every node so a later plan can tell a manifest change apart from
// a missing copy.
type scriptParams struct {
	ClusterSize     int    `json:"cluster_size"`
	RegistrationURL string `json:"registration_url"`
	CertDigest      string `json:"cert_digest,omitempty"`
}

type scriptMeta struct {
	scriptParams
	ScriptDigest string    `json:"script_digest"`
	Generated    time.Time `json:"generated"`
}

// scriptFacts is what every node holds of the cluster's rancher-ha.sh.
type scriptFacts struct {
	Digest map[string]string       // node -> script digest; "" when absent
	Params map[string]scriptParams // node -> params recorded with the script
	// Unreadable are the nodes that did not answer, with why.
	Unreadable map[string]error
	order      []string
}

// settled returns an error when the nodes that answered cannot tell
// whether the cluster has a script: none of them holds one, and some did
// not answer. Generating one then could give the cluster a second
// encryption key, so the steps that decide on it are not planned (the
// error wraps the node's Unreachable error).
func (f *scriptFacts) settled() error {
	if f.generated() || len(f.Unreadable) == 0 {
		return nil
	}
	for _, n := range f.order {
		if err := f.Unreadable[n]; err != nil {
			return fmt.Errorf("cannot tell whether the cluster already has a rancher-ha.sh: %w", err)
		}
	}
	return nil
}

// unreadable lists the nodes that did not answer, in manifest order.
func (f *scriptFacts) unreadable() []string {
	var out []string
	for _, n := range f.order {
		if f.Unreadable[n] != nil {
			out = append(out, n)
		}
	}
	return out
}

func (f *scriptFacts) generated() bool {
	for _, d := range f.Digest {
		if d != "" {
			return true
		}
	}
	return false
}

// source is the node whose copy is authoritative: the first node, in
// manifest order, that has one.
func (f *scriptFacts) source() string {
	for _, n := range f.order {
		if f.Digest[n] != "" {
			return n
		}
	}
	return ""
}

// resize is the cluster size the cluster's script was generated for, when
// the manifest's node count differs from it and nothing else of the
// script's inputs changed but the certificate (the new script carries the
// manifest's): a resize, which haplan does with a new script
// from the running cluster and a restart of every node
// (docs/rancher-1.0-ha.md section 9). 0 when there is no resize.
func (e *Env) resize(f *scriptFacts) int {
	got, ok := f.Params[f.source()]
	want := e.wantParams()
	if !ok || got.ClusterSize == want.ClusterSize || got.RegistrationURL != want.RegistrationURL {
		return 0 // a new certificate alone: script.generate warns
	}
	return got.ClusterSize
}

func (e *Env) wantParams() scriptParams {
	p := scriptParams{ClusterSize: len(e.c.Nodes), RegistrationURL: e.c.Rancher.HostRegistrationURL}
	if e.cert != nil {
		p.CertDigest = digest([]byte(e.cert.cert + "\n" + e.cert.chain))
	}
	return p
}

// scripts is what every node holds of the script: shared by one plan's
// probes, read afresh by every re-check and Apply (perPlan).
func (e *Env) scripts(ctx context.Context) (*scriptFacts, error) {
	return sharedRead(ctx, &e.facts, "scripts", perPlan, e.readScripts, nil)
}

// readScripts reads every node's script digest and params, the nodes at
// once. A node that does not answer is recorded in Unreadable; only when
// none answers, or one fails otherwise, is it an error.
func (e *Env) readScripts(ctx context.Context) (*scriptFacts, error) {
	line := fmt.Sprintf("if [ -f %[1]s ]; then sha256sum %[1]s | cut -d' ' -f1; else echo -; fi; cat %[2]s 2>/dev/null || true", layout.Script, layout.ScriptMeta)
	outs := make([]string, len(e.c.Nodes))
	errs := make([]error, len(e.c.Nodes))
	var wg sync.WaitGroup
	for i, n := range e.c.Nodes {
		wg.Go(func() {
			r, err := e.runner(ctx, nodeTarget(n))
			if err == nil {
				outs[i], err = run(ctx, r, line, false)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	f := &scriptFacts{Digest: map[string]string{}, Params: map[string]scriptParams{}, Unreadable: map[string]error{}}
	for i, n := range e.c.Nodes {
		if errs[i] == nil {
			continue
		}
		if _, ok := engine.IsUnreachable(errs[i]); !ok {
			return nil, errs[i]
		}
		f.Unreadable[n.Name] = errs[i]
	}
	if len(f.Unreadable) == len(e.c.Nodes) {
		return nil, errs[0]
	}
	for i, n := range e.c.Nodes {
		f.order = append(f.order, n.Name)
		if errs[i] != nil {
			continue
		}
		first, rest, _ := strings.Cut(outs[i], "\n")
		if first != "-" && first != "" {
			f.Digest[n.Name] = "sha256:" + first
		}
		var m scriptMeta
		if rest != "" && json.Unmarshal([]byte(rest), &m) == nil && m.ClusterSize > 0 {
			f.Params[n.Name] = m.scriptParams // size 0: a copy whose source kept no record
		}
	}
	return f, nil
}

// scriptGenerate generates rancher-ha.sh once per cluster through the
// bootstrap server, enables HA, and keeps the same script on every node:
// each generation makes a new encryption key, so all nodes must run one and
// the same script.
type scriptGenerate struct {
	base
	boot manifests.Node
}

var _ engine.Step = (*scriptGenerate)(nil)

type scriptState struct {
	Digest map[string]string       `json:"digest"`
	Params map[string]scriptParams `json:"params"`
	// Unreadable are the nodes that did not answer.
	Unreadable []string `json:"unreadable,omitempty"`
}

func (s *scriptGenerate) Probe(ctx context.Context) (engine.State, error) {
	f, err := s.env.scripts(ctx)
	if err != nil {
		return nil, err
	}
	if err := f.settled(); err != nil {
		return nil, err
	}
	if from := s.env.resize(f); from != 0 && len(f.Unreadable) > 0 {
		return nil, &ResizeError{From: from, To: len(s.env.c.Nodes), Silent: f.unreadable()}
	}
	if got, ok := f.Params[f.source()]; ok {
		if want := s.env.wantParams(); got.RegistrationURL != want.RegistrationURL {
			return nil, &ScriptParamsError{Got: got, Want: want}
		}
	}
	return scriptState{Digest: f.Digest, Params: f.Params, Unreadable: f.unreadable()}, nil
}

// ScriptParamsError refuses a manifest whose registration URL or
// certificate differs from the running cluster's script: every host is
// bound to the URL it registered with, and the certificate is the
// cluster's identity, so neither changes under a running cluster (a plan
// that only warned would say "No changes" about a cluster that does not
// match its manifest).
type ScriptParamsError struct{ Got, Want scriptParams }

func (e *ScriptParamsError) Error() string {
	return fmt.Sprintf("the running cluster's rancher-ha.sh does not match the manifest: its registration URL is %s, the manifest says %s. haplan does not change it under a running cluster (every host is bound to the URL it registered with): set it back, or build a new cluster and move the hosts",
		e.Got.RegistrationURL, e.Want.RegistrationURL)
}

// ResizeError refuses a resize while nodes of the manifest do not answer:
// every node restarts with the new script, and one left on the old one
// would keep the old cluster size (and encryption key).
type ResizeError struct {
	From, To int
	Silent   []string
}

func (e *ResizeError) Error() string {
	return fmt.Sprintf("cannot resize the cluster from %d to %s while %s does not answer: a resize restarts every node with a new rancher-ha.sh; bring it back, or take it out of the manifest",
		e.From, nodeCount(e.To), strings.Join(e.Silent, ", "))
}

// nodeCount is "1 node", "3 nodes".
func nodeCount(n int) string {
	if n == 1 {
		return "1 node"
	}
	return strconv.Itoa(n) + " nodes"
}

func (s *scriptGenerate) Diff(cur engine.State) plans.Change {
	st := cur.(scriptState)
	want := s.env.wantParams()
	f := &scriptFacts{Digest: st.Digest, Params: st.Params}
	for _, n := range s.env.c.Nodes {
		f.order = append(f.order, n.Name)
	}
	src := f.source()
	if src == "" {
		return s.change(plans.Create, fmt.Sprintf("generate rancher-ha.sh through the bootstrap server and enable HA (cluster size %d)", want.ClusterSize),
			plans.Detail{Name: "clusterSize", New: strconv.Itoa(want.ClusterSize)},
			plans.Detail{Name: "hostRegistrationUrl", New: want.RegistrationURL},
			plans.Detail{Name: "certificate", New: certLabel(want)})
	}
	if from := s.env.resize(f); from != 0 {
		return s.change(plans.Replace, fmt.Sprintf("resize from %d to %s: a new rancher-ha.sh from createscript on the running cluster's API (same URL, the manifest's certificate, cluster size %d), written to every node; every node then restarts with it (ha.stop, ha.start): the Rancher server is down during this",
			from, nodeCount(want.ClusterSize), want.ClusterSize),
			plans.Detail{Name: "clusterSize", Old: strconv.Itoa(from), New: strconv.Itoa(want.ClusterSize)},
			plans.Detail{Name: "script", Old: short(st.Digest[src]), New: "(new)", Sensitive: true})
	}
	var missing []string
	for _, n := range f.order {
		if st.Digest[n] != st.Digest[src] && !slices.Contains(st.Unreadable, n) {
			missing = append(missing, n)
		}
	}
	var c plans.Change
	if len(missing) > 0 {
		c = s.change(plans.Update, fmt.Sprintf("copy the cluster's rancher-ha.sh from %s to %s (never regenerated: all nodes must run the same script)", src, strings.Join(missing, ", ")),
			plans.Detail{Name: "script", New: short(st.Digest[src]), Sensitive: true})
	} else {
		c = s.change(plans.NoOp, "every node holds the cluster's rancher-ha.sh")
	}
	if len(st.Unreadable) > 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("rancher-ha.sh not checked on %s: it did not answer (a later plan checks it)", strings.Join(st.Unreadable, ", ")))
	}
	if got, ok := st.Params[src]; ok && got.CertDigest != want.CertDigest {
		c.Warnings = append(c.Warnings, fmt.Sprintf("the cluster's rancher-ha.sh carries %s, the manifest now says %s: the nodes serve the old one until the script is made again, which haplan does only with a resize for now (a new script has a new encryption key: every node restarts with it)",
			certLabel(got), certLabel(want)))
	}
	return c
}

func certLabel(p scriptParams) string {
	if p.CertDigest == "" {
		return "self-signed"
	}
	return "own certificate " + short(p.CertDigest)
}

func (s *scriptGenerate) Apply(ctx context.Context, _ plans.Change) error {
	f, err := s.env.scripts(ctx)
	if err != nil {
		return err
	}
	if err := f.settled(); err != nil {
		return err
	}
	var script []byte
	var meta scriptMeta
	if from := s.env.resize(f); from != 0 {
		if len(f.Unreadable) > 0 {
			return &ResizeError{From: from, To: len(s.env.c.Nodes), Silent: f.unreadable()}
		}
		if script, meta, err = s.regenerate(ctx); err != nil {
			return err
		}
	} else if src := f.source(); src != "" {
		n, _ := s.env.c.Node(src)
		r, err := s.env.runner(ctx, nodeTarget(n))
		if err != nil {
			return err
		}
		var ok bool
		if script, ok, err = transport.ReadFile(ctx, r, layout.Script); err != nil {
			return fmt.Errorf("read rancher-ha.sh from %s: %w", src, err)
		} else if !ok {
			return fmt.Errorf("rancher-ha.sh vanished from %s while copying it", src)
		}
		// What the script was generated from goes with it; a source
		// without a record gives copies without one (never a record of
		// size 0, which a later plan would take for a manifest change).
		mb, ok, err := transport.ReadFile(ctx, r, layout.ScriptMeta)
		if err != nil {
			return fmt.Errorf("read %s from %s: %w", layout.ScriptMeta, src, err)
		}
		if ok {
			_ = json.Unmarshal(mb, &meta)
		}
		meta.ScriptDigest = digest(script)
	} else {
		if script, meta, err = s.generate(ctx); err != nil {
			return err
		}
	}
	mb, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	// One copy for every node's goroutine to read (appending per node
	// would write into the shared array while others read it).
	mb = append(mb, '\n')
	// Every node that lacks it gets the script, all at once; a node that
	// fails does not stop the others.
	errs := make([]error, len(s.env.c.Nodes))
	var wg sync.WaitGroup
	for i, n := range s.env.c.Nodes {
		if f.Digest[n.Name] == meta.ScriptDigest || f.Unreadable[n.Name] != nil {
			continue // a node that does not answer gets it on a later run
		}
		wg.Go(func() {
			engine.Progress(ctx, "writing rancher-ha.sh to %s", n.Name)
			r, err := s.env.runner(ctx, nodeTarget(n))
			if err == nil {
				err = transport.WriteFile(ctx, r, layout.Script, script, 0o700)
			}
			if err == nil {
				err = transport.WriteFile(ctx, r, layout.ScriptMeta, mb, 0o600)
			}
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", n.Name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// scriptInput is createscript's input for the manifest.
func (e *Env) scriptInput() rancherapi.HAConfigInput {
	want := e.wantParams()
	in := rancherapi.HAConfigInput{ClusterSize: want.ClusterSize, HostRegistrationURL: want.RegistrationURL}
	if cm := e.cert; cm != nil {
		in.Cert, in.CertChain, in.Key = cm.cert, cm.chain, cm.key.Reveal()
	}
	return in
}

// regenerate asks the running cluster for a script of the manifest's size:
// createscript is served by every cattle (HaConfigManager), and writes
// ha.cluster.size as it answers; HA stays enabled. The cluster keeps
// running on its old script until ha.stop and ha.start restart it.
func (s *scriptGenerate) regenerate(ctx context.Context) ([]byte, scriptMeta, error) {
	want := s.env.wantParams()
	api, err := s.env.clusterAPI(ctx)
	if err != nil {
		return nil, scriptMeta{}, fmt.Errorf("resize: %w", err)
	}
	engine.Progress(ctx, "createscript on the running cluster (cluster size %d)", want.ClusterSize)
	script, err := api.CreateScript(ctx, s.env.scriptInput())
	if err != nil {
		return nil, scriptMeta{}, fmt.Errorf("createscript on the running cluster: %w", err)
	}
	return script, scriptMeta{scriptParams: want, ScriptDigest: digest(script), Generated: time.Now().UTC()}, nil
}

// generate asks the bootstrap server for the script and enables HA.
func (s *scriptGenerate) generate(ctx context.Context) ([]byte, scriptMeta, error) {
	want := s.env.wantParams()
	api, err := s.env.apiOn(nodeTarget(s.boot), layout.BootstrapPort)
	if err != nil {
		return nil, scriptMeta{}, err
	}
	engine.Progress(ctx, "createscript on %s (cluster size %d)", s.boot.Name, want.ClusterSize)
	script, err := api.CreateScript(ctx, s.env.scriptInput())
	if err != nil {
		return nil, scriptMeta{}, fmt.Errorf("createscript on the bootstrap server: %w", err)
	}
	cfg, err := api.SetEnabled(ctx, true)
	if err != nil {
		return nil, scriptMeta{}, fmt.Errorf("enable HA on the bootstrap server: %w", err)
	}
	if !cfg.Enabled || cfg.ClusterSize != want.ClusterSize {
		return nil, scriptMeta{}, fmt.Errorf("bootstrap server reports enabled=%v clusterSize=%d after enabling HA for size %d", cfg.Enabled, cfg.ClusterSize, want.ClusterSize)
	}
	return script, scriptMeta{scriptParams: want, ScriptDigest: digest(script), Generated: time.Now().UTC()}, nil
}
