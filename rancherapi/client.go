// Package rancherapi is a client for the parts of the Rancher v1 API that an
// HA install of Rancher Server v1.0.1 needs: /ping, the haConfig resource
// with its createscript action and enabled flag, the hosts of the "System
// HA" project, and the CA certificate.
//
// The client follows the links and actions the server returns (cattle
// lower-cases them, and the createscript URL has a "/" before "?") instead of
// building paths, except for the documented entry points /ping, /v1/haconfigs,
// /v1/projects and /v1/scripts/ca.crt. Links are followed on the origin
// (scheme, host, port) the client was configured with: cattle builds
// absolute links from X-Forwarded-* headers, and behind a TLS-terminating
// load balancer v1.0.1 returns http:// links (rancher/rancher#4697), which
// must not downgrade or redirect our requests.
//
// Errors: *APIError for HTTP error answers (parsed from cattle's error JSON
// when there is one), *ProtocolError for answers that cannot be used. The
// private key of HAConfigInput never appears in an error or a String form.
package rancherapi

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Options configure a Client. Zero values select defaults.
type Options struct {
	// HTTP is the client to use; default a new one using RootCAs.
	HTTP *http.Client
	// RootCAs verifies the server's certificate; nil means the system pool.
	RootCAs *x509.CertPool
	// Timeout bounds each request; default 30s. A ctx deadline still wins.
	Timeout time.Duration
	// AccessKey and SecretKey are an admin API key, sent with HTTP Basic
	// auth when set (needed only once access control is on).
	AccessKey, SecretKey string
	// UnauthorizedHint is added to the message of a 401 answer: what the
	// caller's user should do about it.
	UnauthorizedHint string
	// SettleTimeout bounds how long SetEnabled waits for the server to
	// show the new value (default 30s); SettleEvery is how often it looks
	// (default 250ms).
	SettleTimeout, SettleEvery time.Duration
}

// Client talks to one Rancher server. It is safe for concurrent use.
type Client struct {
	base        *url.URL
	http        *http.Client
	timeout     time.Duration
	access      string
	secret      string
	hint401     string
	settle      time.Duration
	settleEvery time.Duration
}

// maxBody bounds every response body we read.
const maxBody = 16 << 20

// New returns a client for the server at baseURL, the server root such as
// "http://10.213.1.10:8080" (a trailing "/v1" is tolerated).
func New(baseURL string, opts Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("rancher API base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("rancher API base URL %q: want http(s)://host[:port]", u.Redacted())
	}
	if u.User != nil {
		return nil, fmt.Errorf("rancher API base URL %q: pass credentials in Options, not the URL", u.Redacted())
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/v1")
	u.RawQuery, u.Fragment = "", ""
	hc := opts.HTTP
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil // the lab and the servers are reached directly
		tr.TLSClientConfig = &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12}
		hc = &http.Client{Transport: tr}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	return &Client{base: u, http: hc, timeout: opts.Timeout, access: opts.AccessKey, secret: opts.SecretKey,
		hint401: opts.UnauthorizedHint, settle: cmp.Or(opts.SettleTimeout, 30*time.Second),
		settleEvery: cmp.Or(opts.SettleEvery, 250*time.Millisecond)}, nil
}

// endpoint resolves a path below the server root.
func (c *Client) endpoint(p string) string {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + p
	return u.String()
}

// follow resolves a link from a response onto our origin.
func (c *Client) follow(link string) (string, error) {
	u, err := url.Parse(link)
	if err != nil {
		return "", err
	}
	u = c.base.ResolveReference(u)
	u.Scheme, u.Host, u.User = c.base.Scheme, c.base.Host, nil
	return u.String(), nil
}

// response is a read answer.
type response struct {
	method, url string
	status      int
	ctype       string
	body        []byte
}

func (r *response) protocolError(reason string, err error) *ProtocolError {
	return &ProtocolError{Method: r.method, URL: r.url, Reason: reason, Body: excerpt(r.body), Err: err}
}

// do sends a request and reads the answer; non-2xx answers become *APIError.
func (c *Client) do(ctx context.Context, method, rawURL string, body any) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("rancher API %s %s: encode body: %w", method, redactURL(rawURL), err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return nil, fmt.Errorf("rancher API %s %s: %w", method, redactURL(rawURL), err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.access != "" {
		req.SetBasicAuth(c.access, c.secret)
	}
	shown := redactURL(rawURL)
	resp, err := c.http.Do(req)
	if err != nil {
		// *url.Error carries the URL; we name it ourselves.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("rancher API %s %s: %w", method, shown, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("rancher API %s %s: read body: %w", method, shown, err)
	}
	r := &response{method: method, url: shown, status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: b}
	if len(b) > maxBody {
		return nil, r.protocolError(fmt.Sprintf("body larger than %d bytes", maxBody), nil)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := newAPIError(method, shown, resp.StatusCode, b)
		if e.Status == http.StatusUnauthorized {
			e.Hint = c.hint401
		}
		return nil, e
	}
	return r, nil
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// decodeJSON decodes a JSON answer into v.
func (r *response) decodeJSON(v any) error {
	if mt, _, err := mime.ParseMediaType(r.ctype); err != nil || mt != "application/json" {
		return r.protocolError(fmt.Sprintf("content type %q, want application/json", r.ctype), nil)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		return r.protocolError("invalid JSON", err)
	}
	return nil
}

// Ping checks GET /ping answers "pong".
func (c *Client) Ping(ctx context.Context) error {
	r, err := c.do(ctx, http.MethodGet, c.endpoint("/ping"), nil)
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(r.body)) != "pong" {
		return r.protocolError(`ping did not answer "pong"`, nil)
	}
	return nil
}

// WaitReady polls Ping every interval until it succeeds or ctx ends.
// progress, when not nil, is called after each failed attempt. The error
// after ctx ends wraps both ctx.Err() and the last Ping error.
func (c *Client) WaitReady(ctx context.Context, every time.Duration, progress func(elapsed time.Duration, lastErr error)) error {
	if every <= 0 {
		every = 2 * time.Second
	}
	start := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	var last error // the last answer that was not caused by ctx ending
	giveUp := func() error {
		return fmt.Errorf("rancher server %s not ready after %s: %w (last error: %w)",
			c.base.Redacted(), time.Since(start).Round(time.Second), ctx.Err(), last)
	}
	for {
		err := c.Ping(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		if progress != nil {
			progress(time.Since(start), err)
		}
		// Checked before the select: with both ready, select picks at
		// random and would ping once more with a dead context.
		if ctx.Err() != nil {
			return giveUp()
		}
		select {
		case <-ctx.Done():
			return giveUp()
		case <-t.C:
		}
	}
}
