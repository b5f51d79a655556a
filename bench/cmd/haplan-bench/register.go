package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/haplan/haplan/lab"
	"github.com/haplan/haplan/layout"
)

// regRun is one registration of N of the lab's agent hosts with a cluster
// that has none, timed from the start of the command or script to every
// host active with its agent connected in the Default environment, as the
// API tells it through the load balancer.
type regRun struct {
	Tool string  `json:"tool"` // haplan, or manual (the documented way, scripted)
	N    int     `json:"n"`
	Wall float64 `json:"wall_seconds"`
}

// registrations measures haplan's and the manual way's registration of
// each size in c.regSizes, alternating, each from the lab's cluster
// installed afresh with no host (so every host pulls the agent image in
// both).
func (c *config) registrations(ctx context.Context) (err error) {
	had := len(c.lab.ByRole(lab.RoleAgent))
	grow := slices.Max(c.regSizes) > had
	// Afterwards the lab is as it was: its agent hosts, and its cluster
	// installed from its manifest.
	defer func() {
		ctx := context.WithoutCancel(ctx)
		if grow {
			if rerr := c.labHosts(ctx, had); err == nil {
				err = rerr
			}
		}
		if rerr := c.installThree(ctx); err == nil {
			err = rerr
		}
	}()
	if grow {
		// The lab grows to the largest size for the runs (agent hosts
		// with their own dockerd, as h1..h3) and back afterwards.
		if err := c.labHosts(ctx, slices.Max(c.regSizes)); err != nil {
			return err
		}
	}
	agents := c.lab.ByRole(lab.RoleAgent)
	for _, n := range c.regSizes {
		for rep := range max(c.regReps, 1) {
			tools := []string{"haplan", "manual"}
			if rep%2 == 1 {
				slices.Reverse(tools) // neither always runs first
			}
			for _, tool := range tools {
				r, err := c.measureRegistration(ctx, tool, agents[:n])
				if err != nil {
					return fmt.Errorf("%s registration of %d hosts: %w", tool, n, err)
				}
				c.regs = append(c.regs, r)
				fmt.Printf("registration of %d hosts, %s: %.1f s\n", n, tool, r.Wall)
			}
		}
	}
	return nil
}

// labHosts brings the lab to n agent hosts (haplab up), the rest of it as
// it is, and reloads it.
func (c *config) labHosts(ctx context.Context, n int) error {
	fmt.Printf("the lab: %d agent hosts (haplab up)\n", n)
	start := time.Now()
	l, err := lab.Up(ctx, lab.Options{Nodes: len(c.lab.ByRole(lab.RoleNode)), Spares: len(c.lab.ByRole(lab.RoleSpare)), Hosts: n, Dir: c.lab.Dir})
	if err != nil {
		return fmt.Errorf("the lab with %d agent hosts: %w", n, err)
	}
	c.lab = l
	fmt.Printf("the lab: %d agent hosts after %.0f s\n", n, time.Since(start).Seconds())
	return nil
}

// medianReg is the (lower) median run of a tool at size n.
func medianReg(rs []regRun, tool string, n int) (regRun, bool) {
	return lowerMedian(rs, func(r regRun) bool { return r.Tool == tool && r.N == n }, func(r regRun) float64 { return r.Wall })
}

// regSizesRun are the sizes of rs, in the order first run.
func regSizesRun(rs []regRun) []int {
	var ns []int
	for _, r := range rs {
		if !slices.Contains(ns, r.N) {
			ns = append(ns, r.N)
		}
	}
	return ns
}

// regRatio compares the medians at size n: the manual way over haplan.
func regRatio(rs []regRun, n int) string {
	h, ok1 := medianReg(rs, "haplan", n)
	m, ok2 := medianReg(rs, "manual", n)
	if !ok1 || !ok2 || h.Wall <= 0 {
		return fmt.Sprintf("registration of %d hosts: no pair of runs to compare", n)
	}
	return fmt.Sprintf("registration of %d hosts (medians): haplan %.1f s, manual %.1f s: manual / haplan = %.1f×", n, h.Wall, m.Wall, m.Wall/h.Wall)
}

func (c *config) measureRegistration(ctx context.Context, tool string, hosts []lab.Host) (regRun, error) {
	r := regRun{Tool: tool, N: len(hosts)}
	src, err := os.ReadFile(c.lab.Manifest)
	if err != nil {
		return r, err
	}
	none, err := lab.WithHosts(string(src), nil)
	if err != nil {
		return r, err
	}
	some, err := lab.WithHosts(string(src), hosts)
	if err != nil {
		return r, err
	}
	dir := filepath.Dir(c.lab.Manifest)
	bare, with := filepath.Join(dir, "cluster-bench-nohosts.yaml"), filepath.Join(dir, fmt.Sprintf("cluster-bench-hosts-%d.yaml", len(hosts)))
	for p, text := range map[string]string{bare: none, with: some} {
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			return r, err
		}
		defer os.Remove(p)
	}
	if err := c.lab.ResetCluster(ctx, "cattle"); err != nil {
		return r, err
	}
	if _, err := command(ctx, nil, c.bin, "apply", "--auto-approve", "-f", bare); err != nil {
		return r, fmt.Errorf("install the lab's cluster without hosts: %w", err)
	}
	client, err := c.lbClient(ctx, 30*time.Second)
	if err != nil {
		return r, err
	}
	env, err := defaultEnvironment(ctx, client, "https://"+c.lab.IP("lb"))
	if err != nil {
		return r, err
	}
	start := time.Now()
	switch tool {
	case "haplan":
		// At the manual way's concurrency, as the fleet bench runs both.
		if _, err := command(ctx, nil, c.bin, "apply", "--auto-approve", "--parallelism", strconv.Itoa(c.parallelism), "-f", with); err != nil {
			return r, err
		}
		// haplan returns once it saw every host active; the same
		// judgement as the manual way's, from outside, must agree at
		// once (a wait here would hide an early return in haplan's time).
		if err := c.waitHostsActive(ctx, client, env, hosts, time.Second, 0); err != nil {
			return r, fmt.Errorf("after haplan's apply: %w", err)
		}
	case "manual":
		if err := c.manualRegister(ctx, client, env, hosts); err != nil {
			return r, err
		}
	}
	r.Wall = time.Since(start).Seconds()
	return r, c.checkAgents(ctx, hosts)
}

// environment is a Rancher environment (project) as the API lists it.
type environment struct {
	base string // https://<lb>
	ID   string `json:"id"`
	Name string `json:"name"`
}

// defaultEnvironment finds the "Default" environment through the API.
func defaultEnvironment(ctx context.Context, client *http.Client, base string) (environment, error) {
	b, err := httpDo(ctx, client, http.MethodGet, base+"/v1/projects", nil)
	if err != nil {
		return environment{}, err
	}
	var list struct {
		Data []environment `json:"data"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return environment{}, fmt.Errorf("GET /v1/projects: %w", err)
	}
	for _, e := range list.Data {
		if e.Name == "Default" {
			e.base = base
			return e, nil
		}
	}
	return environment{}, errors.New(`GET /v1/projects: no "Default" environment`)
}

// manualRegister is the documented way (rancher-1.0-ha.md section 8) as an
// operator's script does it: a registration token created in the
// environment and polled until active, then on every host at once over
// OpenSSH (-parallelism at a time, like xargs -P) the CA copied (mode 400) and
// the token's command run, with CATTLE_AGENT_IP set to the host's address,
// then the API polled every second until every host is active.
func (c *config) manualRegister(ctx context.Context, client *http.Client, env environment, hosts []lab.Host) error {
	b, err := httpDo(ctx, client, http.MethodPost, env.base+"/v1/registrationtokens?projectId="+url.QueryEscape(env.ID), []byte("{}"))
	if err != nil {
		return err
	}
	var tok struct {
		State   string            `json:"state"`
		Command string            `json:"command"`
		Links   map[string]string `json:"links"`
	}
	if err := json.Unmarshal(b, &tok); err != nil || tok.Links["self"] == "" {
		return fmt.Errorf("POST /v1/registrationtokens: no token in %.200q (%v)", b, err)
	}
	for deadline := time.Now().Add(time.Minute); tok.State != "active" || tok.Command == ""; {
		if time.Now().After(deadline) {
			return fmt.Errorf("the registration token is %q a minute after it was made", tok.State)
		}
		time.Sleep(time.Second)
		if b, err = httpDo(ctx, client, http.MethodGet, tok.Links["self"], nil); err != nil {
			return err
		}
		if err := json.Unmarshal(b, &tok); err != nil {
			return fmt.Errorf("GET the registration token: %w", err)
		}
	}
	ca, err := c.clusterCA(ctx)
	if err != nil {
		return err
	}
	run := strings.TrimPrefix(strings.TrimSpace(tok.Command), "sudo ")
	if !strings.HasPrefix(run, "docker run ") {
		return fmt.Errorf("the token's command %q does not start with docker run", tok.Command)
	}
	errs := make([]error, len(hosts))
	sem := make(chan struct{}, max(c.parallelism, 1))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := c.ssh(ctx, ca, h.Name, "mkdir -p "+filepath.Dir(layout.CA)+" && cat > "+layout.CA+" && chmod 400 "+layout.CA); err != nil {
				errs[i] = fmt.Errorf("%s: copy the CA: %w", h.Name, err)
				return
			}
			cmd := "docker run -e CATTLE_AGENT_IP=" + h.IP + " " + strings.TrimPrefix(run, "docker run ")
			if _, err := c.ssh(ctx, nil, h.Name, cmd+" >/dev/null"); err != nil {
				errs[i] = fmt.Errorf("%s: the registration command: %w", h.Name, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return c.waitHostsActive(ctx, client, env, hosts, time.Second, 5*time.Minute)
}

// waitHostsActive polls the environment's hosts until every one of hosts
// is there (by its agent IP) with state and agentState active.
func (c *config) waitHostsActive(ctx context.Context, client *http.Client, env environment, hosts []lab.Host, every, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		active, last, err := activeHosts(ctx, client, env)
		if err == nil && !slices.ContainsFunc(hosts, func(h lab.Host) bool { return !active[h.IP] }) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d hosts active after %s (%v; last seen: %s)", countTrue(active, hosts), len(hosts), limit, err, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

func countTrue(active map[string]bool, hosts []lab.Host) int {
	n := 0
	for _, h := range hosts {
		if active[h.IP] {
			n++
		}
	}
	return n
}

// activeHosts lists the environment's hosts that are active with a
// connected agent, by their addresses, and a sample of the others' states.
func activeHosts(ctx context.Context, client *http.Client, env environment) (map[string]bool, string, error) {
	b, err := httpDo(ctx, client, http.MethodGet, env.base+"/v1/projects/"+env.ID+"/hosts?limit=1000", nil)
	if err != nil {
		return nil, "", err
	}
	var list struct {
		Data []struct {
			State       string  `json:"state"`
			AgentState  *string `json:"agentState"`
			IPAddresses []struct {
				Address string `json:"address"`
			} `json:"ipAddresses"`
			Links struct {
				IPAddresses string `json:"ipAddresses"`
			} `json:"links"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, "", err
	}
	active := map[string]bool{}
	var others []string
	for _, h := range list.Data {
		// A connected agent's host has agentState null (cattle sets it
		// while it reconnects or is disconnected) or "active".
		ok := h.State == "active" && (h.AgentState == nil || *h.AgentState == "active")
		var ips []string
		for _, a := range h.IPAddresses {
			ips = append(ips, a.Address)
		}
		if len(ips) == 0 && h.Links.IPAddresses != "" {
			if ips, err = ipAddresses(ctx, client, h.Links.IPAddresses); err != nil {
				return nil, "", err
			}
		}
		for _, ip := range ips {
			active[ip] = active[ip] || ok
		}
		if !ok && len(others) < 3 {
			agent := "null"
			if h.AgentState != nil {
				agent = *h.AgentState
			}
			others = append(others, fmt.Sprintf("%v %s/%s", ips, h.State, agent))
		}
	}
	return active, strings.Join(others, ", "), nil
}

// ipAddresses follows a host's ipAddresses link.
func ipAddresses(ctx context.Context, client *http.Client, link string) ([]string, error) {
	b, err := httpDo(ctx, client, http.MethodGet, link, nil)
	if err != nil {
		return nil, err
	}
	var list struct {
		Data []struct {
			Address string `json:"address"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, err
	}
	var ips []string
	for _, a := range list.Data {
		ips = append(ips, a.Address)
	}
	return ips, nil
}

// checkAgents checks on every host, through docker, that rancher-agent
// runs.
func (c *config) checkAgents(ctx context.Context, hosts []lab.Host) error {
	var bad []string
	for _, h := range hosts {
		out, err := c.lab.Exec(ctx, h.Name, nil, "docker", "inspect", "-f", "{{.State.Running}}", "rancher-agent")
		if err != nil || strings.TrimSpace(string(out)) != "true" {
			bad = append(bad, h.Name)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("rancher-agent not running on %s", strings.Join(bad, ", "))
	}
	return nil
}
