package rancherapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeCattle imitates the v1.0.1 server's answers: absolute, lower-cased
// links built from the request's Host, the createscript URL with "/?", and
// the quirks of cattle v0.159.7 that a client must live with:
//
//   - the enabled PUT answers the cached, old value; the new one shows on a
//     later GET (SettingsUtils.changeSetting defers ArchaiusUtil.refresh,
//     HaConfigManager.updateInternal returns getHaConfig()); staleGets
//     GETs after a PUT still show the old value;
//   - /v1/projects lists only the caller's member projects unless
//     all=true (ProjectResourceManager.listInternal,
//     AuthDaoImpl.getAccessibleProjects); System HA is never a member
//     project of the admin;
//   - with access control on (keys set), every /v1 request without the
//     right HTTP Basic key pair answers 401; /ping stays open (web.xml
//     ignore-prefixes).
type fakeCattle struct {
	mu      sync.Mutex
	enabled bool
	// cachedEnabled is what the API answers; staleGets counts the GETs
	// that still see it after a PUT.
	cachedEnabled bool
	staleGets     int
	staleLeft     int
	// access and secret, when set, turn access control on.
	access, secret string
	clusterSize    int
	dbHost         string
	projects       []map[string]any
	hosts          []map[string]any
	caPEM          string
	noCA           bool     // /v1/scripts/ca.crt answers 404, as before the first master made the certificate
	requests       []string // "METHOD path?query"
	bodies         []string // request bodies
	// override answers a path instead of the normal handler.
	override map[string]http.HandlerFunc
}

func newFake(t *testing.T) (*fakeCattle, *httptest.Server) {
	t.Helper()
	f := &fakeCattle{dbHost: "10.213.3.1", override: map[string]http.HandlerFunc{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeCattle) haConfig(base string) map[string]any {
	self := base + "/v1/haconfigs/haconfig"
	return map[string]any{
		"id": "haConfig", "type": "haConfig", "baseType": "haConfig",
		"enabled": f.cachedEnabled, "clusterSize": f.clusterSize, "dbHost": f.dbHost, "dbSize": -1,
		"links":   map[string]any{"self": self, "schemas": base + "/v1/schemas", "dbdump": self + "/dbdump"},
		"actions": map[string]any{"createscript": self + "/?action=createscript"},
	}
}

func (f *fakeCattle) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	key := r.Method + " " + r.URL.Path
	if r.URL.RawQuery != "" {
		key += "?" + r.URL.RawQuery
	}
	f.requests = append(f.requests, key)
	f.bodies = append(f.bodies, string(body))
	if h, ok := f.override[r.URL.Path]; ok {
		h(w, r)
		return
	}
	base := "http://" + r.Host
	if f.access != "" && strings.HasPrefix(r.URL.Path, "/v1") {
		if a, s, ok := r.BasicAuth(); !ok || a != f.access || s != f.secret {
			writeJSON(w, 401, map[string]any{"type": "error", "status": 401, "code": "Unauthorized", "message": "Unauthorized"})
			return
		}
	}
	if key == "GET /v1/projects" || key == "GET /v1/projects?all=true" {
		data := []map[string]any{}
		for _, p := range f.projects {
			if r.URL.Query().Get("all") == "true" || p["uuid"] == "adminProject" {
				data = append(data, p)
			}
		}
		writeJSON(w, 200, map[string]any{"type": "collection", "resourceType": "project", "data": data})
		return
	}
	if r.Method == http.MethodGet && r.URL.Path == "/v1/projects/1a7/hosts" {
		// cattle v0.159.7: no agentIpAddress on a host; its ipAddresses
		// are embedded only with include=ipAddresses.
		embed := r.URL.Query().Get("include") == "ipAddresses"
		data := []map[string]any{}
		for _, h := range f.hosts {
			out := map[string]any{}
			for k, v := range h {
				if k != "ipAddresses" || embed {
					out[k] = v
				}
			}
			data = append(data, out)
		}
		writeJSON(w, 200, map[string]any{"type": "collection", "resourceType": "host", "data": data})
		return
	}
	switch key {
	case "GET /ping":
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "pong\n")
	case "GET /v1/haconfigs":
		if f.staleLeft > 0 {
			f.staleLeft--
		} else {
			f.cachedEnabled = f.enabled
		}
		writeJSON(w, 200, map[string]any{
			"type": "collection", "resourceType": "haConfig",
			"links": map[string]any{"self": base + "/v1/haconfigs"},
			"data":  []any{f.haConfig(base)},
		})
	case "POST /v1/haconfigs/haconfig/?action=createscript":
		var in map[string]any
		if err := json.Unmarshal(body, &in); err != nil || in["hostRegistrationUrl"] == nil || in["hostRegistrationUrl"] == "" {
			writeJSON(w, 422, map[string]any{"id": "x", "type": "error", "status": 422, "code": "MissingRequired",
				"message": nil, "detail": nil, "fieldName": "hostRegistrationUrl", "baseType": "error"})
			return
		}
		f.clusterSize = int(in["clusterSize"].(float64))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", "attachment; filename=rancher-ha.sh")
		fmt.Fprintf(w, "#!/bin/sh\nset -e\nexport CATTLE_HA_CLUSTER_SIZE=%d\n", f.clusterSize)
	case "PUT /v1/haconfigs/haconfig":
		var in struct{ Enabled *bool }
		if err := json.Unmarshal(body, &in); err != nil || in.Enabled == nil {
			writeJSON(w, 422, map[string]any{"type": "error", "status": 422, "code": "InvalidFormat"})
			return
		}
		f.enabled = *in.Enabled
		f.staleLeft = f.staleGets
		writeJSON(w, 200, f.haConfig(base)) // the cached, old value
	case "GET /v1/scripts/ca.crt":
		if f.noCA {
			writeJSON(w, 404, map[string]any{"type": "error", "status": 404, "code": "NotFound"})
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, f.caPEM)
	default:
		writeJSON(w, 404, map[string]any{"type": "error", "status": 404, "code": "NotFound", "message": "not found: " + key})
	}
}

func (f *fakeCattle) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func (f *fakeCattle) set(path string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.override[path] = h
}

// answer returns a handler with a fixed status, content type and body.
func answer(status int, ctype, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if ctype != "" {
			w.Header().Set("Content-Type", ctype)
		}
		w.WriteHeader(status)
		_, _ = io.Copy(w, strings.NewReader(body))
	}
}

func systemHAProject(base string) map[string]any {
	return map[string]any{
		"id": "1a7", "type": "project", "uuid": "system-ha-4f2c9a", "name": "System HA", "state": "active",
		"links": map[string]any{"self": base + "/v1/projects/1a7", "hosts": base + "/v1/projects/1a7/hosts"},
	}
}
