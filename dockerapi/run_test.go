package dockerapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// engine is a Docker Engine API on a unix socket that records requests.
type engine struct {
	mu       sync.Mutex
	requests []string
	create   map[string]any
	status   int // of the create; 0 means 201
}

func (e *engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests = append(e.requests, r.Method+" "+r.URL.Path)
	switch {
	case r.URL.Path == "/containers/create":
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &e.create)
		if e.status != 0 {
			w.WriteHeader(e.status)
			_, _ = w.Write([]byte(`{"message":"No such image: rancher/agent:v1.0.1"}`))
			return
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"Id":"c0ffee"}`))
	case r.URL.Path == "/containers/c0ffee/start":
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func engineReader(t *testing.T, e *engine) *Reader {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &Reader{r: hostOnly("h1"), timeout: 5 * time.Second,
		dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}
}

func TestRunCreatesAndStarts(t *testing.T) {
	e := &engine{}
	d := engineReader(t, e)
	id, err := d.Run(context.Background(), RunSpec{Image: "rancher/agent:v1.0.1", Cmd: []string{"https://lb/v1/scripts/TOKEN"},
		Env: []string{"CA_FINGERPRINT=AB"}, Binds: []string{"/var/lib/rancher:/var/lib/rancher"}, Privileged: true})
	if err != nil || id != "c0ffee" {
		t.Fatalf("Run = %q, %v", id, err)
	}
	if diff := cmp.Diff([]string{"POST /containers/create", "POST /containers/c0ffee/start"}, e.requests); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	want := map[string]any{"Image": "rancher/agent:v1.0.1", "Cmd": []any{"https://lb/v1/scripts/TOKEN"}, "Env": []any{"CA_FINGERPRINT=AB"},
		"HostConfig": map[string]any{"Binds": []any{"/var/lib/rancher:/var/lib/rancher"}, "Privileged": true}}
	if diff := cmp.Diff(want, e.create); diff != "" {
		t.Errorf("create body (-want +got):\n%s", diff)
	}
}

func TestRunErrorsNameNodeAndPathNotTheSpec(t *testing.T) {
	e := &engine{status: http.StatusNotFound}
	d := engineReader(t, e)
	_, err := d.Run(context.Background(), RunSpec{Image: "rancher/agent:v1.0.1", Cmd: []string{"https://lb/v1/scripts/TOKEN"}})
	if err == nil || !strings.Contains(err.Error(), "h1: docker API POST /containers/create: HTTP 404 No such image") || strings.Contains(err.Error(), "TOKEN") {
		t.Errorf("error %v: want the node, the request and the daemon's message, never the spec", err)
	}
	noAPI := &Reader{r: hostOnly("h2"), timeout: time.Second}
	if _, err := noAPI.Run(context.Background(), RunSpec{}); !errors.Is(err, ErrNoAPIForRun) {
		t.Errorf("without the socket: %v, want ErrNoAPIForRun", err)
	}
}
