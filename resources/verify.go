package resources

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/transport"
)

// haVerify checks what a user of the cluster sees: every node active in the
// System HA environment, and 443 through the load balancer answering with a
// certificate that chains to the cluster CA. It is a check: never a change in
// the plan, run by apply whenever something it depends on changed, and its
// findings are warnings in a plan.
type haVerify struct{ base }

var _ engine.Step = (*haVerify)(nil)

type haVerifyState struct {
	Started bool   `json:"started"` // a script exists, so the cluster was started at some point
	Active  int    `json:"active"`
	LB      string `json:"lb"` // "ok" or what failed
}

func (s *haVerify) Probe(ctx context.Context) (engine.State, error) {
	f, err := s.env.scripts(ctx, true)
	if err != nil {
		return nil, err
	}
	st := haVerifyState{Started: f.generated()}
	if !st.Started {
		return st, nil
	}
	st.Active, _ = s.activeHosts(ctx)
	st.LB = "ok"
	if err := s.checkLB(ctx, true); err != nil {
		st.LB = err.Error()
	}
	return st, nil
}

func (s *haVerify) Diff(cur engine.State) plans.Change {
	st := cur.(haVerifyState)
	n := len(s.env.c.Nodes)
	c := s.change(plans.NoOp, fmt.Sprintf("%d/%d nodes active; load balancer: %s", st.Active, n, st.LB))
	c.Check = true
	if !st.Started {
		c.Reason = "cluster not started yet"
		return c
	}
	if st.Active < n {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%d of %d HA nodes are active", st.Active, n))
	}
	if st.LB != "ok" {
		c.Warnings = append(c.Warnings, "load balancer: "+st.LB)
	}
	return c
}

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
	for {
		active, aerr := s.activeHosts(wctx)
		var lerr error
		if active >= n {
			if lerr = s.checkLB(wctx, false); lerr == nil {
				return nil
			}
		}
		what := fmt.Sprintf("%d/%d nodes active", active, n)
		if aerr != nil {
			what += " (" + aerr.Error() + ")"
		} else if lerr != nil {
			what += "; load balancer: " + lerr.Error()
		}
		if time.Since(reported) >= reportEvery {
			reported = time.Now()
			engine.Progress(ctx, "waiting for the cluster: %s (%s of %s)", what, time.Since(start).Round(time.Second), timeout)
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("cluster did not form within %s (rancher.timeouts.clusterFormation): %s; on a node, see docker logs rancher-ha", timeout, what)
		case <-tick.C:
		}
	}
}

// activeHosts asks the nodes' own APIs, first answer wins.
func (s *haVerify) activeHosts(ctx context.Context) (int, error) {
	var errs []error
	for _, n := range s.env.c.Nodes {
		api, err := s.env.api("http://" + net.JoinHostPort(n.Address, strconv.Itoa(haAPIPort)))
		if err != nil {
			return 0, err
		}
		active, _, err := api.HAHosts(ctx)
		if err == nil {
			return active, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
	}
	return 0, errors.Join(errs...)
}

// checkLB fetches /ping through the load balancer over TLS, verifying the
// certificate against the cluster CA for the registration URL's host name.
func (s *haVerify) checkLB(ctx context.Context, cached bool) error {
	ca, err := s.env.clusterCA(ctx, cached)
	if err != nil {
		return err
	}
	if ca == nil {
		return errors.New("no node has the cluster CA yet")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return errors.New("the cluster CA is not valid PEM")
	}
	u, err := url.Parse(s.env.c.Rancher.HostRegistrationURL)
	if err != nil {
		return err
	}
	lb := net.JoinHostPort(s.env.c.LoadBalancer.Address, "443")
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, lb)
		},
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: s.env.opts.HTTPTimeout}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+u.Host+"/ping", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("https://%s/ping via %s: %w", u.Host, lb, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "pong" {
		return fmt.Errorf("https://%s/ping via %s: HTTP %d %q", u.Host, lb, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// clusterCA reads the CA from the first node that has it. With cached set,
// a CA once found is kept, and the probes of one plan share one reading
// (engine.Shared), found or not; otherwise it reads again, so a call during
// apply sees a CA that appeared since.
func (e *Env) clusterCA(ctx context.Context, cached bool) ([]byte, error) {
	if !cached {
		return e.readClusterCA(ctx)
	}
	e.mu.Lock()
	ca := e.ca
	e.mu.Unlock()
	if ca != nil {
		return ca, nil
	}
	return engine.Shared(ctx, "cluster-ca", e.readClusterCA)
}

func (e *Env) readClusterCA(ctx context.Context) ([]byte, error) {
	var errs []error
	for _, n := range e.c.Nodes {
		r, err := e.runner(ctx, nodeTarget(n), false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b, ok, err := transport.ReadFile(ctx, r, caPath)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok && len(b) > 0 {
			e.mu.Lock()
			e.ca = b
			e.mu.Unlock()
			return b, nil
		}
	}
	if len(errs) == len(e.c.Nodes) {
		return nil, fmt.Errorf("read the cluster CA: %w", errors.Join(errs...))
	}
	return nil, nil
}
