package rancherapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestEnvironment(t *testing.T) {
	f, srv := newFake(t)
	f.projects = []map[string]any{
		{"id": "1a5", "type": "project", "name": "Default", "uuid": "adminProject", "state": "active"},
		{"id": "1a7", "type": "project", "name": "Default", "uuid": "system-ha-1", "state": "active"},
		{"id": "1a9", "type": "project", "name": "Staging", "uuid": "p9", "state": "removed"},
		{"id": "1a10", "type": "project", "name": "Prod", "uuid": "p10", "state": "active"},
		{"id": "1a11", "type": "project", "name": "Prod", "uuid": "p11", "state": "active"},
	}
	c := mustClient(t, srv.URL)
	p, err := c.Environment(context.Background(), "Default")
	if err != nil || p.ID != "1a5" {
		t.Fatalf("Default = %+v, %v; want 1a5 (never System HA)", p, err)
	}
	if _, err := c.Environment(context.Background(), "Staging"); !errors.Is(err, ErrNoEnvironment) {
		t.Errorf("a removed environment: err = %v, want ErrNoEnvironment", err)
	}
	if _, err := c.Environment(context.Background(), "Prod"); err == nil || !strings.Contains(err.Error(), "1a10, 1a11") {
		t.Errorf("two environments named Prod: err = %v, want both ids named", err)
	}
	if got := f.requests[0]; got != "GET /v1/projects?all=true" {
		t.Errorf("first request %q, want the list with all=true", got)
	}
}

func TestCreateRegistrationTokenWaitsForActive(t *testing.T) {
	f, srv := newFake(t)
	polls := 0
	fp := "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"
	token := func(base, state string) map[string]any {
		return map[string]any{"id": "1c3", "type": "registrationToken", "state": state, "token": "SECRETTOKEN",
			"registrationUrl": "https://lb.example/v1/scripts/SECRETTOKEN", "image": "rancher/agent:v1.0.1",
			"command": `sudo docker run -d --privileged -e CA_FINGERPRINT="` + fp + `" -v /var/run/docker.sock:/var/run/docker.sock -v /var/lib/rancher:/var/lib/rancher rancher/agent:v1.0.1 https://lb.example/v1/scripts/SECRETTOKEN`,
			"links":   map[string]any{"self": base + "/v1/registrationtokens/1c3"}}
	}
	f.override["/v1/projects/1a5/registrationtokens"] = func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			writeJSON(w, 405, map[string]any{"type": "error", "status": 405})
			return
		}
		writeJSON(w, 201, token("http://"+r.Host, "registering"))
	}
	f.override["/v1/registrationtokens/1c3"] = func(w http.ResponseWriter, r *http.Request) {
		polls++
		state := "registering"
		if polls >= 2 {
			state = "active"
		}
		writeJSON(w, 200, token("http://"+r.Host, state))
	}
	c := mustClient(t, srv.URL)
	p := &Project{ID: "1a5", Links: map[string]string{"registrationTokens": srv.URL + "/v1/projects/1a5/registrationtokens"}}
	tok, err := c.CreateRegistrationToken(context.Background(), p, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if tok.State != "active" || polls != 2 {
		t.Errorf("state %s after %d polls, want active after 2", tok.State, polls)
	}
	if tok.CAFingerprint != fp || tok.Image != "rancher/agent:v1.0.1" || !strings.HasSuffix(tok.RegistrationURL, "/v1/scripts/SECRETTOKEN") {
		t.Errorf("token fields: %+v", *tok)
	}
	for _, s := range []string{tok.String(), fmt.Sprintf("%v %+v %#v", tok, *tok, *tok)} {
		if strings.Contains(s, "SECRETTOKEN") {
			t.Errorf("formatting shows the token: %s", s)
		}
	}
}

func TestProjectHostsAndRemoval(t *testing.T) {
	f, srv := newFake(t)
	base := srv.URL
	f.override["/v1/projects/1a5/hosts"] = func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"type": "collection", "data": []any{
			map[string]any{"id": "1h1", "type": "host", "state": "active", "agentState": nil, "hostname": "h1",
				"labels":      map[string]any{"io.haplan.host": "h1", "zone": "a"},
				"ipAddresses": []any{map[string]any{"address": "10.213.2.1"}},
				"links":       map[string]any{"self": base + "/v1/hosts/1h1"},
				"actions":     map[string]any{"deactivate": base + "/v1/hosts/1h1/?action=deactivate"}},
			map[string]any{"id": "1h2", "type": "host", "state": "removed", "hostname": "old"},
		}})
	}
	f.override["/v1/hosts/1h1/"] = func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 202, map[string]any{"id": "1h1"}) }
	f.override["/v1/hosts/1h1"] = func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 202, map[string]any{"id": "1h1"}) }
	c := mustClient(t, srv.URL)
	hosts, err := c.ProjectHosts(context.Background(), &Project{ID: "1a5", Links: map[string]string{"hosts": base + "/v1/projects/1a5/hosts"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 1 {
		t.Fatalf("hosts = %+v, want the one not removed", hosts)
	}
	h := hosts[0]
	if diff := cmp.Diff(map[string]string{"io.haplan.host": "h1", "zone": "a"}, h.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if !h.Healthy() || len(h.Addresses) != 1 || h.Addresses[0] != "10.213.2.1" {
		t.Errorf("host = %+v", h)
	}
	if err := c.DeactivateHost(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteHost(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	want := []string{"GET /v1/projects/1a5/hosts?include=ipAddresses", "POST /v1/hosts/1h1/?action=deactivate", "DELETE /v1/hosts/1h1"}
	if diff := cmp.Diff(want, f.requests); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	h.Actions = nil
	if err := c.DeactivateHost(context.Background(), h); err == nil {
		t.Error("deactivate without the action: want an error naming the state")
	}
}

func mustClient(t *testing.T, u string) *Client {
	t.Helper()
	c, err := New(u, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
