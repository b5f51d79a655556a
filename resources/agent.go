package resources

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/haplan/haplan/dockerapi"
	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/rancherapi"
	"github.com/haplan/haplan/transport"
)

// Hosts join the cluster (docs/rancher-1.0-ha.md section 8): every
// environment that hosts join gets an active registration token
// (agent.token[ENV]); every host with register on gets the cluster CA
// (cert.distribute) and is then registered with its environment's command
// (agent.register[HOST]), labelled io.haplan.host=<name> so that later
// plans find it.

// agentContainer is the long-running container the registration starts
// on a host (rancher v1.0.1 agent/run.sh, launch_agent); agentState the
// data container it keeps next to it.
const (
	agentContainer = "rancher-agent"
	agentState     = "rancher-agent-state"
	// agentIdentity is the key register.py registers with: the same key
	// makes the same Rancher host (run.sh print_token).
	agentIdentity = agentStateDir + "/.registration_token"
	// agentStateDir is the agent's identity on a machine.
	agentStateDir = "/var/lib/rancher/state"
)

// clusterAPI is a client for the running cluster's API: the first node,
// in manifest order, whose own API (through its SSH connection) answers
// /ping and reads the database (lists the environments).
func (e *Env) clusterAPI(ctx context.Context) (*rancherapi.Client, error) {
	_, api, err := onClusterAPI(ctx, e, func(ctx context.Context, api *rancherapi.Client) (struct{}, error) {
		_, err := api.Environments(ctx)
		return struct{}{}, err
	})
	return api, err
}

// onClusterAPI runs read against each node's API in manifest order until
// one answers it, and returns that answer and the node's client. /ping
// answers without the database, so one node that cannot reach it (its
// grant dropped, its connections cut) fails a read that another node
// answers: the cluster is down only when no node answers.
func onClusterAPI[T any](ctx context.Context, e *Env, read func(context.Context, *rancherapi.Client) (T, error)) (T, *rancherapi.Client, error) {
	var errs []error
	for _, n := range e.c.Nodes {
		api, err := e.apiOn(nodeTarget(n), layout.HAAPIPort)
		if err == nil {
			err = api.Ping(ctx)
		}
		if err == nil {
			var v T
			if v, err = read(ctx, api); err == nil {
				return v, api, nil
			}
		}
		if ctx.Err() != nil {
			break
		}
		errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
	}
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, nil, err
	}
	return zero, nil, clusterAPIError(errs)
}

// clusterAPIError says how every node's API failed. Every node reads the
// same database, so when each answered the same error it is said once:
// the API is up and refuses, which is not an API that does not answer.
func clusterAPIError(errs []error) error {
	var first *rancherapi.APIError
	same := len(errs) > 0
	answered := 0
	for _, err := range errs {
		var ae *rancherapi.APIError
		if !errors.As(err, &ae) {
			same = false
			continue
		}
		answered++
		if first == nil {
			first = ae
		}
		same = same && ae.Status == first.Status && ae.Code == first.Code && ae.Message == first.Message
	}
	switch {
	case same:
		return fmt.Errorf("every node's API answers the same error: %w", errs[0])
	case answered == 0:
		return fmt.Errorf("the cluster's API does not answer on any node: %w", errors.Join(errs...))
	}
	return fmt.Errorf("the cluster's API failed on every node: %w", errors.Join(errs...))
}

// placedHost is a Rancher host haplan registered, with its environment.
type placedHost struct {
	Env  rancherapi.Project
	Host rancherapi.Host
}

// hostFacts is what the cluster knows of the hosts haplan registered.
type hostFacts struct {
	// Started: the cluster has been started (a node holds its script), so
	// its API should answer. Before that nothing is registered.
	Started bool
	Envs    []rancherapi.Project
	// ByName are the Rancher hosts labelled io.haplan.host, by the label.
	ByName map[string][]placedHost
	// APIDown says why the cluster's API did not answer ("" when it did):
	// a cluster that was started but is down now (every node stopped for
	// an upgrade or a restore, or not formed yet) cannot say what is
	// registered, and the steps that ask plan for once it answers.
	APIDown string
}

// registered reads every environment's hosts once per plan (perPlan).
func (e *Env) registered(ctx context.Context) (*hostFacts, error) {
	return sharedRead(ctx, &e.facts, "registered-hosts", perPlan, e.readRegistered, nil)
}

func (e *Env) readRegistered(ctx context.Context) (*hostFacts, error) {
	f, err := e.scripts(ctx)
	if err != nil {
		return nil, err
	}
	if err := f.settled(); err != nil {
		return nil, err
	}
	hf := &hostFacts{Started: f.generated(), ByName: map[string][]placedHost{}}
	if !hf.Started {
		return hf, nil
	}
	// Whatever keeps the API from answering on every node (a server error
	// while the database is away, access control without rancher.apiKey)
	// is said in the plan's warnings; the steps plan for when it answers.
	read, _, err := onClusterAPI(ctx, e, readHosts)
	if err != nil {
		hf.APIDown = err.Error()
		return hf, nil
	}
	hf.Envs, hf.ByName = read.Envs, read.ByName
	return hf, nil
}

// readHosts reads every environment and the hosts labelled
// io.haplan.host in each, from one node's API.
func readHosts(ctx context.Context, api *rancherapi.Client) (*hostFacts, error) {
	envs, err := api.Environments(ctx)
	if err != nil {
		return nil, err
	}
	hf := &hostFacts{Envs: envs, ByName: map[string][]placedHost{}}
	for _, p := range envs {
		hosts, err := api.ProjectHosts(ctx, &p)
		if err != nil {
			return nil, fmt.Errorf("environment %q: %w", p.Name, err)
		}
		for _, h := range hosts {
			if name := h.Labels[manifests.HostLabel]; name != "" {
				hf.ByName[name] = append(hf.ByName[name], placedHost{Env: p, Host: h})
			}
		}
	}
	return hf, nil
}

// deferred marks c as decided when its turn comes (plans.Change.Deferred).
func deferred(c plans.Change) plans.Change {
	c.Deferred = true
	return c
}

// agentToken keeps one active registration token in an environment.
type agentToken struct {
	base
	envName string
	hosts   []string // the manifest's hosts that register in it
}

var _ engine.Step = (*agentToken)(nil)

type agentTokenState struct {
	Started bool `json:"started"`
	// APIDown: the cluster's API did not answer; Why says how.
	APIDown bool   `json:"api_down,omitempty"`
	Why     string `json:"-"`
	// Active is the id of an active token; "" when there is none. The
	// token itself is a credential and never part of a state.
	Active string `json:"active,omitempty"`
}

func (s *agentToken) Probe(ctx context.Context) (engine.State, error) {
	hf, err := s.env.registered(ctx)
	if err != nil || !hf.Started {
		return agentTokenState{}, err
	}
	if hf.APIDown != "" {
		return agentTokenState{Started: true, APIDown: true, Why: hf.APIDown}, nil
	}
	p, err := rancherapi.FindEnvironment(hf.Envs, s.envName)
	if err != nil {
		return nil, fmt.Errorf("%w; the manifest registers %s in it: no host was registered there", err, someNames(s.hosts, 5))
	}
	tok, _, err := onClusterAPI(ctx, s.env, func(ctx context.Context, api *rancherapi.Client) (*rancherapi.RegistrationToken, error) {
		return activeToken(ctx, api, p)
	})
	if err != nil {
		return nil, fmt.Errorf("%w; the manifest registers %s in environment %q: no host was registered there", err, someNames(s.hosts, 5), s.envName)
	}
	st := agentTokenState{Started: true}
	if tok != nil {
		st.Active = tok.ID
	}
	return st, nil
}

// someNames is the first max names, and how many more there are.
func someNames(names []string, max int) string {
	if len(names) <= max {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:max], ", "), len(names)-max)
}

// envRegistration is what a registration needs from the cluster: a node's
// API that answers, the environment, and its active token.
type envRegistration struct {
	api   *rancherapi.Client
	env   *rancherapi.Project
	token *rancherapi.RegistrationToken
}

// registration reads what registering a host in environment env needs.
// The registrations of one apply start together (fifty at once with
// --parallelism 50) and ask the same: they share one reading, for
// registrationFresh, instead of each making four API requests to the same
// node while the hosts pull the agent image (6 s of a 50-host apply). Only
// a reading that found an active token is shared: one that found none, or
// failed, is read again by each caller (agent.token may have just made the
// token, or the API had a moment). A token found seconds ago is still the
// environment's: tokens are not removed by haplan, and one removed meanwhile
// fails the registration with the agent's own error.
func (e *Env) registration(ctx context.Context, env string) (envRegistration, error) {
	read := func(ctx context.Context) (envRegistration, error) {
		api, err := e.clusterAPI(ctx)
		if err != nil {
			return envRegistration{}, err
		}
		p, err := api.Environment(ctx, env)
		if err != nil {
			return envRegistration{}, err
		}
		tok, err := activeToken(ctx, api, p)
		return envRegistration{api: api, env: p, token: tok}, err
	}
	if v, err := polledRead(ctx, &e.facts, "registration/"+env, registrationFresh, time.Time{}, read); err == nil && v.token != nil {
		return v, nil
	}
	v, err := read(ctx)
	if err == nil && v.token == nil {
		err = fmt.Errorf("environment %q has no active registration token (agent.token makes one)", env)
	}
	return v, err
}

// registrationFresh is how long registrations share a reading of their
// environment and its token.
const registrationFresh = 5 * time.Second

// activeToken is the environment's first active registration token, or
// nil.
func activeToken(ctx context.Context, api *rancherapi.Client, p *rancherapi.Project) (*rancherapi.RegistrationToken, error) {
	toks, err := api.RegistrationTokens(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("registration tokens of environment %q: %w", p.Name, err)
	}
	for i := range toks {
		if toks[i].State == "active" {
			return &toks[i], nil
		}
	}
	return nil, nil
}

func (s *agentToken) Diff(cur engine.State) plans.Change {
	st := cur.(agentTokenState)
	switch {
	case !st.Started:
		return deferred(s.change(plans.Create, fmt.Sprintf("create a registration token for environment %q once the cluster answers", s.envName)))
	case st.APIDown:
		c := deferred(s.change(plans.Create, fmt.Sprintf("make sure environment %q has a registration token once the cluster's API answers (it does not now)", s.envName)))
		c.Warnings = []string{st.Why}
		return c
	case st.Active == "":
		return s.change(plans.Create, fmt.Sprintf("environment %q has no active registration token", s.envName))
	}
	return s.change(plans.NoOp, fmt.Sprintf("environment %q has an active registration token", s.envName))
}

func (s *agentToken) Apply(ctx context.Context, _ plans.Change) error {
	api, err := s.env.clusterAPI(ctx)
	if err != nil {
		return err
	}
	p, err := api.Environment(ctx, s.envName)
	if err != nil {
		return err
	}
	if tok, err := activeToken(ctx, api, p); err != nil || tok != nil {
		return err
	}
	engine.Progress(ctx, "creating a registration token in environment %q", s.envName)
	wctx, cancel := context.WithTimeout(ctx, s.env.c.Rancher.Timeouts.Command)
	defer cancel()
	if _, err = api.CreateRegistrationToken(wctx, p, pollEvery); err != nil {
		return fmt.Errorf("%w; no host was registered in environment %q (the manifest registers %s in it)", err, s.envName, someNames(s.hosts, 5))
	}
	return nil
}

// agentRegister registers one host with its environment.
type agentRegister struct {
	base
	h manifests.Host
}

var _ engine.Step = (*agentRegister)(nil)

type agentRegisterState struct {
	Started bool `json:"started"`
	// APIDown: the cluster's API did not answer; Why says how.
	APIDown bool   `json:"api_down,omitempty"`
	Why     string `json:"-"`
	// Agent is the rancher-agent container's status on the machine.
	Agent string `json:"agent,omitempty"`
	// Identity: the agent's key in /var/lib/rancher/state is there.
	Identity bool `json:"identity,omitempty"`
	// Hosts are the Rancher hosts labelled with this host's name.
	Hosts []registeredHost `json:"hosts,omitempty"`
}

type registeredHost struct {
	Env        string            `json:"env"`
	ID         string            `json:"id"`
	State      string            `json:"state"`
	AgentState string            `json:"agent_state,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
}

func (s *agentRegister) Probe(ctx context.Context) (engine.State, error) {
	hf, err := s.env.registered(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.env.runner(ctx, hostTarget(s.h))
	if err != nil {
		return nil, err
	}
	st := agentRegisterState{Started: hf.Started, APIDown: hf.APIDown != "", Why: hf.APIDown}
	if st.Agent, _, err = containerStatus(ctx, r, agentContainer); err != nil {
		return nil, err
	}
	fi, err := transport.StatFile(ctx, r, agentIdentity)
	if err != nil {
		return nil, err
	}
	st.Identity = fi.Exists
	for _, ph := range hf.ByName[s.h.Name] {
		st.Hosts = append(st.Hosts, registeredHost{Env: ph.Env.Name, ID: ph.Host.ID, State: ph.Host.State,
			AgentState: ph.Host.AgentState, Labels: ph.Host.Labels})
	}
	sort.Slice(st.Hosts, func(i, j int) bool { return st.Hosts[i].ID < st.Hosts[j].ID })
	return st, nil
}

// wantLabels are the labels the host registers with: the manifest's and
// haplan's own.
func (s *agentRegister) wantLabels() map[string]string {
	out := map[string]string{manifests.HostLabel: s.h.Name}
	for k, v := range s.h.Labels {
		out[k] = v
	}
	return out
}

// hostLabels is CATTLE_HOST_LABELS: k1=v1&k2=v2, sorted.
func hostLabels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, "&")
}

// agentIP is CATTLE_AGENT_IP: the manifest's agentIP, else the host's
// address when it is an IP. Without it the agent takes the address the
// server saw its request come from, which behind the cluster's load
// balancer is the load balancer's (rancher v1.0.1 agent/register.py,
// DETECTED_CATTLE_AGENT_IP): every host would register as one address.
func (s *agentRegister) agentIP() string {
	if s.h.AgentIP != "" {
		return s.h.AgentIP
	}
	if net.ParseIP(s.h.Address) != nil {
		return s.h.Address
	}
	return ""
}

func (s *agentRegister) details() []plans.Detail {
	ds := []plans.Detail{{Name: "environment", New: s.h.Environment}, {Name: "labels", New: hostLabels(s.wantLabels())}}
	if ip := s.agentIP(); ip != "" {
		ds = append(ds, plans.Detail{Name: "agent IP", New: ip})
	}
	return ds
}

func (s *agentRegister) Diff(cur engine.State) plans.Change {
	st := cur.(agentRegisterState)
	env := s.h.Environment
	if !st.Started {
		return deferred(s.change(plans.Create, fmt.Sprintf("register %s in environment %q once the cluster answers", s.h.Name, env), s.details()...))
	}
	if st.APIDown {
		c := deferred(s.change(plans.Create, fmt.Sprintf("check %s's registration in environment %q once the cluster's API answers (it does not now; a registered host is left as it is)", s.h.Name, env), s.details()...))
		c.Warnings = []string{st.Why}
		return c
	}
	var here, elsewhere []registeredHost
	for _, h := range st.Hosts {
		if h.Env == env {
			here = append(here, h)
		} else {
			elsewhere = append(elsewhere, h)
		}
	}
	switch {
	case len(here) == 0 && len(elsewhere) > 0:
		return s.change(plans.Replace, fmt.Sprintf("registered in environment %q, the manifest says %q: remove it there and register it again", elsewhere[0].Env, env),
			plans.Detail{Name: "environment", Old: elsewhere[0].Env, New: env})
	case len(here) == 0:
		return s.change(plans.Create, fmt.Sprintf("%s is not registered in environment %q", s.h.Name, env), s.details()...)
	}
	h := pickHost(here)
	var c plans.Change
	healthy := rancherapi.Host{State: h.State, AgentState: h.AgentState}.Healthy()
	switch {
	case healthy && st.Agent == "running" && !maps.Equal(h.Labels, s.wantLabels()):
		c = s.change(plans.Update, fmt.Sprintf("%s's labels in Rancher differ from the manifest: set them through the API (the same host, its agent untouched)", s.h.Name),
			plans.Detail{Name: "labels", Old: hostLabels(h.Labels), New: hostLabels(s.wantLabels())})
	case healthy && st.Agent == "running":
		c = s.change(plans.NoOp, fmt.Sprintf("%s is an active host of environment %q", s.h.Name, env))
	default:
		why := fmt.Sprintf("rancher-agent is %s on %s", st.Agent, s.h.Name)
		if st.Agent == "running" {
			why = fmt.Sprintf("the Rancher host is %s (agent %s)", h.State, cmpOr(h.AgentState, "connected"))
		}
		c = s.change(plans.Update, why+": start the agent again, as the same Rancher host ("+agentIdentity+" is kept)",
			plans.Detail{Name: "rancher-agent", Old: st.Agent, New: "running"})
	}
	if len(here) > 1 || len(elsewhere) > 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%d Rancher hosts carry %s=%s; haplan keeps %s (remove the others in the UI)", len(st.Hosts), manifests.HostLabel, s.h.Name, h.ID))
	}
	return c
}

// pickHost is the record haplan keeps among several: a healthy one first,
// then the lowest id.
func pickHost(hs []registeredHost) registeredHost {
	return slices.MinFunc(hs, func(a, b registeredHost) int {
		ah := rancherapi.Host{State: a.State, AgentState: a.AgentState}.Healthy()
		bh := rancherapi.Host{State: b.State, AgentState: b.AgentState}.Healthy()
		if ah != bh {
			if ah {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// Apply registers the host: the environment's token, a check that the CA
// on the machine is the one the command trusts, the agent image, then the
// registration container, started through the machine's Docker Engine API
// (the registration URL carries the token, which must not show in the
// machine's process list); then it waits for the host to be active.
func (s *agentRegister) Apply(ctx context.Context, c plans.Change) error {
	reg, err := s.env.registration(ctx, s.h.Environment)
	if err != nil {
		return err
	}
	api, p, tok := reg.api, reg.env, reg.token
	// A healthy host whose labels differ only needs them set. A host
	// planned as not registered has no labels to set, unless the plan
	// could not tell (deferred: the API did not answer).
	if c.Action != plans.Create || c.Deferred {
		if done, err := s.syncLabels(ctx, api, true); done || err != nil {
			return err
		}
	}
	r, err := s.env.runner(ctx, hostTarget(s.h))
	if err != nil {
		return err
	}
	if c.Action == plans.Replace {
		if err := s.removeElsewhere(ctx, api, r); err != nil {
			return err
		}
	}
	if err := s.checkToken(ctx, r, tok); err != nil {
		return err
	}
	if err := pullIfMissing(ctx, r, tok.Image, s.env.c.Rancher.Timeouts.Pull); err != nil {
		return err
	}
	id, err := s.start(ctx, r, tok)
	if err != nil {
		return err
	}
	err = s.waitActive(ctx, api, p, r, id, tok)
	// The registration container has done its work (or failed, and its
	// logs are in the error): its environment holds the token.
	if id != "" {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = run(rctx, r, "docker rm -f "+transport.Quote(id)+" >/dev/null 2>&1 || true", true)
	}
	if err != nil {
		return err
	}
	// CATTLE_HOST_LABELS counts only when a host is created: a host that
	// came back as itself keeps its old labels until they are set.
	_, err = s.syncLabels(ctx, api, false)
	return err
}

// syncLabels sets the labels of the host's Rancher record when they differ
// from the manifest's. With onlyHealthy it does so only for a host that
// needs nothing else (active, agent connected, rancher-agent running), and
// done says it did everything the host needed.
func (s *agentRegister) syncLabels(ctx context.Context, api *rancherapi.Client, onlyHealthy bool) (done bool, err error) {
	cur, err := s.Probe(ctx)
	if err != nil {
		return false, err
	}
	st := cur.(agentRegisterState)
	var here []registeredHost
	for _, h := range st.Hosts {
		if h.Env == s.h.Environment {
			here = append(here, h)
		}
	}
	if len(here) == 0 {
		return false, nil
	}
	rh := pickHost(here)
	healthy := rancherapi.Host{State: rh.State, AgentState: rh.AgentState}.Healthy() && st.Agent == "running"
	if onlyHealthy && !healthy {
		return false, nil
	}
	want := s.wantLabels()
	if maps.Equal(rh.Labels, want) {
		return healthy, nil
	}
	hf, err := s.env.readRegistered(ctx)
	if err != nil {
		return false, err
	}
	for _, ph := range hf.ByName[s.h.Name] {
		if ph.Host.ID != rh.ID {
			continue
		}
		engine.Progress(ctx, "setting %s's labels to %s", s.h.Name, hostLabels(want))
		if _, err := api.SetHostLabels(ctx, ph.Host, want); err != nil {
			return false, fmt.Errorf("set %s's labels: %w", s.h.Name, err)
		}
		return healthy, nil
	}
	return false, fmt.Errorf("%s: Rancher host %s vanished while its labels were set", s.h.Name, rh.ID)
}

// imageRefRE is the shape of a Docker image reference with a tag or
// digest: what is safe to hand to docker.
var imageRefRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._/:-]*(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}|@sha256:[0-9a-f]{64})$`)

// checkToken refuses a registration the host could not complete or should
// not do: a URL that is not the manifest's, an image that is not one, a CA
// on the machine that is not the one the command pins.
func (s *agentRegister) checkToken(ctx context.Context, r transport.Runner, tok *rancherapi.RegistrationToken) error {
	want := strings.TrimRight(s.env.c.Rancher.HostRegistrationURL, "/") + "/v1/scripts/"
	if !strings.HasPrefix(tok.RegistrationURL, want) || strings.ContainsAny(tok.RegistrationURL[len(want):], "/?#\"' \n") {
		return fmt.Errorf("the registration URL of environment %q does not start with rancher.hostRegistrationUrl %s/v1/scripts/: the server's api.host setting differs; set it to the registration URL", s.h.Environment, strings.TrimRight(s.env.c.Rancher.HostRegistrationURL, "/"))
	}
	if !imageRefRE.MatchString(tok.Image) {
		return fmt.Errorf("the agent image of environment %q's registration command, %q, is not an image reference", s.h.Environment, tok.Image)
	}
	if tok.CAFingerprint == "" {
		engine.Progress(ctx, "the registration command pins no CA (no CA_FINGERPRINT); the agent trusts %s", layout.CA)
		return nil
	}
	b, ok, err := transport.ReadFile(ctx, r, layout.CA)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s: %s is missing (cert.distribute puts it there); nothing was started", s.h.Name, layout.CA)
	}
	got, err := caFingerprint(b)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", s.h.Name, layout.CA, err)
	}
	if got != tok.CAFingerprint {
		return fmt.Errorf("%s: the CA on the host (%s, SHA-1 %s) is not the one environment %q's registration command pins (CA_FINGERPRINT %s): the agent would refuse the cluster; nothing was started (plan again: cert.distribute replaces a stale CA)",
			s.h.Name, layout.CA, got, s.h.Environment, tok.CAFingerprint)
	}
	return nil
}

// caFingerprint is the SHA-1 fingerprint of a PEM file's first
// certificate, the one cattle pins.
func caFingerprint(pemBytes []byte) (string, error) {
	blk, _ := pem.Decode(pemBytes)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return "", errors.New("not a PEM certificate")
	}
	return sha1Fingerprint(blk.Bytes), nil
}

// pullIfMissing pulls image on the machine unless it is there.
func pullIfMissing(ctx context.Context, r transport.Runner, image string, limit time.Duration) error {
	id, err := dockerapi.New(r).ImageID(ctx, image)
	if err != nil || id != "" {
		return err
	}
	engine.Progress(ctx, "pulling %s on %s", image, r.Host())
	_, err = runWithin(ctx, r, "docker pull "+transport.Quote(image)+" >/dev/null", true, limit)
	return err
}

// start runs the registration container and returns its id. The spec is
// the token's command (cattle's docker.register.command) with haplan's
// settings added, in run.sh's register mode: the registration URL, which
// holds the token, goes in RANCHER_URL (run.sh setup_cattle_url) rather
// than as the container's argument, so it is on no command line of the
// machine (a process's environment is readable by its owner only, its
// command line by everyone). The CA is already on the host, checked
// against the token's fingerprint (checkToken), which is what register
// mode trusts. Through the Engine API no docker client runs at all;
// without it (no socket forwarding) the docker CLI runs it, the URL read
// from stdin into its environment.
func (s *agentRegister) start(ctx context.Context, r transport.Runner, tok *rancherapi.RegistrationToken) (string, error) {
	env := []string{"CATTLE_HOST_LABELS=" + hostLabels(s.wantLabels())}
	if tok.CAFingerprint != "" {
		env = append(env, "CA_FINGERPRINT="+tok.CAFingerprint)
	}
	if ip := s.agentIP(); ip != "" {
		env = append(env, "CATTLE_AGENT_IP="+ip)
	}
	binds := []string{"/var/run/docker.sock:/var/run/docker.sock", "/var/lib/rancher:/var/lib/rancher"}
	engine.Progress(ctx, "starting the registration of %s in environment %q", s.h.Name, s.h.Environment)
	spec := dockerapi.RunSpec{Image: tok.Image, Cmd: []string{"register"}, Env: append(env, "RANCHER_URL="+tok.RegistrationURL), Binds: binds, Privileged: true}
	id, err := dockerapi.New(r).Run(ctx, spec)
	if !errors.Is(err, dockerapi.ErrNoAPIForRun) {
		return id, err
	}
	var b strings.Builder
	b.WriteString(`IFS= read -r RANCHER_URL && export RANCHER_URL && exec docker run -d --privileged -e RANCHER_URL`)
	for _, e := range env {
		b.WriteString(" -e " + transport.Quote(e))
	}
	for _, v := range binds {
		b.WriteString(" -v " + transport.Quote(v))
	}
	b.WriteString(" " + transport.Quote(tok.Image) + " register")
	res, err := r.Run(ctx, transport.Cmd{Line: b.String(), Stdin: []byte(tok.RegistrationURL + "\n"), Mutates: true})
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(res.Stdout)), nil
}

// waitActive waits until the host is an active, connected host of the
// environment with rancher-agent running on the machine. A registration
// container that fails (a wrong CA, a bad token, a server it cannot
// reach) fails the step at once with its last log lines.
func (s *agentRegister) waitActive(ctx context.Context, api *rancherapi.Client, p *rancherapi.Project, r transport.Runner, regID string, tok *rancherapi.RegistrationToken) error {
	limit := s.env.c.Rancher.Timeouts.Register
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	start := time.Now()
	var reported time.Time
	last := "not registered yet"
	for {
		ok, why, err := s.looksActive(wctx, api, p, r, regID, tok, start)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		last = why
		if time.Since(reported) >= reportEvery {
			reported = time.Now()
			engine.Progress(ctx, "waiting for %s: %s (%s of %s)", s.h.Name, last, time.Since(start).Round(time.Second), limit)
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%s did not become an active host of environment %q within %s (rancher.timeouts.register); last seen: %s; on the host, see docker logs %s", s.h.Name, p.Name, limit, last, agentContainer)
		case <-time.After(4 * pollEvery):
		}
	}
}

// looksActive is one look: done, or why not; an error when the
// registration container failed.
func (s *agentRegister) looksActive(ctx context.Context, api *rancherapi.Client, p *rancherapi.Project, r transport.Runner, regID string, tok *rancherapi.RegistrationToken, since time.Time) (bool, string, error) {
	if regID != "" {
		c, err := dockerapi.New(r).Inspect(ctx, regID)
		// An exit code of 0 needs nothing more from the machine (under the
		// load of fifty registrations, the CLI's inspect and logs took
		// 1.7 s a host); another, or none known, is read with the logs.
		if err == nil && c.Status == "exited" && c.ExitCode != 0 {
			if code, logs := exitOf(ctx, r, regID); code != "0" {
				logs = strings.ReplaceAll(logs, tok.Token, "(registration token)")
				return false, "", fmt.Errorf("%s: the registration container exited with %s:\n%s", s.h.Name, code, logs)
			}
		}
		// Until it has exited it may still be replacing rancher-agent
		// (run.sh launch_agent removes the old one, then starts the new
		// one): a host that was active and an old agent still running
		// are not the end of the registration, and removing the
		// container then would leave the host without an agent.
		if err == nil && c.Status != "exited" && c.Status != "absent" {
			return false, "the registration container is still running", nil
		}
	}
	// The environment's hosts are one reading per round for every
	// registration waiting on them; the machine is asked only once its
	// host looks healthy.
	hosts, err := polledRead(ctx, &s.env.facts, "hosts-of-"+p.ID, 4*pollEvery, since, func(ctx context.Context) ([]rancherapi.Host, error) {
		return api.ProjectHosts(ctx, p)
	})
	if err != nil {
		return false, err.Error(), nil
	}
	for _, h := range hosts {
		if h.Labels[manifests.HostLabel] != s.h.Name {
			continue
		}
		if !h.Healthy() {
			return false, fmt.Sprintf("Rancher host %s is %s (agent %s)", h.ID, h.State, cmpOr(h.AgentState, "connected")), nil
		}
		status, _, err := containerStatus(ctx, r, agentContainer)
		if err != nil {
			return false, err.Error(), nil
		}
		if status == "running" {
			return true, "", nil
		}
		return false, fmt.Sprintf("Rancher host %s is active, rancher-agent %s", h.ID, status), nil
	}
	return false, fmt.Sprintf("no host labelled %s=%s in environment %q yet", manifests.HostLabel, s.h.Name, p.Name), nil
}

// exitOf is a finished container's exit code and last log lines.
func exitOf(ctx context.Context, r transport.Runner, id string) (code, logs string) {
	code, err := run(ctx, r, "docker inspect -f '{{.State.ExitCode}}' "+transport.Quote(id), false)
	if err != nil {
		return "unknown", err.Error()
	}
	logs, _ = run(ctx, r, "docker logs --tail 20 "+transport.Quote(id)+" 2>&1", false)
	return code, logs
}

// removeElsewhere removes the Rancher hosts of this machine that are in
// another environment than the manifest's, and the agent's identity on
// the machine, so that it registers anew.
func (s *agentRegister) removeElsewhere(ctx context.Context, api *rancherapi.Client, r transport.Runner) error {
	envs, err := api.Environments(ctx)
	if err != nil {
		return err
	}
	for i := range envs {
		if envs[i].Name == s.h.Environment {
			continue
		}
		hosts, err := api.ProjectHosts(ctx, &envs[i])
		if err != nil {
			return err
		}
		for _, h := range hosts {
			if h.Labels[manifests.HostLabel] != s.h.Name {
				continue
			}
			engine.Progress(ctx, "removing Rancher host %s of %s from environment %q", h.ID, s.h.Name, envs[i].Name)
			if err := removeHost(ctx, api, h, s.env.c.Rancher.Timeouts.Command); err != nil {
				return err
			}
		}
	}
	return cleanAgent(ctx, r)
}

// removeHost deactivates a Rancher host, waits until it is inactive, and
// deletes it.
func removeHost(ctx context.Context, api *rancherapi.Client, h rancherapi.Host, limit time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if h.State == "active" || h.State == "activating" {
		if err := api.DeactivateHost(wctx, h); err != nil {
			return err
		}
	}
	for {
		cur, err := api.HostByID(wctx, h)
		if err != nil {
			return err
		}
		switch cur.State {
		case "inactive":
			return api.DeleteHost(wctx, *cur)
		case "removed", "purging", "purged":
			return nil
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("host %s (%s) is still %s in Rancher after %s", h.ID, h.Hostname, cur.State, limit)
		case <-time.After(pollEvery):
		}
	}
}

// cleanAgent removes the agent's containers and identity from a machine
// (the CA stays).
func cleanAgent(ctx context.Context, r transport.Runner) error {
	_, err := run(ctx, r, fmt.Sprintf("docker rm -f %s %s >/dev/null 2>&1; rm -rf %s", agentContainer, agentState, agentStateDir), true)
	return err
}

// stopAgent removes the agent's containers and keeps its identity: the
// same machine registering again with it (after a restore of the
// database) is the same Rancher host.
func stopAgent(ctx context.Context, r transport.Runner) error {
	_, err := run(ctx, r, fmt.Sprintf("docker rm -f %s %s >/dev/null 2>&1; true", agentContainer, agentState), true)
	return err
}
