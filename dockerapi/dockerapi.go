// Package dockerapi reads what a node's Docker Engine knows (an image, a
// container, the running containers, the engine's version) through the
// node's SSH connection.
//
// It asks the Engine API on /var/run/docker.sock over a direct-streamlocal
// channel of the existing SSH connection (what `ssh -L` to a socket does):
// one channel and one HTTP GET, no process on the node. A `docker inspect`
// costs the node ~50 ms of CPU to start the docker CLI; a plan reads Docker
// a dozen times per cluster, so this is most of a no-op plan's fixed cost.
//
// When the socket cannot be reached that way (the SSH user may not open it
// and reaches Docker through sudo, or the server refuses stream forwarding
// with AllowStreamLocalForwarding no), every read falls back to the docker
// CLI through the runner, with the same results. Reads, but for one write:
// Run starts a container through the API (run.go), so that what it is
// started with never shows in the node's process list.
package dockerapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/haplan/haplan/transport"
)

// Socket is where the Docker Engine listens on a node.
const Socket = "/var/run/docker.sock"

// Reader reads one node's Docker Engine.
type Reader struct {
	r    transport.Runner
	dial func(ctx context.Context, network, addr string) (net.Conn, error) // nil: CLI only
	// timeout bounds each Engine API request (the CLI fallback is bounded
	// by the runner's command timeout).
	timeout time.Duration
}

// APITimeout bounds each Engine API GET: a socket that accepts and never
// answers (a hung dockerd) fails the read, naming the node and the path.
const APITimeout = 30 * time.Second

// New returns a Reader for the host r runs on. It uses the Engine API when
// r (or the runner it wraps) can open channels on its SSH connection.
func New(r transport.Runner) *Reader {
	rd := &Reader{r: r, timeout: APITimeout}
	if d, ok := transport.DialerOf(r); ok {
		rd.dial = d.DialContext
	}
	return rd
}

// Container is what a plan needs to know of one container.
type Container struct {
	Name   string
	Status string // "running", "exited", ...; "absent" when there is none
	Image  string // the image it was created from, as given to docker run
	// Ports are the host TCP ports a running container publishes (List only).
	Ports []int
	// ExitCode is the exit code of an exited container (Inspect only);
	// -1 when not known.
	ExitCode int
}

// errNoAPI means the Engine API could not be reached over SSH; the caller
// uses the CLI instead.
var errNoAPI = errors.New("docker API not reachable over ssh")

// get sends GET path to the Engine API and decodes a 200 answer into v. It
// returns found=false for 404 and errNoAPI when the socket is out of reach.
func (d *Reader) get(ctx context.Context, path string, v any) (found bool, err error) {
	if d.dial == nil {
		return false, errNoAPI
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	conn, err := d.dial(ctx, "unix", Socket)
	if err != nil {
		return false, errNoAPI
	}
	tr := &http.Transport{
		DialContext:       func(context.Context, string, string) (net.Conn, error) { return conn, nil },
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	defer conn.Close()
	u := url.URL{Scheme: "http", Host: "docker", Path: path}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil && ctx.Err() != nil && parent.Err() == nil {
		return false, fmt.Errorf("%s: docker API GET %s: no answer within %s: %w", d.r.Host(), path, d.timeout, context.DeadlineExceeded)
	}
	if err != nil {
		return false, fmt.Errorf("%s: docker API GET %s: %w", d.r.Host(), path, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return false, nil
	case resp.StatusCode != http.StatusOK:
		var m struct {
			Message string `json:"message"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		_ = json.Unmarshal(b, &m)
		return false, fmt.Errorf("%s: docker API GET %s: HTTP %d %s", d.r.Host(), path, resp.StatusCode, m.Message)
	}
	// Decode only the fields v names: an inspect answer also holds the
	// container's environment, which may carry a password.
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return false, fmt.Errorf("%s: docker API GET %s: decode the answer: %w", d.r.Host(), path, err)
	}
	return true, nil
}

// cli runs a read-only docker command and returns its trimmed stdout.
func (d *Reader) cli(ctx context.Context, line string) (string, error) {
	res, err := d.r.Run(ctx, transport.Cmd{Line: line})
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(res.Stdout)), nil
}

// orAbsent wraps a docker CLI read of one object so that only the
// daemon's "No such ..." answer reads as absent (prints "absent"); any
// other failure (a daemon that does not answer, a CLI that is missing)
// fails the command with the CLI's message, so a dead dockerd never passes
// for a missing image or container.
func orAbsent(line string) string {
	return `out=$(` + line + ` 2>&1) && printf '%s\n' "$out" || case "$out" in *"No such"*) echo absent ;; *) printf '%s\n' "$out" >&2; exit 1 ;; esac`
}

// ImageID returns the ID of a local image, or "" when the node does not
// have it.
func (d *Reader) ImageID(ctx context.Context, ref string) (string, error) {
	var img struct {
		ID string `json:"Id"`
	}
	found, err := d.get(ctx, "/images/"+ref+"/json", &img)
	if !errors.Is(err, errNoAPI) {
		if !found {
			return "", err
		}
		return img.ID, nil
	}
	out, err := d.cli(ctx, orAbsent("docker inspect --type image --format '{{.Id}}' "+transport.Quote(ref)))
	if err != nil || out == "absent" {
		return "", err
	}
	return out, nil
}

// Inspect returns a container's status and image; Status is "absent" when
// there is no such container.
func (d *Reader) Inspect(ctx context.Context, name string) (Container, error) {
	var c struct {
		State struct {
			Status   string
			ExitCode int
		}
		Config struct{ Image string }
	}
	found, err := d.get(ctx, "/containers/"+name+"/json", &c)
	if !errors.Is(err, errNoAPI) {
		if err != nil {
			return Container{}, err
		}
		if !found {
			return Container{Name: name, Status: "absent", ExitCode: -1}, nil
		}
		return Container{Name: name, Status: c.State.Status, Image: c.Config.Image, ExitCode: c.State.ExitCode}, nil
	}
	out, err := d.cli(ctx, orAbsent("docker inspect --type container --format '{{.State.Status}} {{.Config.Image}} {{.State.ExitCode}}' "+transport.Quote(name)))
	if err != nil {
		return Container{}, err
	}
	return parseInspect(name, out), nil
}

func parseInspect(name, out string) Container {
	c := Container{Name: name, Status: "absent", ExitCode: -1}
	f := strings.Fields(out)
	if len(f) > 0 {
		c.Status = f[0]
	}
	if len(f) > 1 {
		c.Image = f[1]
	}
	if len(f) > 2 {
		if n, err := strconv.Atoi(f[2]); err == nil {
			c.ExitCode = n
		}
	}
	return c
}

// EngineVersion is what an engine says of itself.
type EngineVersion struct {
	Version string // e.g. "24.0.7"
	// APIVersion is the newest Engine API it speaks, MinAPIVersion the
	// oldest it accepts ("" from engines before API 1.25, which accept
	// every version from 1.12 on).
	APIVersion, MinAPIVersion string
}

// Version returns the engine's version and the API versions it accepts.
func (d *Reader) Version(ctx context.Context) (EngineVersion, error) {
	var v EngineVersion
	found, err := d.get(ctx, "/version", &v)
	if !errors.Is(err, errNoAPI) {
		if err == nil && !found {
			err = fmt.Errorf("%s: docker API GET /version: HTTP 404", d.r.Host())
		}
		return v, err
	}
	out, err := d.cli(ctx, "docker version --format '{{.Server.Version}} {{.Server.APIVersion}} {{.Server.MinAPIVersion}}'")
	if err != nil {
		return v, err
	}
	return parseVersionLine(out), nil
}

// parseVersionLine reads "VERSION API MINAPI" as the CLI prints them; an
// old CLI prints "<no value>" for a field it does not know.
func parseVersionLine(out string) EngineVersion {
	f := strings.Fields(strings.ReplaceAll(out, "<no value>", "-"))
	get := func(i int) string {
		if i < len(f) && f[i] != "-" {
			return f[i]
		}
		return ""
	}
	return EngineVersion{Version: get(0), APIVersion: get(1), MinAPIVersion: get(2)}
}

// List returns the running containers and the host TCP ports they publish.
// A daemon that does not answer is an error.
func (d *Reader) List(ctx context.Context) ([]Container, error) {
	var list []struct {
		Names []string
		State string
		Ports []struct {
			PublicPort int
			Type       string
		}
	}
	_, err := d.get(ctx, "/containers/json", &list)
	if !errors.Is(err, errNoAPI) {
		if err != nil {
			return nil, err
		}
		cs := make([]Container, 0, len(list))
		for _, l := range list {
			c := Container{Status: l.State}
			if len(l.Names) > 0 {
				c.Name = strings.TrimPrefix(l.Names[0], "/")
			}
			seen := map[int]bool{}
			for _, p := range l.Ports {
				if p.Type == "tcp" && p.PublicPort > 0 && !seen[p.PublicPort] {
					seen[p.PublicPort] = true
					c.Ports = append(c.Ports, p.PublicPort)
				}
			}
			cs = append(cs, c)
		}
		return cs, nil
	}
	out, err := d.cli(ctx, "docker ps --format '{{.Names}}\t{{.Ports}}'")
	if err != nil {
		return nil, err
	}
	return ParsePS(out), nil
}
