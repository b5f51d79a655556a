package dockerapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/haplan/haplan/transport"
)

// RunSpec is a container to start detached: what `docker run -d` takes.
type RunSpec struct {
	Image      string
	Cmd        []string
	Env        []string // "KEY=value"
	Binds      []string // "host:container"
	Privileged bool
}

// ErrNoAPIForRun: Run could not reach the Engine API over SSH. The caller
// decides whether the docker CLI may do it instead: a CLI's arguments are
// in the node's process list while it runs, so a spec that carries a
// credential must not go that way silently.
var ErrNoAPIForRun = fmt.Errorf("run: %w", errNoAPI)

// Run creates and starts a container through the Engine API (POST
// /containers/create, then /containers/{id}/start): no process is started
// on the node, so nothing of the spec shows in its process list. The image
// must be present (pull it first). It returns the container's id, or
// ErrNoAPIForRun when the socket is out of reach.
//
// This is the package's only write; everything else reads.
func (d *Reader) Run(ctx context.Context, s RunSpec) (string, error) {
	if transport.IsReadOnly(d.r) {
		return "", fmt.Errorf("%s: refusing to start a container through a read-only connection", d.r.Host())
	}
	body := map[string]any{
		"Image": s.Image, "Cmd": s.Cmd, "Env": s.Env,
		"HostConfig": map[string]any{"Binds": s.Binds, "Privileged": s.Privileged},
	}
	var created struct {
		ID string `json:"Id"`
	}
	if err := d.send(ctx, http.MethodPost, "/containers/create", body, &created); err != nil {
		return "", err
	}
	if err := d.send(ctx, http.MethodPost, "/containers/"+created.ID+"/start", nil, nil); err != nil {
		return created.ID, err
	}
	return created.ID, nil
}

// send is one Engine API request with a JSON body; a 2xx answer is decoded
// into v when v is not nil. The error names the node and the path, never
// the body (it may hold a credential).
func (d *Reader) send(ctx context.Context, method, path string, body, v any) error {
	if d.dial == nil {
		return ErrNoAPIForRun
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	conn, err := d.dial(ctx, "unix", Socket)
	if err != nil {
		return ErrNoAPIForRun
	}
	defer conn.Close()
	tr := &http.Transport{
		DialContext:       func(context.Context, string, string) (net.Conn, error) { return conn, nil },
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	u := url.URL{Scheme: "http", Host: "docker", Path: path}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil && ctx.Err() != nil && parent.Err() == nil {
		return fmt.Errorf("%s: docker API %s %s: no answer within %s: %w", d.r.Host(), method, path, d.timeout, context.DeadlineExceeded)
	}
	if err != nil {
		return fmt.Errorf("%s: docker API %s %s: %w", d.r.Host(), method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var m struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &m) != nil || m.Message == "" {
			m.Message = strings.TrimSpace(string(b))
		}
		return fmt.Errorf("%s: docker API %s %s: HTTP %d %s", d.r.Host(), method, path, resp.StatusCode, m.Message)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			return fmt.Errorf("%s: docker API %s %s: decode the answer: %w", d.r.Host(), method, path, err)
		}
	}
	return nil
}
