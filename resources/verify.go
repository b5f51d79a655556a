package resources

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
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

// haVerify checks what a user of the cluster sees: every node's own API
// answering, every node of the manifest (by cluster IP) a healthy host of
// the System HA environment (state and agentState active), and 443 through
// the load balancer answering with a certificate that chains to the
// cluster CA. It is a check: never a change in the plan, run by apply
// whenever something it depends on changed, and its findings are warnings
// in a plan.
type haVerify struct{ base }

var (
	_ engine.Step    = (*haVerify)(nil)
	_ engine.Checker = (*haVerify)(nil)
)

// IsCheck: ha.verify is a check, also when it could not be probed.
func (s *haVerify) IsCheck() bool { return true }

// haVerifyState is what the check saw. The digested fields are facts that
// stay put while nothing changes; the words that explain them (an error
// text, an agent state) move between two looks at the same cluster and
// are kept out of the digest, so a saved plan is not refused as stale for
// a message that changed.
type haVerifyState struct {
	Started bool                  `json:"started"` // a script exists, so the cluster was started at some point
	Nodes   map[string]nodeHealth `json:"nodes,omitempty"`
	LB      bool                  `json:"lb_ok"`
	// Observed explains each node that is not healthy, the load
	// balancer's failure ("lb"), and extra hosts ("extra").
	Observed map[string]string `json:"-"`
}

// nodeHealth is one manifest node as the cluster sees it.
type nodeHealth struct {
	API    bool `json:"api"`    // its own API (:18080) answered
	Active bool `json:"active"` // a System HA host with its cluster IP, state and agentState active
	// OtherVersion: its API reports another release than the manifest's
	// image (setting rancher.server.image, the server's image tag).
	OtherVersion bool `json:"other_version,omitempty"`
}

func (st haVerifyState) activeCount() int {
	n := 0
	for _, h := range st.Nodes {
		if h.API && h.Active && !h.OtherVersion {
			n++
		}
	}
	return n
}

func (s *haVerify) Probe(ctx context.Context) (engine.State, error) {
	f, err := s.env.scripts(ctx)
	if err != nil {
		return nil, err
	}
	if err := f.settled(); err != nil {
		return nil, err
	}
	st := haVerifyState{Started: f.generated()}
	if !st.Started {
		return st, nil
	}
	st = s.observe(ctx, lookProbe)
	st.Started = true
	return st, nil
}

func (s *haVerify) Diff(cur engine.State) plans.Change {
	st := cur.(haVerifyState)
	n := len(s.env.c.Nodes)
	lb := "ok"
	if !st.LB {
		lb = cmp.Or(st.Observed["lb"], "not ok")
	}
	c := s.change(plans.NoOp, fmt.Sprintf("%d/%d nodes active; load balancer: %s", st.activeCount(), n, lb))
	c.Check = true
	if !st.Started {
		c.Reason = "cluster not started yet"
		return c
	}
	for _, node := range s.env.c.Nodes {
		h := st.Nodes[node.Name]
		if h.API && h.Active {
			continue
		}
		why := st.Observed[node.Name]
		if why == "" {
			why = "not an active host of System HA"
			if !h.API {
				why = "its API could not be read"
			}
		}
		c.Warnings = append(c.Warnings, fmt.Sprintf("HA node %s: %s", node.Name, why))
	}
	for _, node := range s.env.c.Nodes {
		if x := st.Observed["ca "+node.Name]; x != "" {
			c.Warnings = append(c.Warnings, fmt.Sprintf("HA node %s: %s", node.Name, x))
		}
	}
	if !st.LB {
		c.Warnings = append(c.Warnings, "load balancer: "+lb)
	}
	if x := st.Observed["extra"]; x != "" {
		c.Warnings = append(c.Warnings, x)
	}
	return c
}

// healthy reports whether every node and the load balancer are fine.
func (st haVerifyState) healthy(n int) bool { return st.LB && st.activeCount() == n }

// Apply waits for the cluster to form, up to rancher.timeouts.clusterFormation.
func (s *haVerify) Apply(ctx context.Context, _ plans.Change) error {
	timeout := s.env.c.Rancher.Timeouts.ClusterFormation
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	n := len(s.env.c.Nodes)
	start := time.Now()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	var reported time.Time
	var last haVerifyState
	for {
		st := s.observe(wctx, lookWait)
		if st.healthy(n) {
			return nil
		}
		if wctx.Err() == nil || last.Nodes == nil {
			last = st // a look cut short by the deadline says nothing new
		}
		if time.Since(reported) >= reportEvery {
			reported = time.Now()
			engine.Progress(ctx, "waiting for the cluster: %s (%s of %s)", s.describe(last), time.Since(start).Round(time.Second), timeout)
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("cluster did not form within %s (rancher.timeouts.clusterFormation); last seen: %s; on a node, see docker logs rancher-ha", timeout, s.describe(last))
		case <-tick.C:
		}
	}
}

// describe says what a look saw, node by node, for people.
func (s *haVerify) describe(st haVerifyState) string {
	var parts []string
	for _, node := range s.env.c.Nodes {
		h := st.Nodes[node.Name]
		switch {
		case h.API && h.Active:
			parts = append(parts, node.Name+" active")
		default:
			parts = append(parts, node.Name+": "+cmp.Or(st.Observed[node.Name], "not active"))
		}
	}
	lb := "ok"
	if !st.LB {
		lb = cmp.Or(st.Observed["lb"], "not checked")
	}
	out := fmt.Sprintf("%d/%d nodes active (%s); load balancer: %s", st.activeCount(), len(s.env.c.Nodes), strings.Join(parts, "; "), lb)
	if x := st.Observed["extra"]; x != "" {
		out += "; " + x
	}
	return out
}

// serverRelease is the release a node's API says it runs: rancher 1.1
// sets CATTLE_RANCHER_SERVER_VERSION (setting rancher.server.version) and
// makes rancher.server.image the repository; 1.0 has only
// rancher.server.image, set to the image's tag (rancher v1.0.1
// server/Dockerfile). "" when neither says.
func serverRelease(ctx context.Context, api *rancherapi.Client) string {
	for _, name := range []string{"rancher.server.version", "rancher.server.image"} {
		if v, err := api.Setting(ctx, name); err == nil {
			if _, ok := manifests.ParseRelease(v); ok {
				return v
			}
		}
	}
	return ""
}

// look is why observe looks: for a plan's probe, or in apply's wait.
type look int

const (
	lookProbe look = iota // checks the load balancer too
	lookWait              // checks the load balancer once every node is active
)

// observe asks every node's own API for the System HA hosts, all at once,
// and matches the manifest's nodes to them by cluster IP, then checks the
// load balancer (in apply's wait only once every node is active).
func (s *haVerify) observe(ctx context.Context, why look) haVerifyState {
	nodes := s.env.c.Nodes
	type answer struct {
		hosts []rancherapi.Host
		err   error
	}
	answers := make([]answer, len(nodes))
	versions := make([]string, len(nodes))
	caFiles := make([]nodeCAFile, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			// The SSH connection first: a node that does not answer is
			// named as such, not as an API request that timed out.
			r, err := s.env.runner(ctx, nodeTarget(n))
			caFiles[i].err = err
			if err == nil && why == lookProbe {
				// What an operator would copy to a host by hand.
				f := &caFiles[i]
				f.data, f.exists, f.err = transport.ReadFile(ctx, r, layout.CA)
			}
			var api *rancherapi.Client
			if err == nil {
				api, err = s.env.apiOn(nodeTarget(n), layout.HAAPIPort)
			}
			if err == nil {
				answers[i].hosts, answers[i].err = api.HAHosts(ctx)
			} else {
				answers[i].err = err
			}
			if answers[i].err == nil {
				versions[i] = serverRelease(ctx, api)
			}
		})
	}
	wg.Wait()
	st := haVerifyState{Nodes: map[string]nodeHealth{}, Observed: map[string]string{}}
	// Every node's API reads the same database: the first full answer is
	// the cluster's view.
	var view []rancherapi.Host
	viewFrom := ""
	for i, a := range answers {
		if a.err == nil && view == nil {
			view, viewFrom = a.hosts, nodes[i].Name
		}
	}
	byIP := map[string]rancherapi.Host{}
	for _, h := range view {
		for _, a := range h.Addresses {
			byIP[a] = h
		}
	}
	matched := map[string]bool{}
	for i, n := range nodes {
		h := nodeHealth{API: answers[i].err == nil || errors.Is(answers[i].err, rancherapi.ErrNoHAProject)}
		switch host, ok := byIP[n.ClusterIP]; {
		case !h.API:
			st.Observed[n.Name] = fmt.Sprintf("cannot read its API: %v", answers[i].err)
		case view == nil:
			st.Observed[n.Name] = "no System HA environment yet (the first master creates it)"
		case !ok:
			st.Observed[n.Name] = fmt.Sprintf("no System HA host with cluster IP %s (as %s's API reports)", n.ClusterIP, viewFrom)
		default:
			matched[n.ClusterIP] = true
			h.Active = host.Healthy()
			if !h.Active {
				st.Observed[n.Name] = fmt.Sprintf("System HA host %s is %s, agent %s", n.ClusterIP, host.State, cmp.Or(host.AgentState, "not connected"))
			}
		}
		want, ok := manifests.ServerVersion(s.env.c.Rancher.Image)
		if got, gok := manifests.ParseRelease(versions[i]); ok && gok && h.API && answers[i].err == nil && got != want {
			h.OtherVersion = true
			st.Observed[n.Name] = fmt.Sprintf("its API reports release %s, the manifest's image is %s", got, want)
		}
		st.Nodes[n.Name] = h
	}
	var extra []string
	for _, h := range view {
		if !slices.ContainsFunc(h.Addresses, func(a string) bool { return matched[a] }) {
			extra = append(extra, fmt.Sprintf("%s (%s, %s)", cmp.Or(strings.Join(h.Addresses, " "), h.ID), cmp.Or(h.Hostname, "no hostname"), h.State))
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		st.Observed["extra"] = "System HA also lists hosts that are not nodes of the manifest: " + strings.Join(extra, ", ")
	}
	if view != nil && why == lookProbe {
		s.checkCAFiles(ctx, st, caFiles)
	}
	if why == lookWait && st.activeCount() < len(nodes) {
		// While apply waits, the LB is looked at once the nodes are up.
		st.Observed["lb"] = "not checked until every node is active"
		return st
	}
	if _, err := s.env.pingLB(ctx); err != nil {
		st.Observed["lb"] = err.Error()
	} else {
		st.LB = true
	}
	return st
}

// nodeCAFile is a node's ca.crt as read.
type nodeCAFile struct {
	data   []byte
	exists bool
	err    error
}

// checkCAFiles notes each node whose ca.crt does not start with the
// cluster CA: the file upstream's docs say to copy to hosts, and the one
// operators copy by hand. A host given a file whose first certificate is
// another trusts that one first, and haplan refuses it (its check of a
// host's CA compares the first certificate with CA_FINGERPRINT).
// cluster-manager leaves such a file so: it appends the cluster CA to a
// file that differs. haplan gives hosts the server's chain, not the file.
func (s *haVerify) checkCAFiles(ctx context.Context, st haVerifyState, files []nodeCAFile) {
	ca, err := s.env.clusterCA(ctx)
	if err != nil || ca.PEM == nil {
		return
	}
	pinned := pemCerts(ca.PEM)[0]
	want := fmt.Sprintf("the cluster CA (SHA-1 %s, which the server serves and its registration commands pin)", sha1Fingerprint(pinned))
	for i, n := range s.env.c.Nodes {
		f := files[i]
		if f.err != nil || !st.Nodes[n.Name].API {
			// Not read (the node's connection is named already), or the
			// node's server does not answer (not started yet, in a
			// resize): cluster-manager writes the file when it starts.
			continue
		}
		if !f.exists {
			st.Observed["ca "+n.Name] = fmt.Sprintf("%s is missing: it should hold %s (cluster-manager writes it when the node's server starts)", layout.CA, want)
			continue
		}
		certs := pemCerts(f.data)
		if len(certs) > 0 && bytes.Equal(certs[0], pinned) {
			continue
		}
		var held []string
		found := false
		for _, der := range certs {
			found = found || bytes.Equal(der, pinned)
			held = append(held, "SHA-1 "+sha1Fingerprint(der))
		}
		has := "it holds no certificate"
		switch {
		case found:
			has = "it holds it after another (" + strings.Join(held, ", ") + "): copied to a host, the other CA comes first"
		case len(held) > 0:
			has = "it holds " + strings.Join(held, ", ")
		}
		st.Observed["ca "+n.Name] = fmt.Sprintf("%s does not start with %s; %s. haplan gives hosts the server's chain, not this file; put the chain back on %s (docs/troubleshooting.md, \"A node's ca.crt is not the cluster CA\")",
			layout.CA, want, has, n.Name)
	}
}

// pingLB fetches /ping through the load balancer over TLS, verifying the
// certificate against the cluster CA for the registration URL's host name,
// and returns the certificate it presented. While no node's API serves the
// CA (the database is down, say), the certificates in the nodes' ca.crt
// files are trusted for this check: it says whether the LB answers, and
// until when its certificate is valid, when that matters most. They are
// never given to hosts.
func (e *Env) pingLB(ctx context.Context) (*x509.Certificate, error) {
	read, err := e.clusterCA(ctx)
	if err != nil {
		return nil, err
	}
	ca := read.PEM
	if ca == nil {
		ca = e.nodesCAFiles(ctx)
	}
	if ca == nil {
		return nil, fmt.Errorf("%w: %s", errNoClusterCA, read.Why)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("the cluster CA is not valid PEM")
	}
	u, err := url.Parse(e.c.Rancher.HostRegistrationURL)
	if err != nil {
		return nil, err
	}
	lb := net.JoinHostPort(e.c.LoadBalancer.Address, "443")
	hc := e.siteHTTP(func(ctx context.Context) (net.Conn, error) { return e.dialLB(ctx, lb) },
		&tls.Config{RootCAs: pool, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12})
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+u.Host+"/ping", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("https://%s/ping via %s: %w", u.Host, lb, err)
	}
	defer resp.Body.Close()
	var leaf *x509.Certificate
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		leaf = resp.TLS.PeerCertificates[0]
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "pong" {
		return leaf, fmt.Errorf("https://%s/ping via %s: HTTP %d %q", u.Host, lb, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return leaf, nil
}

// nodesCAFiles are the certificates of every node's ca.crt, as PEM; nil
// when no node that answers has one.
func (e *Env) nodesCAFiles(ctx context.Context) []byte {
	var out []byte
	for _, n := range e.c.Nodes {
		r, err := e.runner(ctx, nodeTarget(n))
		if err != nil {
			continue
		}
		if b, ok, err := transport.ReadFile(ctx, r, layout.CA); err == nil && ok {
			for _, der := range pemCerts(b) {
				out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
			}
		}
	}
	return out
}

// clusterCA is the CA chain hosts get: the System HA certificate's chain
// as the cluster's API serves it at /v1/scripts/ca.crt, which is what the
// registration commands pin (CA_FINGERPRINT is its first certificate) and
// what signs the certificate the nodes serve. A node's ca.crt is not the
// source: cluster-manager appends the chain to a file that differs rather
// than replacing it, and a file edited or left from another cluster would
// be spread to every host. nil while the API has no certificate (the
// cluster has not formed) or no node's API answers (the cluster is down):
// the CA cannot be known (Why says how), and the steps that need it
// wait. Once found it is kept for the run (onceFound): a run never
// changes it.
func (e *Env) clusterCA(ctx context.Context) (caReading, error) {
	return sharedRead(ctx, &e.facts, "cluster-ca", onceFound, e.readClusterCA, func(r caReading) bool { return len(r.PEM) > 0 })
}

// caReading is the cluster CA as PEM, or why it is not known.
type caReading struct {
	PEM []byte
	Why string // when PEM is nil
	// NotYet: the API answers and has no certificate yet (the cluster
	// has not formed), rather than no API answering.
	NotYet bool
}

func (e *Env) readClusterCA(ctx context.Context) (caReading, error) {
	ca, _, err := onClusterAPI(ctx, e, func(ctx context.Context, api *rancherapi.Client) ([]byte, error) {
		return api.CAChain(ctx)
	})
	var pe *rancherapi.ProtocolError
	switch {
	case err == nil:
		return caReading{PEM: ca}, nil
	case ctx.Err() != nil:
		return caReading{}, ctx.Err()
	case errors.As(err, &pe):
		// The server answered, and not with a certificate.
		return caReading{}, fmt.Errorf("read the cluster CA: %w", err)
	case errors.Is(err, rancherapi.ErrNoClusterCA):
		return caReading{Why: "the cluster has no System HA certificate yet (it has not formed)", NotYet: true}, nil
	}
	return caReading{Why: err.Error()}, nil
}
