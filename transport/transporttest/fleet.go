package transporttest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/haplan/haplan/transport"
)

// Fleet is a set of Runners by host name (transport.Config.Host), reached
// through Connect.
type Fleet struct {
	mu      sync.Mutex
	hosts   map[string]*Runner
	order   []string
	down    map[string]bool
	configs []transport.Config
	redact  func(string) string
}

// NewFleet returns a fleet of the named hosts, none with expectations.
func NewFleet(hosts ...string) *Fleet {
	f := &Fleet{hosts: map[string]*Runner{}, down: map[string]bool{}}
	for _, h := range hosts {
		f.Host(h)
	}
	return f
}

// Host returns the runner of host, adding it to the fleet if it is new.
func (f *Fleet) Host(name string) *Runner {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.hosts[name]
	if !ok {
		r = New(name)
		r.SetRedact(f.redact)
		f.hosts[name] = r
		f.order = append(f.order, name)
	}
	return r
}

// SetRedact sets every runner's redaction (Runner.SetRedact), now and for
// the hosts added later.
func (f *Fleet) SetRedact(fn func(string) string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.redact = fn
	for _, r := range f.hosts {
		r.SetRedact(fn)
	}
}

// Unreachable makes Connect to host fail with a *transport.ConnectError
// (connection refused), until Reachable.
func (f *Fleet) Unreachable(host string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down[host] = true
}

// Reachable undoes Unreachable.
func (f *Fleet) Reachable(host string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.down, host)
}

// Connect returns the runner of cfg.Host, of the shape
// resources.Options.Connect takes. A host that is not in the fleet is an
// error (not a ConnectError: the test forgot it); an Unreachable one a
// *transport.ConnectError.
func (f *Fleet) Connect(_ context.Context, cfg transport.Config) (transport.Runner, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.configs = append(f.configs, cfg)
	r, ok := f.hosts[cfg.Host]
	if !ok {
		return nil, fmt.Errorf("transporttest: no host %q in the fleet", cfg.Host)
	}
	if f.down[cfg.Host] {
		port := cfg.Port
		if port == 0 {
			port = 22
		}
		addr := net.JoinHostPort(cfg.Address, strconv.Itoa(port))
		return nil, &transport.ConnectError{Host: cfg.Host, Address: addr, Attempts: 1,
			Err: fmt.Errorf("dial tcp %s: %w", addr, syscall.ECONNREFUSED)}
	}
	return r, nil
}

// Configs returns every Config Connect was given, in order.
func (f *Fleet) Configs() []transport.Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]transport.Config(nil), f.configs...)
}

// AssertExpectationsMet runs Runner.AssertExpectationsMet for every host.
func (f *Fleet) AssertExpectationsMet(t testing.TB) {
	t.Helper()
	f.mu.Lock()
	rs := make([]*Runner, 0, len(f.order))
	for _, h := range f.order {
		rs = append(rs, f.hosts[h])
	}
	f.mu.Unlock()
	for _, r := range rs {
		r.AssertExpectationsMet(t)
	}
}
