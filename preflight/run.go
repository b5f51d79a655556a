package preflight

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/transport"
)

// Env is what the checks need from a haplan run: the manifest and
// connections. resources.Env implements it.
type Env interface {
	Cluster() *manifests.Cluster
	// Runner returns a READ-ONLY runner for a host by its manifest name: a
	// node name ("rs1"), "lb", or an agent host name.
	Runner(ctx context.Context, host string) (transport.Runner, error)
	// AdminDB connects with the admin credentials from this machine.
	AdminDB(ctx context.Context) (*sql.DB, error)
	// AppDB connects with the application credentials
	// (database.user/password) from the given node, through that node's
	// SSH connection, so the check sees exactly what the Rancher server on
	// that node will see.
	AppDB(ctx context.Context, node string) (*sql.DB, error)
	// DialLB opens a TCP connection to the load balancer's addr the way
	// haplan's own checks do (through an SSH connection, from inside the
	// site).
	DialLB(ctx context.Context, addr string) (net.Conn, error)
}

// The *sql.DB values AdminDB and AppDB return belong to the Env: Run never
// closes them.

// Options tune Run. Zero values select the defaults.
type Options struct {
	// Timeout bounds each check; default 10s. A check that has not finished
	// by then is reported as timed out and abandoned.
	Timeout time.Duration
	// Parallelism is how many checks run at once; default 8.
	Parallelism int
	// Redact is applied to every message and hint (the Env's redactor);
	// default identity.
	Redact func(string) string
	// Now is this machine's clock, for the clock-skew check; default
	// time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Parallelism <= 0 {
		o.Parallelism = 8
	}
	if o.Redact == nil {
		o.Redact = func(s string) string { return s }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Run runs every check and returns the report; it never returns nil. It
// returns early only when ctx is cancelled, with what it found so far plus
// a finding per abandoned check.
func Run(ctx context.Context, env Env, opts Options) *Report {
	p := &pass{env: env, c: env.Cluster(), opts: opts.withDefaults()}
	p.sem = make(chan struct{}, p.opts.Parallelism)
	p.add(evalSize(len(p.c.Nodes)))
	p.add(evalUDP(len(p.c.Nodes)))

	var wg sync.WaitGroup
	facts := make([]nodeFacts, len(p.c.Nodes))
	for i, n := range p.c.Nodes {
		wg.Go(func() { facts[i] = p.node(ctx, n, n.Name == p.c.Rancher.BootstrapNode) })
	}
	for _, h := range p.c.Hosts {
		if h.Register {
			wg.Go(func() { p.host(ctx, h) })
		}
	}
	wg.Go(func() { p.loadBalancer(ctx) })
	wg.Go(func() { p.database(ctx) })
	wg.Wait()

	skews := map[string]time.Duration{}
	for i, n := range p.c.Nodes {
		if facts[i].clockRead {
			skews[n.Name] = facts[i].skew
		}
	}
	if f, ok := evalClockSpread(skews); ok {
		p.add(f)
	}
	p.reachability(ctx, facts)

	p.mu.Lock()
	defer p.mu.Unlock()
	out := &Report{Findings: make([]Finding, len(p.findings))}
	for i, f := range p.findings {
		f.Message, f.Hint = p.opts.Redact(f.Message), p.opts.Redact(f.Hint)
		out.Findings[i] = f
	}
	return out
}

// pass is the state of one Run.
type pass struct {
	env  Env
	c    *manifests.Cluster
	opts Options
	sem  chan struct{}

	mu       sync.Mutex
	findings []Finding
}

func (p *pass) add(fs ...Finding) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.findings = append(p.findings, fs...)
}

// task names one check on one host; what says, for a timeout message,
// what it was doing ("SSH to 10.0.0.11").
type task struct {
	check, host, what string
}

// check runs fn under a slot of the semaphore and a fresh Timeout, adds
// the findings it returns and hands back its value. When the timeout (or
// ctx) ends first, fn is abandoned: its goroutine finishes on its own
// (every call in it takes the cancelled ctx), its result is dropped, a
// timeout finding is added, and ok is false.
func check[T any](ctx context.Context, p *pass, t task, fn func(ctx context.Context) (T, []Finding)) (v T, ok bool) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		p.add(p.abandoned(ctx, t))
		return v, false
	}
	defer func() { <-p.sem }()
	cctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	type result struct {
		v  T
		fs []Finding
	}
	ch := make(chan result, 1)
	go func() {
		v, fs := fn(cctx)
		ch <- result{v, fs}
	}()
	select {
	case r := <-ch:
		p.add(r.fs...)
		return r.v, true
	case <-cctx.Done():
		p.add(p.abandoned(ctx, t))
		return v, false
	}
}

// abandoned is the finding for a check that did not finish.
func (p *pass) abandoned(ctx context.Context, t task) Finding {
	f := Finding{Severity: Error, Check: t.check, Host: t.host}
	if ctx.Err() != nil {
		f.Message = t.what + ": not finished, preflight was cancelled"
		return f
	}
	f.Message = fmt.Sprintf("%s: timed out, no answer within %s", t.what, p.opts.Timeout)
	f.Hint = timeoutHint(t.check)
	if strings.HasPrefix(t.what, "SSH to ") {
		// A machine that does not answer SSH is an outage, not a bad
		// setting: its steps are not probed, the others go on.
		f.Severity = Warning
		f.Message += "; its steps are not probed, and apply skips them"
	}
	return f
}

func timeoutHint(name string) string {
	switch name {
	case "ssh", "lb":
		return "the host does not answer: check that it is up and that nothing drops SSH on the way"
	case "mysql.admin", "mysql.app", "mysql.version", "max_connections":
		return "the database does not answer: check database.host/port, that MySQL runs, and firewalls"
	}
	return "the host stopped answering: check its load and connectivity"
}

// failed turns an error into a finding, describing a timeout in words
// rather than as "context deadline exceeded".
func (p *pass) failed(name, host, what string, err error) Finding {
	f := Finding{Severity: Error, Check: name, Host: host}
	if errors.Is(err, context.DeadlineExceeded) {
		f.Message = fmt.Sprintf("%s: timed out after %s", what, p.opts.Timeout)
		f.Hint = timeoutHint(name)
		return f
	}
	f.Message = fmt.Sprintf("%s: %v", what, err)
	return f
}
