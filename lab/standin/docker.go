package standin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// dockerAPIVersion is the Engine API version cluster-manager v0.1.4 pins
// (docker/docker.go: client.NewClient("unix:///var/run/docker.sock",
// "v1.22", ...)). A daemon whose MinAPIVersion is above it refuses every
// call, as it would refuse the real cluster-manager.
const dockerAPIVersion = "v1.22"

// docker is the small part of the Engine API cluster-manager uses to run
// its containers, over the node's socket.
type docker struct {
	hc   *http.Client
	base string // "http://docker/v1.22"
}

func newDocker(socket string) *docker { return newDockerVersion(socket, dockerAPIVersion) }

// newDockerVersion talks Engine API version (as "v1.18") over socket.
func newDockerVersion(socket, version string) *docker {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	return &docker{hc: &http.Client{Transport: tr}, base: "http://docker/" + version}
}

// dockerError is an error answer of the Engine API.
type dockerError struct {
	Status  int
	Message string
}

func (e *dockerError) Error() string {
	return fmt.Sprintf("Error response from daemon: %s (HTTP %d)", e.Message, e.Status)
}

var errImageNotFound = errors.New("image not found")

// callTimeout bounds every Engine API call but a pull, whose stream lasts
// as long as the pull does.
const callTimeout = 30 * time.Second

func (d *docker) call(ctx context.Context, method, path string, body any) (*http.Response, error) {
	return d.callWithin(ctx, callTimeout, method, path, body)
}

func (d *docker) callWithin(ctx context.Context, limit time.Duration, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	cancel := context.CancelFunc(func() {})
	if limit > 0 {
		ctx, cancel = context.WithTimeout(ctx, limit)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, rd)
	if err != nil {
		cancel()
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = cancelOnClose{resp.Body, cancel}
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotModified {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var m struct {
			Message string `json:"message"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &m) == nil && m.Message != "" {
			msg = m.Message
		}
		return nil, &dockerError{Status: resp.StatusCode, Message: msg}
	}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error { err := c.ReadCloser.Close(); c.cancel(); return err }

// containerSpec is what cluster-manager (and the agent's run.sh) asks of
// one container.
type containerSpec struct {
	Name    string
	Image   string
	Cmd     []string
	Env     []string
	Binds   []string
	Network string
	Labels  map[string]string
	// What run.sh's docker run adds for the agent containers.
	Volumes     []string // anonymous volumes (-v /path)
	VolumesFrom []string
	PidMode     string
	Privileged  bool
	Restart     string // restart policy name
}

// recreate removes a container of that name and creates and starts it
// anew; an image that is not on the node is pulled first, as
// cluster-manager's recreate does on IsErrImageNotFound. Pull progress
// goes to out, as DisplayJSONMessagesStream writes it to stdout.
func (d *docker) recreate(ctx context.Context, c containerSpec, out io.Writer) error {
	if resp, err := d.call(ctx, http.MethodDelete, "/containers/"+c.Name+"?force=1&v=1", nil); err == nil {
		resp.Body.Close()
	} else if de := (*dockerError)(nil); !errors.As(err, &de) || de.Status != http.StatusNotFound {
		return err
	}
	err := d.create(ctx, c)
	if errors.Is(err, errImageNotFound) {
		if err = d.pull(ctx, c.Image, out); err == nil {
			err = d.create(ctx, c)
		}
	}
	if err != nil {
		return err
	}
	resp, err := d.call(ctx, http.MethodPost, "/containers/"+c.Name+"/start", nil)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

func (d *docker) create(ctx context.Context, c containerSpec) error {
	_, err := d.createID(ctx, c)
	return err
}

// createID creates c and returns the new container's id.
func (d *docker) createID(ctx context.Context, c containerSpec) (string, error) {
	hc := map[string]any{"Binds": c.Binds, "NetworkMode": c.Network}
	if c.PidMode != "" {
		hc["PidMode"] = c.PidMode
	}
	if c.Privileged {
		hc["Privileged"] = true
	}
	if c.Restart != "" {
		hc["RestartPolicy"] = map[string]any{"Name": c.Restart}
	}
	if len(c.VolumesFrom) > 0 {
		hc["VolumesFrom"] = c.VolumesFrom
	}
	body := map[string]any{
		"Image": c.Image, "Cmd": c.Cmd, "Env": c.Env, "Labels": c.Labels,
		"HostConfig": hc,
	}
	if len(c.Volumes) > 0 {
		vs := map[string]any{}
		for _, v := range c.Volumes {
			vs[v] = map[string]any{}
		}
		body["Volumes"] = vs
	}
	q := ""
	if c.Name != "" {
		q = "?name=" + url.QueryEscape(c.Name)
	}
	resp, err := d.call(ctx, http.MethodPost, "/containers/create"+q, body)
	var de *dockerError
	if errors.As(err, &de) && de.Status == http.StatusNotFound {
		return "", fmt.Errorf("%w: %s", errImageNotFound, de.Message)
	}
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		ID string `json:"Id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", fmt.Errorf("create container: %w", err)
	}
	return out.ID, nil
}

// pull pulls image ("name:tag"); an error in the progress stream fails it.
func (d *docker) pull(ctx context.Context, image string, out io.Writer) error {
	name, tag := image, "latest"
	if strings.Contains(image, "@") {
		tag = "" // a digest: fromImage names it whole
	} else if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		name, tag = image[:i], image[i+1:]
	}
	q := "fromImage=" + url.QueryEscape(name)
	if tag != "" {
		q += "&tag=" + url.QueryEscape(tag)
	}
	resp, err := d.callWithin(ctx, 0, http.MethodPost, "/images/create?"+q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var m struct {
			Status string `json:"status"`
			ID     string `json:"id"`
			Error  string `json:"error"`
		}
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
		if m.Status != "" && out != nil {
			fmt.Fprintln(out, strings.TrimSpace(m.ID+" "+m.Status))
		}
	}
	return sc.Err()
}

// running reports whether the named container exists and runs.
func (d *docker) running(ctx context.Context, name string) (bool, error) {
	resp, err := d.call(ctx, http.MethodGet, "/containers/"+name+"/json", nil)
	var de *dockerError
	if errors.As(err, &de) && de.Status == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var c struct {
		State struct {
			Running bool `json:"Running"`
		} `json:"State"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		return false, err
	}
	return c.State.Running, nil
}

// containerJSON is the part of an inspect the agent reads. Volumes is the
// pre-1.20 shape (container path -> host path) a v1.18 client gets.
type containerJSON struct {
	ID     string `json:"Id"`
	Config struct {
		Image string `json:"Image"`
	} `json:"Config"`
	State struct {
		Running  bool `json:"Running"`
		ExitCode int  `json:"ExitCode"`
	} `json:"State"`
	Volumes map[string]string `json:"Volumes"`
	Mounts  []struct {
		Source      string `json:"Source"`
		Destination string `json:"Destination"`
	} `json:"Mounts"`
}

// inspect returns the container; ok is false when there is none.
func (d *docker) inspect(ctx context.Context, name string) (containerJSON, bool, error) {
	resp, err := d.call(ctx, http.MethodGet, "/containers/"+url.PathEscape(name)+"/json", nil)
	var de *dockerError
	if errors.As(err, &de) && de.Status == http.StatusNotFound {
		return containerJSON{}, false, nil
	}
	if err != nil {
		return containerJSON{}, false, err
	}
	defer resp.Body.Close()
	var c containerJSON
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		return containerJSON{}, false, err
	}
	return c, true, nil
}

// remove removes a container with its anonymous volumes, running or not.
func (d *docker) remove(ctx context.Context, name string) error {
	resp, err := d.call(ctx, http.MethodDelete, "/containers/"+url.PathEscape(name)+"?force=1&v=1", nil)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// start starts a created container.
func (d *docker) start(ctx context.Context, id string) error {
	resp, err := d.call(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/start", nil)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// wait waits for a container to stop and returns its exit code.
func (d *docker) wait(ctx context.Context, id string) (int, error) {
	resp, err := d.callWithin(ctx, 0, http.MethodPost, "/containers/"+url.PathEscape(id)+"/wait", nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		StatusCode int `json:"StatusCode"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, err
	}
	return out.StatusCode, nil
}

// logs returns a stopped container's stdout and stderr, demultiplexed
// (the stream of a container without a TTY: 8-byte frame headers).
func (d *docker) logs(ctx context.Context, id string) ([]byte, error) {
	resp, err := d.call(ctx, http.MethodGet, "/containers/"+url.PathEscape(id)+"/logs?stdout=1&stderr=1", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return demux(b), nil
}

func demux(b []byte) []byte {
	var out []byte
	for len(b) >= 8 && b[0] <= 2 && b[1] == 0 && b[2] == 0 && b[3] == 0 {
		n := int(b[4])<<24 | int(b[5])<<16 | int(b[6])<<8 | int(b[7])
		b = b[8:]
		if n > len(b) {
			n = len(b)
		}
		out = append(out, b[:n]...)
		b = b[n:]
	}
	return append(out, b...)
}

// getJSON GETs path and decodes the answer into v.
func (d *docker) getJSON(ctx context.Context, path string, v any) error {
	resp, err := d.call(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}
