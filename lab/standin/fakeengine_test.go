package standin

import (
	"encoding/binary"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeEngine is a Docker Engine API on a unix socket: enough of it for
// the agent's run.sh (v1.18 paths).
type fakeEngine struct {
	t      *testing.T
	Socket string
	mu     sync.Mutex
	images map[string]bool
	byName map[string]*fakeContainer
	nextID int
	calls  []string
	// OnStart runs a started container's command (state prints "Rancher
	// State"); nil leaves it running.
	OnStart func(c *fakeContainer)
}

type fakeContainer struct {
	ID, Name string
	Config   map[string]any
	Running  bool
	Output   string
}

func (c *fakeContainer) hostConfig() map[string]any {
	m, _ := c.Config["HostConfig"].(map[string]any)
	return m
}

func (c *fakeContainer) strings(key string) []string {
	var out []string
	src := c.Config[key]
	if hc := c.hostConfig(); src == nil && hc != nil {
		src = hc[key]
	}
	if l, ok := src.([]any); ok {
		for _, v := range l {
			out = append(out, v.(string))
		}
	}
	return out
}

func newFakeEngine(t *testing.T, images ...string) *fakeEngine {
	t.Helper()
	e := &fakeEngine{t: t, Socket: filepath.Join(t.TempDir(), "docker.sock"), images: map[string]bool{}, byName: map[string]*fakeContainer{}}
	for _, i := range images {
		e.images[i] = true
	}
	ln, err := net.Listen("unix", e.Socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return e
}

// add registers a container that exists before the test (the
// registration container itself, say).
func (e *fakeEngine) add(name, id, image string, running bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.byName[name] = &fakeContainer{ID: id, Name: name, Config: map[string]any{"Image": image}, Running: running}
}

func (e *fakeEngine) get(name string) *fakeContainer {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.byName {
		if c.Name == name || c.ID == name || (len(name) >= 12 && strings.HasPrefix(c.ID, name)) {
			return c
		}
	}
	return nil
}

func (e *fakeEngine) Calls() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.calls...)
}

func (e *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/v1.18")
	if path == r.URL.Path {
		http.Error(w, `{"message":"the agent speaks v1.18"}`, http.StatusBadRequest)
		return
	}
	e.mu.Lock()
	e.calls = append(e.calls, r.Method+" "+path)
	e.mu.Unlock()
	js := func(v any) { w.Header().Set("Content-Type", "application/json"); json.NewEncoder(w).Encode(v) }
	notFound := func() { w.WriteHeader(http.StatusNotFound); js(map[string]string{"message": "No such container"}) }
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case path == "/version":
		js(map[string]any{"Version": "20.10.24+dfsg1", "ApiVersion": "1.41", "GoVersion": "go1.19.8", "GitCommit": "297e128", "Os": "linux", "Arch": "amd64"})
	case path == "/info":
		js(map[string]any{"Containers": len(e.byName), "Images": len(e.images), "Driver": "overlay2", "Name": "h1", "ID": "ABCD"})
	case path == "/containers/create" && r.Method == http.MethodPost:
		var cfg map[string]any
		json.NewDecoder(r.Body).Decode(&cfg)
		e.mu.Lock()
		defer e.mu.Unlock()
		name := r.URL.Query().Get("name")
		if e.byName[name] != nil {
			w.WriteHeader(http.StatusConflict)
			js(map[string]string{"message": "Conflict. The name is already in use"})
			return
		}
		if !e.images[cfg["Image"].(string)] {
			notFound()
			return
		}
		e.nextID++
		id := strings.Repeat("0", 63) + string(rune('0'+e.nextID))
		e.byName[name] = &fakeContainer{ID: id, Name: name, Config: cfg}
		w.WriteHeader(http.StatusCreated)
		js(map[string]string{"Id": id})
	case len(parts) == 3 && parts[0] == "containers":
		c := e.get(parts[1])
		if c == nil {
			notFound()
			return
		}
		switch parts[2] {
		case "json":
			out := map[string]any{"Id": c.ID, "Name": "/" + c.Name, "Config": map[string]any{"Image": c.Config["Image"]},
				"State": map[string]any{"Running": c.Running}}
			if vs, ok := c.Config["Volumes"].(map[string]any); ok {
				m := map[string]string{}
				for k := range vs {
					m[k] = "/var/lib/docker/volumes/" + c.ID[:12] + "/_data"
				}
				out["Volumes"] = m
			}
			js(out)
		case "start":
			c.Running = true
			if e.OnStart != nil {
				e.OnStart(c)
			}
			w.WriteHeader(http.StatusNoContent)
		case "wait":
			c.Running = false
			js(map[string]int{"StatusCode": 0})
		case "logs":
			hdr := make([]byte, 8)
			hdr[0] = 1
			binary.BigEndian.PutUint32(hdr[4:], uint32(len(c.Output)))
			w.Write(append(hdr, c.Output...))
		default:
			notFound()
		}
	case len(parts) == 2 && parts[0] == "containers" && r.Method == http.MethodDelete:
		c := e.get(parts[1])
		if c == nil {
			notFound()
			return
		}
		e.mu.Lock()
		delete(e.byName, c.Name)
		e.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		notFound()
	}
}
