package resources

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/transport"
)

// agentPrune removes the hosts haplan registered (labelled
// io.haplan.host) that the manifest no longer registers: from Rancher
// (deactivate, then delete), then, when their machine answers over SSH
// with the manifest's ssh defaults, the agent's containers and identity
// on it (the CA stays). A machine that does not answer is removed from
// Rancher only, and the plan says so. A host haplan did not register
// carries no such label and is never touched.
type agentPrune struct {
	base
}

var _ engine.Step = (*agentPrune)(nil)

type pruneState struct {
	Started bool        `json:"started"`
	APIDown bool        `json:"api_down,omitempty"`
	Why     string      `json:"-"`
	Hosts   []prunedOne `json:"hosts,omitempty"`
}

type prunedOne struct {
	Name    string `json:"name"`
	Env     string `json:"env"`
	ID      string `json:"id"`
	Address string `json:"address,omitempty"`
	// Reachable: the machine answered over SSH when probed.
	Reachable bool `json:"reachable"`
}

// keep are the manifest's hosts that are registered.
func (s *agentPrune) keep() map[string]bool {
	out := map[string]bool{}
	for _, h := range s.env.c.Hosts {
		if h.Register {
			out[h.Name] = true
		}
	}
	return out
}

// leftTarget is how a host that left the manifest is reached: at the
// address Rancher knows it by, with the manifest's ssh defaults.
func (s *agentPrune) leftTarget(name, address string) target {
	return target{name: name, address: address, ssh: s.env.c.SSH}
}

func (s *agentPrune) Probe(ctx context.Context) (engine.State, error) {
	hf, err := s.env.registered(ctx)
	if err != nil || !hf.Started {
		return pruneState{}, err
	}
	st := pruneState{Started: true}
	if hf.APIDown != "" {
		st.APIDown, st.Why = true, hf.APIDown
		return st, nil
	}
	keep := s.keep()
	for name, phs := range hf.ByName {
		for _, ph := range phs {
			if keep[name] {
				continue // in another environment too: agent.register moves it
			}
			one := prunedOne{Name: name, Env: ph.Env.Name, ID: ph.Host.ID}
			if len(ph.Host.Addresses) > 0 {
				one.Address = ph.Host.Addresses[0]
				if s.env.isManifestMachine(one.Address) {
					// Renamed: the record goes, the machine's agent stays.
				} else if r, err := s.env.runner(ctx, s.leftTarget(name, one.Address)); err == nil {
					_, err = transport.StatFile(ctx, r, agentIdentity)
					one.Reachable = err == nil
				}
			}
			st.Hosts = append(st.Hosts, one)
		}
	}
	sort.Slice(st.Hosts, func(i, j int) bool { return st.Hosts[i].ID < st.Hosts[j].ID })
	return st, nil
}

func (s *agentPrune) Diff(cur engine.State) plans.Change {
	st := cur.(pruneState)
	if st.APIDown {
		c := s.change(plans.NoOp, "not checked: the cluster's API does not answer")
		c.Warnings = []string{"the hosts haplan registered cannot be listed (" + st.Why + "): a plan once the cluster's API answers removes those that left the manifest"}
		return c
	}
	if len(st.Hosts) == 0 {
		return s.change(plans.NoOp, "no host haplan registered has left the manifest")
	}
	var names, warnings []string
	var ds []plans.Detail
	for _, h := range st.Hosts {
		names = append(names, h.Name)
		gone := "removed, agent cleaned on " + h.Address
		if !h.Reachable {
			gone = "removed from Rancher only"
			warnings = append(warnings, fmt.Sprintf("%s's machine (%s) did not answer over SSH: it is removed from Rancher only, and its agent stays on the machine", h.Name, cmpOr(h.Address, "no address in Rancher")))
		}
		ds = append(ds, plans.Detail{Name: h.Name, Old: fmt.Sprintf("Rancher host %s in %s", h.ID, h.Env), New: gone})
	}
	c := s.change(plans.Delete, fmt.Sprintf("%s left the manifest: remove from Rancher the hosts haplan registered for them (%s)",
		strings.Join(names, ", "), manifests.HostLabel), ds...)
	c.Warnings = warnings
	return c
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (s *agentPrune) Apply(ctx context.Context, _ plans.Change) error {
	api, err := s.env.clusterAPI(ctx)
	if err != nil {
		return err
	}
	hf, err := s.env.readRegistered(ctx)
	if err != nil {
		return err
	}
	keep := s.keep()
	var errs []string
	for name, phs := range hf.ByName {
		if keep[name] {
			continue
		}
		for _, ph := range phs {
			engine.Progress(ctx, "removing %s (Rancher host %s) from environment %q", name, ph.Host.ID, ph.Env.Name)
			if err := removeHost(ctx, api, ph.Host, s.env.c.Rancher.Timeouts.Command); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", name, err))
				continue
			}
			if len(ph.Host.Addresses) == 0 || s.env.isManifestMachine(ph.Host.Addresses[0]) {
				continue // a machine of the manifest (renamed): its agent is agent.register's
			}
			r, err := s.env.runner(ctx, s.leftTarget(name, ph.Host.Addresses[0]))
			if err != nil {
				engine.Progress(ctx, "%s removed from Rancher; its machine %s does not answer over SSH, the agent there is left (%v)", name, ph.Host.Addresses[0], err)
				continue
			}
			if err := cleanAgent(ctx, r); err != nil {
				errs = append(errs, fmt.Sprintf("%s: clean the agent on %s: %v", name, ph.Host.Addresses[0], err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}
