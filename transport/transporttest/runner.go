package transporttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/haplan/haplan/transport"
)

// Runner is a transport.Runner for one host that answers from
// expectations. The zero value is not usable: call New.
type Runner struct {
	host string

	mu         sync.Mutex
	redact     func(string) string
	timeout    time.Duration
	expects    []*Expectation
	calls      []transport.Cmd
	unexpected []transport.Cmd
	dial       func(ctx context.Context, network, addr string) (net.Conn, error)
	dials      []string
	hostKey    string
}

var (
	_ transport.Runner        = (*Runner)(nil)
	_ transport.ContextDialer = (*Runner)(nil)
	_ transport.HostKeyer     = (*Runner)(nil)
)

// SetHostKey sets the host key fingerprint the double says it reached; ""
// (the default) says nothing, as a runner that cannot tell.
func (r *Runner) SetHostKey(fp string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hostKey = fp
}

// HostKey is what SetHostKey set.
func (r *Runner) HostKey() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hostKey
}

// New returns a Runner for host with no expectations.
func New(host string) *Runner {
	return &Runner{host: host, timeout: transport.DefaultCommandTimeout}
}

// Host is the name given to New.
func (r *Runner) Host() string { return r.host }

// SetRedact sets the function applied to command lines and stderr in the
// errors Run returns, as a transport.Pool's Redact is; nil leaves them as
// they are.
func (r *Runner) SetRedact(f func(string) string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.redact = f
}

// Redact applies the function SetRedact set; transport.ReadOnly uses it for
// its messages, as it does a *transport.Client's.
func (r *Runner) Redact(s string) string {
	r.mu.Lock()
	f := r.redact
	r.mu.Unlock()
	return redactWith(f, s)
}

func redactWith(f func(string) string, s string) string {
	if f == nil {
		return s
	}
	return f(s)
}

// SetCommandTimeout sets the limit of a hanging command that names no
// Timeout of its own (transport.DefaultCommandTimeout unless set), as
// PoolOptions.CommandTimeout does.
func (r *Runner) SetCommandTimeout(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timeout = d
}

// Matcher selects the commands an expectation answers.
type Matcher struct {
	desc  string
	match func(transport.Cmd) bool
	path  string // the file of ReadOf, StatOf and WriteOf; "" otherwise
}

// String describes the matcher for failure messages.
func (m Matcher) String() string { return m.desc }

// Matches reports whether m selects c.
func (m Matcher) Matches(c transport.Cmd) bool { return m.match(c) }

// And narrows m to the commands f also accepts; desc says what f checks.
func (m Matcher) And(desc string, f func(transport.Cmd) bool) Matcher {
	inner := m.match
	m.desc += " and " + desc
	m.match = func(c transport.Cmd) bool { return inner(c) && f(c) }
	return m
}

// Line matches a command whose line is exactly s.
func Line(s string) Matcher {
	return Matcher{desc: fmt.Sprintf("line %q", s), match: func(c transport.Cmd) bool { return c.Line == s }}
}

// Regexp matches a command whose line matches expr (unanchored, as
// regexp.MatchString). It panics if expr does not compile.
func Regexp(expr string) Matcher {
	re := regexp.MustCompile(expr)
	return Matcher{desc: fmt.Sprintf("line matching %q", expr), match: func(c transport.Cmd) bool { return re.MatchString(c.Line) }}
}

// Func matches the commands f accepts; desc names them in failure messages.
// f runs with the runner locked: it must not call the runner.
func Func(desc string, f func(transport.Cmd) bool) Matcher {
	return Matcher{desc: desc, match: f}
}

// Expectation is how a Runner answers the commands a Matcher selects. By
// default it answers exit status 0 and no output, any number of times
// but at least once (see AssertExpectationsMet); its methods change that
// and return it, to chain.
type Expectation struct {
	r        *Runner
	m        Matcher
	res      transport.Result
	err      error
	hang     bool
	times    int // 0: any number
	optional bool
	matched  int
}

// On adds an expectation for the commands m selects. A command is answered
// by the first expectation, in the order they were added, that selects it
// and has answers left (see Times).
func (r *Runner) On(m Matcher) *Expectation {
	e := &Expectation{r: r, m: m}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expects = append(r.expects, e)
	return e
}

// OnFirst is On for an expectation that comes before every one added so
// far: a test overrides what a fixture set up for every machine.
func (r *Runner) OnFirst(m Matcher) *Expectation {
	e := &Expectation{r: r, m: m}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expects = append([]*Expectation{e}, r.expects...)
	return e
}

func (e *Expectation) set(f func()) *Expectation {
	e.r.mu.Lock()
	defer e.r.mu.Unlock()
	f()
	return e
}

// Stdout sets the command's standard output.
func (e *Expectation) Stdout(s string) *Expectation {
	return e.set(func() { e.res.Stdout = []byte(s) })
}

// Stderr sets the command's standard error.
func (e *Expectation) Stderr(s string) *Expectation {
	return e.set(func() { e.res.Stderr = []byte(s) })
}

// Exit sets the command's exit status; non-zero makes Run return a
// *transport.ProcessError with the Result.
func (e *Expectation) Exit(code int) *Expectation {
	return e.set(func() { e.res.ExitCode = code })
}

// Err makes Run return err (and a Result with ExitCode -1) instead of an
// exit status: a *transport.ConnectionLostError, say.
func (e *Expectation) Err(err error) *Expectation {
	return e.set(func() { e.err = err })
}

// Hang makes the command never end on its own: Run returns when ctx ends
// (an error wrapping ctx.Err()) or, first, when the command's Timeout (or
// the runner's command timeout) passes, with a *transport.TimeoutError.
func (e *Expectation) Hang() *Expectation {
	return e.set(func() { e.hang = true })
}

// Times makes the expectation answer exactly n commands: further ones go
// to the next expectation that selects them, and fewer fail
// AssertExpectationsMet.
func (e *Expectation) Times(n int) *Expectation {
	if n < 1 {
		panic("transporttest: Times wants n >= 1")
	}
	return e.set(func() { e.times = n })
}

// Once is Times(1).
func (e *Expectation) Once() *Expectation { return e.Times(1) }

// Maybe lets the expectation go unused without failing
// AssertExpectationsMet.
func (e *Expectation) Maybe() *Expectation {
	return e.set(func() { e.optional = true })
}

// Matched is how many commands the expectation has answered.
func (e *Expectation) Matched() int {
	e.r.mu.Lock()
	defer e.r.mu.Unlock()
	return e.matched
}

func (e *Expectation) exhausted() bool { return e.times > 0 && e.matched >= e.times }

// UnexpectedError is what Run returns for a command no expectation selects.
type UnexpectedError struct {
	Host string
	Cmd  transport.Cmd
}

func (e *UnexpectedError) Error() string {
	return fmt.Sprintf("transporttest: %s: unexpected command %q (mutates %v)", e.Host, e.Cmd.Line, e.Cmd.Mutates)
}

// Run records c and answers it from the first expectation that selects it.
func (r *Runner) Run(ctx context.Context, c transport.Cmd) (transport.Result, error) {
	c.Stdin = bytes.Clone(c.Stdin)
	r.mu.Lock()
	r.calls = append(r.calls, c)
	red := r.redact
	shown := redactWith(red, c.Line)
	if err := ctx.Err(); err != nil {
		// The real client fails it before starting anything.
		r.mu.Unlock()
		return transport.Result{ExitCode: -1}, fmt.Errorf("%s: %q: %w", r.host, shown, err)
	}
	var e *Expectation
	for _, x := range r.expects {
		if !x.exhausted() && x.m.Matches(c) {
			e = x
			break
		}
	}
	if e == nil {
		r.unexpected = append(r.unexpected, c)
		r.mu.Unlock()
		return transport.Result{ExitCode: -1}, &UnexpectedError{Host: r.host, Cmd: c}
	}
	e.matched++
	res := transport.Result{Stdout: bytes.Clone(e.res.Stdout), Stderr: bytes.Clone(e.res.Stderr), ExitCode: e.res.ExitCode}
	err, hang, limit := e.err, e.hang, c.Timeout
	if limit <= 0 {
		limit = r.timeout
	}
	r.mu.Unlock()

	if hang {
		t := time.NewTimer(limit)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return transport.Result{ExitCode: -1}, fmt.Errorf("%s: %q: %w", r.host, shown, ctx.Err())
		case <-t.C:
			return transport.Result{ExitCode: -1}, &transport.TimeoutError{Host: r.host, Command: shown, After: limit}
		}
	}
	if err != nil {
		return transport.Result{ExitCode: -1}, err
	}
	if res.ExitCode != 0 {
		return res, &transport.ProcessError{Host: r.host, Command: shown, ExitCode: res.ExitCode, Stderr: redactWith(red, string(res.Stderr))}
	}
	return res, nil
}

// Calls returns every command Run was given, in order, answered or not.
func (r *Runner) Calls() []transport.Cmd {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]transport.Cmd(nil), r.calls...)
}

// Lines returns the lines of Calls.
func (r *Runner) Lines() []string {
	var out []string
	for _, c := range r.Calls() {
		out = append(out, c.Line)
	}
	return out
}

// Unexpected returns the commands no expectation selected, in order.
func (r *Runner) Unexpected() []transport.Cmd {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]transport.Cmd(nil), r.unexpected...)
}

// AssertExpectationsMet fails t for every unexpected command, every
// expectation that answered no command (unless Maybe), and every Times(n)
// expectation that did not answer exactly n.
func (r *Runner) AssertExpectationsMet(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.unexpected {
		t.Errorf("%s: unexpected command %q (mutates %v)", r.host, c.Line, c.Mutates)
	}
	for _, e := range r.expects {
		switch {
		case e.times > 0 && e.matched != e.times:
			t.Errorf("%s: expected %s %d time(s), got %d", r.host, e.m, e.times, e.matched)
		case e.times == 0 && e.matched == 0 && !e.optional:
			t.Errorf("%s: expected %s, never run", r.host, e.m)
		}
	}
}

// ErrDialRefused is wrapped by the error of a dial nothing answers.
var ErrDialRefused = errors.New("transporttest: dial refused (no OnDial answer)")

// OnDial sets how the host answers DialContext; nil refuses every dial
// (the default), with an error wrapping ErrDialRefused.
func (r *Runner) OnDial(f func(ctx context.Context, network, addr string) (net.Conn, error)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dial = f
}

// DialContext records the dial ("network addr", see Dials) and answers it
// with the OnDial function.
func (r *Runner) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	r.mu.Lock()
	r.dials = append(r.dials, network+" "+addr)
	f := r.dial
	r.mu.Unlock()
	if f == nil {
		return nil, fmt.Errorf("%s: dial %s through ssh: %w", r.host, addr, ErrDialRefused)
	}
	conn, err := f(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("%s: dial %s through ssh: %w", r.host, addr, err)
	}
	return conn, nil
}

// Dials returns every dial, as "network addr", in order.
func (r *Runner) Dials() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.dials...)
}
