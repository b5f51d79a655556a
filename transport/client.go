package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Cmd is one remote command.
type Cmd struct {
	// Line is run by the remote user's shell (`sh -c` semantics). It must
	// not contain secrets: pass them in Stdin.
	Line  string
	Stdin []byte
	// Mutates marks commands that change the host; ReadOnly refuses them.
	Mutates bool
	// Timeout bounds the command; when it passes, the remote process group
	// is killed and Run returns a *TimeoutError. Zero means
	// DefaultCommandTimeout; commands that are slow by nature (an image
	// pull, a server start) set their own.
	Timeout time.Duration
}

// DefaultCommandTimeout bounds a command that names no Timeout: a stat, a
// file write, a docker inspect take seconds; one that has not ended after
// this is hung.
const DefaultCommandTimeout = 2 * time.Minute

// Result is what a command produced. It is returned with a *ProcessError too.
type Result struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// Runner runs commands on one host. *Client implements it; ReadOnly wraps it.
type Runner interface {
	Host() string
	Run(ctx context.Context, c Cmd) (Result, error)
}

// Client is a persistent SSH connection to one host. Obtain it from a Pool;
// it is safe for concurrent use.
type Client struct {
	cfg        Config
	ssh        *ssh.Client
	redact     func(string) string
	log        *slog.Logger
	sem        chan struct{}
	dead       chan struct{}
	cmdTimeout time.Duration
	closeOnce  sync.Once
	lostMu     sync.Mutex
	lost       string // why the connection ended, for the commands it cut
	hostKey    string // the verified host key's SHA256 fingerprint
}

// HostKey is the SHA256 fingerprint of the host key the server presented
// and that was verified: which machine the connection reached, whatever
// address it was dialled at.
func (c *Client) HostKey() string { return c.hostKey }

// HostKeyer is a Runner that knows the host key of the machine it reached.
type HostKeyer interface {
	HostKey() string
}

// HostKeyOf is r's host key fingerprint, seen through a read-only guard;
// "" when r cannot say.
func HostKeyOf(r Runner) string {
	if ro, ok := r.(readOnly); ok {
		r = ro.r
	}
	if k, ok := r.(HostKeyer); ok {
		return k.HostKey()
	}
	return ""
}

var _ Runner = (*Client)(nil)

func newClient(c Config, sc *ssh.Client, opts PoolOptions) *Client {
	cl := &Client{
		cfg:    c,
		ssh:    sc,
		redact: opts.Redact,
		log:    opts.Logger,
		sem:    make(chan struct{}, opts.MaxSessions),
		dead:   make(chan struct{}),
		// A pool's options were defaulted by NewPool.
		cmdTimeout: opts.CommandTimeout,
	}
	go func() {
		err := sc.Wait()
		switch {
		case err == nil, errors.Is(err, io.EOF):
			cl.setLost("the host closed it")
		case errors.Is(err, net.ErrClosed):
			cl.setLost("haplan closed it")
		default:
			cl.setLost(err.Error())
		}
		close(cl.dead)
	}()
	go cl.keepAlive(opts.KeepAlive)
	return cl
}

// keepAlive closes the connection when the server stops answering, so that
// the pool re-dials instead of handing out a dead client.
func (c *Client) keepAlive(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.dead:
			return
		case <-t.C:
		}
		replied := make(chan error, 1)
		go func() {
			_, _, err := c.ssh.SendRequest("keepalive@openssh.com", true, nil)
			replied <- err
		}()
		timer := time.NewTimer(every)
		select {
		case err := <-replied:
			timer.Stop()
			if err != nil {
				c.log.Debug("ssh keepalive failed", "host", c.cfg.Host, "err", err)
				c.closeLost("keepalive failed: " + err.Error())
				return
			}
		case <-timer.C:
			c.log.Debug("ssh keepalive timed out", "host", c.cfg.Host)
			c.closeLost(fmt.Sprintf("no answer to a keepalive within %s", every))
			return
		case <-c.dead:
			timer.Stop()
			return
		}
	}
}

// setLost records why the connection ended; the first reason wins.
func (c *Client) setLost(why string) {
	c.lostMu.Lock()
	defer c.lostMu.Unlock()
	if c.lost == "" {
		c.lost = why
	}
}

func (c *Client) closeLost(why string) {
	c.setLost(why)
	c.Close()
}

// lostReason waits briefly for a connection that a command saw end to be
// reported dead, and says why it ended; "" while it is alive.
func (c *Client) lostReason() string {
	select {
	case <-c.dead:
	case <-time.After(time.Second):
		return ""
	}
	c.lostMu.Lock()
	defer c.lostMu.Unlock()
	return c.lost
}

func (c *Client) alive() bool {
	select {
	case <-c.dead:
		return false
	default:
		return true
	}
}

// Host is the display name from Config.Host.
func (c *Client) Host() string { return c.cfg.Host }

// Redact applies the pool's redaction to s; ReadOnly uses it for messages.
func (c *Client) Redact(s string) string { return c.redact(s) }

// Close closes the connection.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() { err = c.ssh.Close() })
	return err
}

// Run runs cmd in a new session. A non-zero exit gives a *ProcessError
// together with the Result. When ctx ends the remote process is sent SIGKILL,
// the session is closed and the error wraps ctx.Err().
func (c *Client) Run(ctx context.Context, cmd Cmd) (Result, error) {
	limit := cmd.Timeout
	if limit <= 0 {
		limit = c.cmdTimeout
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	res, err := c.run(ctx, cmd, true)
	if err != nil && errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
		return res, &TimeoutError{Host: c.cfg.Host, Command: c.redact(cmd.Line), After: limit}
	}
	return res, err
}

// run is Run without the timeout; with slot unset it does not wait for a
// session slot (the kill of a cancelled command must not queue behind the
// commands that fill them).
func (c *Client) run(ctx context.Context, cmd Cmd, slot bool) (Result, error) {
	line := cmd.Line
	if c.cfg.Sudo {
		line = "exec sudo -n sh -c " + Quote(line)
	}
	shown := c.redact(cmd.Line)
	if slot {
		select {
		case c.sem <- struct{}{}:
			defer func() { <-c.sem }()
		case <-ctx.Done():
			return Result{ExitCode: -1}, fmt.Errorf("%s: %q: %w", c.cfg.Host, shown, ctx.Err())
		case <-c.dead:
			return Result{ExitCode: -1}, fmt.Errorf("%s: %q: connection closed", c.cfg.Host, shown)
		}
	}
	sess, err := c.ssh.NewSession()
	if err != nil {
		return Result{ExitCode: -1}, fmt.Errorf("%s: open session: %w", c.cfg.Host, err)
	}
	defer sess.Close()
	var stdout, stderr bytes.Buffer
	pid := &pidWriter{w: &stderr, found: make(chan struct{})}
	sess.Stdout, sess.Stderr = &stdout, pid
	if cmd.Stdin != nil {
		sess.Stdin = bytes.NewReader(cmd.Stdin)
	}
	start := time.Now()
	if err := sess.Start(pidPrefix + line); err != nil {
		return Result{ExitCode: -1}, fmt.Errorf("%s: start %q: %w", c.cfg.Host, shown, err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// Do not wait for the remote side: sshd keeps a session open until
		// its process exits, and a process may ignore the signal.
		_ = sess.Signal(ssh.SIGKILL)
		c.kill(ctx, pid, done)
		sess.Close()
		c.log.DebugContext(ctx, "ssh run cancelled", "host", c.cfg.Host, "cmd", shown)
		// The output buffers may still be written to: leave them.
		return Result{ExitCode: -1}, fmt.Errorf("%s: %q: %w", c.cfg.Host, shown, ctx.Err())
	}
	pid.flush()
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	c.log.DebugContext(ctx, "ssh run", "host", c.cfg.Host, "cmd", shown, "elapsed", time.Since(start), "err", err)
	if err == nil {
		return res, nil
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		res.ExitCode = ee.ExitStatus()
		return res, &ProcessError{Host: c.cfg.Host, Command: shown, ExitCode: res.ExitCode, Stderr: c.redact(string(res.Stderr))}
	}
	res.ExitCode = -1
	var missing *ssh.ExitMissingError
	if errors.As(err, &missing) || errors.Is(err, io.EOF) {
		if why := c.lostReason(); why != "" {
			return res, &ConnectionLostError{Host: c.cfg.Host, Command: shown, Reason: why, Err: err}
		}
	}
	return res, fmt.Errorf("%s: %q: %w", c.cfg.Host, shown, err)
}

// pidPrefix makes the remote shell report its pid first on stderr. sshd runs
// each session's shell in a new session (setsid), so that pid is also the
// process group to kill on cancellation: OpenSSH refuses "signal" requests
// in some setups (root logins: "session signalling requires privilege
// separation"), and closing the channel does not stop the process.
const pidPrefix = "echo HAPLAN_PID=$$ >&2; "

// pidWriter takes the HAPLAN_PID line off the head of stderr.
type pidWriter struct {
	w     *bytes.Buffer
	head  []byte
	done  bool
	pid   int
	found chan struct{}
}

func (p *pidWriter) Write(b []byte) (int, error) {
	if p.done {
		return p.w.Write(b)
	}
	p.head = append(p.head, b...)
	i := bytes.IndexByte(p.head, '\n')
	if i < 0 && len(p.head) < 64 {
		return len(b), nil
	}
	p.done = true
	rest := p.head
	if i >= 0 {
		if v, ok := bytes.CutPrefix(p.head[:i], []byte("HAPLAN_PID=")); ok {
			if n, err := strconv.Atoi(string(v)); err == nil && n > 1 {
				p.pid = n
				rest = p.head[i+1:]
				close(p.found)
			}
		}
	}
	p.head = nil
	_, err := p.w.Write(rest)
	return len(b), err
}

// ReadFrom copies stderr through Write with a small buffer. Without it
// io.Copy allocates 32 KiB per session, for output that is usually one
// line: half of what a 1000-host apply allocated (bench/analysis.md).
func (p *pidWriter) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, 512)
	var n int64
	for {
		k, err := r.Read(buf)
		if k > 0 {
			n += int64(k)
			if _, werr := p.Write(buf[:k]); werr != nil {
				return n, werr
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// flush passes on a short stderr that never completed a first line.
func (p *pidWriter) flush() {
	if !p.done {
		p.done = true
		p.w.Write(p.head)
		p.head = nil
	}
}

// kill stops the process group of a cancelled command, best effort, in a
// fresh session; it is bounded so that cancelling stays prompt.
func (c *Client) kill(ctx context.Context, p *pidWriter, done <-chan error) {
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	select {
	case <-p.found:
	case <-done:
		return // it ended (the signal worked, or it was about to exit)
	case <-kctx.Done():
		return // no pid marker: a shell that is not POSIX
	}
	// "kill -9 -PGID": dash's kill does not take "--".
	line := fmt.Sprintf("kill -9 -%[1]d 2>/dev/null || kill -9 %[1]d 2>/dev/null || true", p.pid)
	if _, err := c.run(kctx, Cmd{Line: line}, false); err != nil {
		c.log.DebugContext(ctx, "ssh kill after cancel failed", "host", c.cfg.Host, "pid", p.pid, "err", err)
	}
}
