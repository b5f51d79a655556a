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

func newDocker(socket string) *docker {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	return &docker{hc: &http.Client{Transport: tr}, base: "http://docker/" + dockerAPIVersion}
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

// containerSpec is what cluster-manager asks of one container.
type containerSpec struct {
	Name    string
	Image   string
	Cmd     []string
	Env     []string
	Binds   []string
	Network string
	Labels  map[string]string
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
	body := map[string]any{
		"Image": c.Image, "Cmd": c.Cmd, "Env": c.Env, "Labels": c.Labels,
		"HostConfig": map[string]any{"Binds": c.Binds, "NetworkMode": c.Network},
	}
	resp, err := d.call(ctx, http.MethodPost, "/containers/create?name="+url.QueryEscape(c.Name), body)
	var de *dockerError
	if errors.As(err, &de) && de.Status == http.StatusNotFound {
		return fmt.Errorf("%w: %s", errImageNotFound, de.Message)
	}
	if err != nil {
		return err
	}
	return resp.Body.Close()
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
