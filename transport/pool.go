package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/cpu"
)

// Config describes how to reach one host.
type Config struct {
	Host    string // display name, e.g. "rs1" (used in errors and logs)
	Address string // IP or hostname
	Port    int    // default 22
	User    string // default "root"
	// IdentityFile, when set, is the only key offered (IdentitiesOnly);
	// otherwise the ssh-agent's keys, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa.
	IdentityFile   string
	KnownHostsFile string // default ~/.ssh/known_hosts
	// HostKeyPolicy is "strict" (default) or "accept-new": append unknown
	// keys to KnownHostsFile. A mismatch is fatal under both.
	HostKeyPolicy string
	// HostKey is an optional pinned key in authorized_keys format; when set
	// it is the only key accepted and known_hosts is not consulted.
	HostKey        string
	Bastion        *Config       // optional jump host (ProxyJump)
	ConnectTimeout time.Duration // TCP dial plus SSH handshake; default 10s
	Sudo           bool          // wrap commands in `sudo -n sh -c ...`
	// KexAlgorithms, when set, replaces DefaultKex (see ResolveKex).
	KexAlgorithms []string
	// Once makes one connection attempt, never retried: for a machine
	// that is asked, not waited for (one that left the manifest).
	Once bool
}

func (c Config) addr() string {
	port := c.Port
	if port == 0 {
		port = 22
	}
	return net.JoinHostPort(c.Address, strconv.Itoa(port))
}

func (c Config) user() string {
	if c.User == "" {
		return "root"
	}
	return c.User
}

func (c Config) key() string {
	k := c.user() + "@" + c.addr()
	if c.Once {
		k += " once" // a one-attempt dial is no other caller's
	}
	if c.Bastion != nil {
		k += " via " + c.Bastion.key()
	}
	return k
}

// PoolOptions tune a Pool. Zero values select the defaults.
type PoolOptions struct {
	Logger *slog.Logger // debug logs; default discards
	// Redact is applied to every command line and stderr before it is put
	// into an error or a log line. Default: identity.
	Redact func(string) string
	// Retries is how many times a transient connect failure is retried
	// after the first attempt: 0 means 3, negative means never.
	Retries int
	// Backoff is the first retry delay, doubled per retry, capped at 30s.
	// Default 500ms.
	Backoff time.Duration
	// KeepAlive is the interval of keepalive@openssh.com requests; a
	// connection that misses one reply is closed. Default 15s.
	KeepAlive time.Duration
	// CommandTimeout bounds a command whose Cmd names no Timeout; default
	// DefaultCommandTimeout.
	CommandTimeout time.Duration
	// MaxSessions caps concurrent sessions per host, below OpenSSH's
	// MaxSessions default of 10. Default 8.
	MaxSessions int
}

// Pool holds one SSH client per host. It is safe for concurrent use.
type Pool struct {
	opts    PoolOptions
	log     *slog.Logger
	khMu    sync.Mutex // serialises known_hosts appends
	mu      sync.Mutex
	entries map[string]*poolEntry
	closed  bool
}

type poolEntry struct {
	done   chan struct{} // closed when the dial finished
	client *Client
	err    error
}

// NewPool returns an empty pool.
func NewPool(opts PoolOptions) *Pool {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Redact == nil {
		opts.Redact = func(s string) string { return s }
	}
	switch {
	case opts.Retries == 0:
		opts.Retries = 3
	case opts.Retries < 0:
		opts.Retries = 0
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 500 * time.Millisecond
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = 15 * time.Second
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = 8
	}
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = DefaultCommandTimeout
	}
	return &Pool{opts: opts, log: opts.Logger, entries: map[string]*poolEntry{}}
}

// errPoolClosed is returned by Client after Close.
var errPoolClosed = errors.New("transport: pool is closed")

// Client returns the pool's client for c, dialling it if needed. Concurrent
// callers for the same host share one dial; a dead client is re-dialled.
func (p *Pool) Client(ctx context.Context, c Config) (*Client, error) {
	key := c.key()
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, fmt.Errorf("%s: %w", c.Host, errPoolClosed)
		}
		e, ok := p.entries[key]
		if !ok {
			e = &poolEntry{done: make(chan struct{})}
			p.entries[key] = e
			p.mu.Unlock()
			e.client, e.err = p.dial(ctx, c)
			p.mu.Lock()
			// A host key that does not match, or credentials refused, do
			// not change within a run: later callers get the same error
			// without another connection. Anything else may pass.
			if e.err != nil && p.entries[key] == e && !permanent(e.err) {
				delete(p.entries, key)
			}
			if e.err == nil && p.closed {
				e.client.Close()
				e.client, e.err = nil, fmt.Errorf("%s: %w", c.Host, errPoolClosed)
			}
			p.mu.Unlock()
			close(e.done)
			return e.client, e.err
		}
		p.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: wait for connection: %w", c.Host, ctx.Err())
		}
		if e.err != nil {
			// The shared dial ran under another caller's ctx; if that one
			// was cancelled and ours was not, dial again ourselves.
			if isCtxErr(e.err) && ctx.Err() == nil {
				continue
			}
			return nil, e.err
		}
		if e.client.alive() {
			return e.client, nil
		}
		p.mu.Lock()
		if p.entries[key] == e {
			delete(p.entries, key)
		}
		p.mu.Unlock()
	}
}

// Close closes every client. Later calls to Client fail.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	entries := p.entries
	p.entries = map[string]*poolEntry{}
	p.mu.Unlock()
	var errs []error
	for _, e := range entries {
		<-e.done
		if e.client != nil {
			errs = append(errs, e.client.Close())
		}
	}
	return errors.Join(errs...)
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// transientError marks a failure worth retrying.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func (p *Pool) dial(ctx context.Context, c Config) (*Client, error) {
	delay := p.opts.Backoff
	var last error
	for attempt := 1; ; attempt++ {
		cl, err := p.dialOnce(ctx, c)
		if err == nil {
			return cl, nil
		}
		var te *transientError
		if !errors.As(err, &te) {
			return nil, err
		}
		last = te.err
		p.log.DebugContext(ctx, "ssh connect failed", "host", c.Host, "addr", c.addr(), "attempt", attempt, "err", last)
		if attempt > p.opts.Retries || c.Once {
			return nil, &ConnectError{Host: c.Host, Address: c.addr(), Attempts: attempt, Err: last}
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, &ConnectError{Host: c.Host, Address: c.addr(), Attempts: attempt, Err: errors.Join(ctx.Err(), last)}
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// DefaultKex is the key exchanges haplan offers, strongest first: the
// post-quantum hybrid, then curve25519, the NIST curves and the DH groups
// with SHA-2. Config.KexAlgorithms (ssh_config's KexAlgorithms) reorders or
// narrows it.
func DefaultKex() []string {
	return []string{
		ssh.KeyExchangeMLKEM768X25519, ssh.KeyExchangeCurve25519,
		ssh.KeyExchangeECDHP256, ssh.KeyExchangeECDHP384, ssh.KeyExchangeECDHP521,
		ssh.KeyExchangeDH16SHA512, ssh.KeyExchangeDH14SHA256,
	}
}

// algorithmConfig lists what we offer, strongest first: the x/crypto
// defaults minus the legacy ones. Ciphers follow crypto/tls's rule: AES-GCM
// first where the CPU has AES instructions (both ends then spend a fraction
// of ChaCha20-Poly1305's cost per packet), ChaCha20-Poly1305 first where it
// has not.
func algorithmConfig() ssh.Config {
	ciphers := []string{ssh.CipherChaCha20Poly1305, ssh.CipherAES256GCM, ssh.CipherAES128GCM}
	if hasAESGCM {
		ciphers = []string{ssh.CipherAES256GCM, ssh.CipherAES128GCM, ssh.CipherChaCha20Poly1305}
	}
	return ssh.Config{
		KeyExchanges: DefaultKex(),
		Ciphers:      append(ciphers, ssh.CipherAES256CTR, ssh.CipherAES128CTR),
		MACs:         []string{ssh.HMACSHA256ETM, ssh.HMACSHA512ETM, ssh.HMACSHA256, ssh.HMACSHA512},
	}
}

// hasAESGCM reports hardware support for AES-GCM, as crypto/tls decides it.
var hasAESGCM = (cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ) || (cpu.ARM64.HasAES && cpu.ARM64.HasPMULL) ||
	(cpu.S390X.HasAES && cpu.S390X.HasAESGCM)

func (p *Pool) dialOnce(ctx context.Context, c Config) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: connect: %w", c.Host, err)
	}
	hk, err := newHostKeyCheck(c, &p.khMu)
	if err != nil {
		return nil, err
	}
	addr := c.addr()
	algos, err := hk.algorithms(addr)
	if err != nil {
		return nil, err
	}
	auth, cleanup, err := authMethods(c)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	timeout := c.ConnectTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	algs := algorithmConfig()
	if len(c.KexAlgorithms) > 0 {
		algs.KeyExchanges = c.KexAlgorithms
	}
	// x/crypto has no typed client-side authentication error: the auth
	// callback, which runs after each method the server turned down
	// (starting with "none"), tells that the handshake reached
	// authentication, so a failure after it that is not the connection's
	// is the server refusing us.
	var authing atomic.Bool
	cfg := &ssh.ClientConfig{
		Config:            algs,
		User:              c.user(),
		Auth:              auth,
		HostKeyCallback:   hk.verify,
		HostKeyAlgorithms: algos,
		Timeout:           timeout,
		AuthCallback: func(*ssh.ClientAuthContext) (ssh.AuthMethod, error) {
			authing.Store(true)
			return nil, nil // the next method of Auth
		},
	}

	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var conn net.Conn
	if c.Bastion != nil {
		jump, err := p.Client(ctx, *c.Bastion)
		if err != nil {
			return nil, fmt.Errorf("%s: via bastion: %w", c.Host, err)
		}
		conn, err = jump.ssh.DialContext(dctx, "tcp", addr)
		if err != nil {
			return nil, &transientError{fmt.Errorf("dial %s via %s: %w", addr, c.Bastion.Host, err)}
		}
	} else {
		var d net.Dialer
		conn, err = d.DialContext(dctx, "tcp", addr)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%s: connect: %w", c.Host, ctx.Err())
			}
			return nil, &transientError{err}
		}
	}
	// The handshake has no ctx parameter: bound it by closing the
	// connection when ctx ends or the timeout passes. A deadline on the
	// connection alone would not do: through a bastion it is an SSH
	// channel, whose SetDeadline does nothing, and a host that accepts TCP
	// but never speaks SSH would hang the handshake for ever.
	_ = conn.SetDeadline(time.Now().Add(timeout))
	peek := &peekConn{Conn: conn}
	conn = peek
	hctx, hcancel := context.WithTimeout(ctx, timeout)
	stop := context.AfterFunc(hctx, func() { conn.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	stop()
	// The connection's own deadline and the timer end at the same moment;
	// whichever fires first, it is the handshake's limit that passed.
	timedOut := ctx.Err() == nil && (hctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded))
	hcancel()
	if err != nil {
		conn.Close()
		var hke *HostKeyError
		first := peek.first()
		switch {
		case len(first) > 0 && !bytes.Contains(first, []byte("SSH-")) && !hk.passed && ctx.Err() == nil && notSSH(first):
			// The port answered, in another protocol.
			return nil, &NotSSHError{Host: c.Host, Address: addr, Got: first}
		case len(first) > 0 && !bytes.Contains(first, []byte("SSH-")) && !hk.passed && ctx.Err() == nil:
			// A line of text before any version: OpenSSH says "Not
			// allowed at this time" when MaxStartups or its penalties
			// refuse the connection. Worth another attempt.
			return nil, &transientError{fmt.Errorf("ssh handshake with %s: the server said %s", addr, strconv.QuoteToASCII(strings.TrimSpace(string(first))))}
		case timedOut && len(first) == 0:
			return nil, &transientError{fmt.Errorf("ssh handshake with %s: no answer within %s (the port takes connections but says nothing: is it an SSH server?)", addr, timeout)}
		case timedOut:
			return nil, &transientError{fmt.Errorf("ssh handshake with %s: no answer within %s", addr, timeout)}
		case errors.As(err, &hke):
			return nil, hke
		case hk.noCommonType(addr, err) != nil:
			return nil, hk.noCommonType(addr, err)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("%s: connect: %w", c.Host, ctx.Err())
		case hk.passed && authing.Load() && !isNetErr(err):
			return nil, &AuthError{Host: c.Host, User: c.user(), Err: err}
		case !hk.passed && !isNetErr(err):
			// e.g. a host key callback I/O error or no common algorithm.
			return nil, fmt.Errorf("%s: ssh handshake with %s: %w", c.Host, addr, err)
		}
		return nil, &transientError{err}
	}
	_ = conn.SetDeadline(time.Time{})
	cl := newClient(c, ssh.NewClient(sc, chans, reqs), p.opts)
	if hk.got != nil {
		cl.hostKey = ssh.FingerprintSHA256(hk.got)
	}
	p.log.DebugContext(ctx, "ssh connected", "host", c.Host, "addr", addr, "user", c.user())
	return cl, nil
}

// isNetErr reports errors caused by the connection rather than by either
// side's configuration: those are worth another attempt.
func isNetErr(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// permanent reports connect failures that another attempt in the same run
// cannot cure.
func permanent(err error) bool {
	var hk *HostKeyError
	var ae *AuthError
	var ns *NotSSHError
	return errors.As(err, &hk) || errors.As(err, &ae) || errors.As(err, &ns)
}

// notSSH reports first bytes that no SSH server sends before its version
// line: binary data (a database's greeting) or an HTTP status line.
// Plain text lines may be a refusal of a real sshd.
func notSSH(first []byte) bool {
	if bytes.HasPrefix(first, []byte("HTTP/")) {
		return true
	}
	for _, b := range first {
		if (b < 0x20 && b != '\r' && b != '\n' && b != '\t') || b >= 0x7f {
			return true
		}
	}
	return false
}

// peekConn keeps the first bytes the server sends, to tell a server of
// another protocol from one that does not answer.
type peekConn struct {
	net.Conn
	mu  sync.Mutex
	buf []byte
}

const peekBytes = 64

func (c *peekConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	if room := peekBytes - len(c.buf); room > 0 && n > 0 {
		c.buf = append(c.buf, p[:min(n, room)]...)
	}
	c.mu.Unlock()
	return n, err
}

func (c *peekConn) first() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.buf...)
}
