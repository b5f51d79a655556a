package rancherapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newClient(t *testing.T, url string) *Client {
	t.Helper()
	c, err := New(url, Options{Timeout: 10 * time.Second, SettleTimeout: 2 * time.Second, SettleEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNew(t *testing.T) {
	tests := []struct {
		url     string
		want    string // endpoint("/ping")
		wantErr bool
	}{
		{url: "http://10.213.1.10:8080", want: "http://10.213.1.10:8080/ping"},
		{url: "http://10.213.1.10:8080/", want: "http://10.213.1.10:8080/ping"},
		{url: "https://lb.example/v1", want: "https://lb.example/ping"},
		{url: "ftp://x", wantErr: true},
		{url: "10.213.1.10:8080", wantErr: true},
		{url: "http://admin:pw@x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			c, err := New(tt.url, Options{})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), "pw") {
					t.Errorf("error leaks the password: %v", err)
				}
				return
			}
			if got := c.endpoint("/ping"); got != tt.want {
				t.Errorf("endpoint = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHappyPath(t *testing.T) {
	f, srv := newFake(t)
	c := newClient(t, srv.URL)
	ctx := context.Background()

	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	hc, err := c.HAConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := &HAConfig{
		ID: "haConfig", Type: "haConfig", DBHost: "10.213.3.1", DBSize: -1,
		Actions: map[string]string{"createscript": srv.URL + "/v1/haconfigs/haconfig/?action=createscript"},
		Links: map[string]string{"self": srv.URL + "/v1/haconfigs/haconfig", "schemas": srv.URL + "/v1/schemas",
			"dbdump": srv.URL + "/v1/haconfigs/haconfig/dbdump"},
	}
	if diff := cmp.Diff(want, hc); diff != "" {
		t.Errorf("HAConfig (-want +got):\n%s", diff)
	}

	script, err := c.CreateScript(ctx, HAConfigInput{ClusterSize: 5, HostRegistrationURL: "https://lb.lab", Key: "PRIVATE-KEY", HTTPSPort: 8443})
	if err != nil {
		t.Fatal(err)
	}
	if want := "#!/bin/sh\nset -e\nexport CATTLE_HA_CLUSTER_SIZE=5\n"; string(script) != want {
		t.Errorf("script = %q, want %q", script, want)
	}
	f.staleGets = 2 // the PUT's answer and two GETs after it hold the old value
	got, err := c.SetEnabled(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Enabled || got.ClusterSize != 5 {
		t.Errorf("after SetEnabled: %+v", got)
	}
	wantReqs := []string{
		"GET /ping",
		"GET /v1/haconfigs",
		"GET /v1/haconfigs",
		"POST /v1/haconfigs/haconfig/?action=createscript",
		"GET /v1/haconfigs",
		"PUT /v1/haconfigs/haconfig",
		"GET /v1/haconfigs",
		"GET /v1/haconfigs",
		"GET /v1/haconfigs",
	}
	if diff := cmp.Diff(wantReqs, f.seen()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(f.bodies[3]), &body); err != nil {
		t.Fatal(err)
	}
	wantBody := map[string]any{
		"clusterSize": 5.0, "hostRegistrationUrl": "https://lb.lab", "key": "PRIVATE-KEY",
		"httpPort": 80.0, "httpsPort": 8443.0, "ppHttpPort": 81.0, "ppHttpsPort": 444.0, "redisPort": 6379.0,
		"swarmPort": 2376.0, "zookeeperClientPort": 2181.0, "zookeeperQuorumPort": 2888.0, "zookeeperLeaderPort": 3888.0,
	}
	if diff := cmp.Diff(wantBody, body); diff != "" {
		t.Errorf("createscript body (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(`{"enabled":true}`, f.bodies[5]); diff != "" {
		t.Errorf("PUT body (-want +got):\n%s", diff)
	}
}

func TestLinksFollowedOnOurOrigin(t *testing.T) {
	f, srv := newFake(t)
	// Behind a TLS-terminating LB v1.0.1 builds links with the wrong
	// scheme and host; the path is what we follow.
	f.set("/v1/haconfigs", answer(200, "application/json", `{"type":"collection","data":[{"id":"haConfig","type":"haConfig","enabled":false,
		"links":{"self":"http://elsewhere.invalid:9/v1/haconfigs/haconfig"},
		"actions":{"createscript":"http://elsewhere.invalid:9/v1/haconfigs/haconfig/?action=createscript"}}]}`))
	c := newClient(t, srv.URL)
	if _, err := c.CreateScript(context.Background(), HAConfigInput{HostRegistrationURL: "https://lb"}); err != nil {
		t.Fatal(err)
	}
	if got := f.seen(); got[len(got)-1] != "POST /v1/haconfigs/haconfig/?action=createscript" {
		t.Errorf("requests = %q", got)
	}
}

func TestHAConfigInputString(t *testing.T) {
	in := HAConfigInput{HostRegistrationURL: "https://lb", Key: "-----BEGIN PRIVATE KEY-----secret"}
	for _, s := range []string{fmt.Sprint(in), fmt.Sprintf("%+v", in), fmt.Sprintf("%#v", in), fmt.Sprint(&in)} {
		if strings.Contains(s, "secret") {
			t.Errorf("formatted input leaks the key: %s", s)
		}
		if !strings.Contains(s, "https://lb") {
			t.Errorf("formatted input lost the URL: %s", s)
		}
	}
}

func TestHAHosts(t *testing.T) {
	active, reconnecting := "active", "reconnecting"
	tests := []struct {
		name     string
		projects func(base string) []map[string]any
		hosts    []map[string]any
		want     []Host
		wantErr  error
	}{
		{
			name: "no system-ha project",
			projects: func(string) []map[string]any {
				return []map[string]any{{"id": "1a5", "type": "project", "uuid": "adminProject", "state": "active"}}
			},
			wantErr: ErrNoHAProject,
		},
		{
			name: "agent active, agent reconnecting, agent state null (fresh), removed",
			projects: func(base string) []map[string]any {
				return []map[string]any{{"id": "1a5", "type": "project", "uuid": "adminProject", "state": "active"}, systemHAProject(base)}
			},
			hosts: []map[string]any{
				{"id": "1h1", "type": "host", "state": "active", "agentState": active, "hostname": "rs1", "ipAddresses": []any{map[string]any{"address": "10.0.0.1"}}},
				{"id": "1h2", "type": "host", "state": "active", "agentState": reconnecting, "hostname": "rs2", "ipAddresses": []any{map[string]any{"address": "10.0.0.2"}}},
				{"id": "1h3", "type": "host", "state": "active", "agentState": nil, "hostname": "rs3", "ipAddresses": []any{map[string]any{"address": "10.0.0.3"}}},
				{"id": "1h4", "type": "host", "state": "removed", "agentState": active},
			},
			want: []Host{
				{ID: "1h1", Hostname: "rs1", Addresses: []string{"10.0.0.1"}, State: "active", AgentState: "active"},
				{ID: "1h2", Hostname: "rs2", Addresses: []string{"10.0.0.2"}, State: "active", AgentState: "reconnecting"},
				{ID: "1h3", Hostname: "rs3", Addresses: []string{"10.0.0.3"}, State: "active"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newFake(t)
			f.projects = tt.projects(srv.URL)
			f.hosts = tt.hosts
			got, err := newClient(t, srv.URL).HAHosts(context.Background())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("HAHosts error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("HAHosts (-want +got):\n%s", diff)
			}
			if n := 0; got != nil {
				for _, h := range got {
					if h.Healthy() {
						n++
					}
				}
				if n != 2 {
					t.Errorf("%d healthy hosts, want 2 (state active, agentState null or active)", n)
				}
			}
		})
	}
}

// The admin is not a member of System HA: without all=true the project
// list hides it (cattle v0.159.7 ProjectResourceManager.listInternal).
func TestHAHostsAsksForAllProjects(t *testing.T) {
	f, srv := newFake(t)
	f.projects = []map[string]any{{"id": "1a5", "type": "project", "uuid": "adminProject", "state": "active"}, systemHAProject(srv.URL)}
	f.hosts = []map[string]any{{"id": "1h1", "state": "active", "agentState": "active"}}
	if _, err := newClient(t, srv.URL).HAHosts(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.seen(); len(got) == 0 || got[0] != "GET /v1/projects?all=true" {
		t.Errorf("requests = %v, want the project list with all=true first", got)
	}
}

// Without the embedding, each host's ipAddresses link is followed.
func TestHAHostsFollowsIPAddressesLink(t *testing.T) {
	f, srv := newFake(t)
	f.projects = []map[string]any{systemHAProject(srv.URL)}
	f.hosts = []map[string]any{{"id": "1h1", "state": "active", "links": map[string]any{"ipAddresses": srv.URL + "/v1/hosts/1h1/ipaddresses"}}}
	f.set("/v1/projects/1a7/hosts", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"type": "collection", "data": f.hosts}) // ignores include
	})
	f.set("/v1/hosts/1h1/ipaddresses", answer(200, "application/json", `{"type":"collection","data":[{"type":"ipAddress","address":"10.0.0.9","state":"active"}]}`))
	hosts, err := newClient(t, srv.URL).HAHosts(context.Background())
	if err != nil || len(hosts) != 1 || !slices.Equal(hosts[0].Addresses, []string{"10.0.0.9"}) {
		t.Fatalf("HAHosts = %+v, %v; want the address from the link", hosts, err)
	}
}

func TestHAHostsPagination(t *testing.T) {
	f, srv := newFake(t)
	f.set("/v1/projects", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("marker") == "" {
			writeJSON(w, 200, map[string]any{"type": "collection", "data": []any{},
				"pagination": map[string]any{"next": "http://" + r.Host + "/v1/projects?all=true&marker=m2", "partial": true}})
			return
		}
		writeJSON(w, 200, map[string]any{"type": "collection", "data": []any{systemHAProject("http://" + r.Host)}})
	})
	f.hosts = []map[string]any{{"id": "1h1", "state": "active", "agentState": "active"}}
	hosts, err := newClient(t, srv.URL).HAHosts(context.Background())
	if err != nil || len(hosts) != 1 || !hosts[0].Healthy() {
		t.Fatalf("HAHosts = %v, %v; want one healthy host", hosts, err)
	}
}

// Access control on: /v1 without the key pair is a 401 that says what to
// do; with it, calls work; /ping never needs it (cattle web.xml).
func TestAPIKey(t *testing.T) {
	f, srv := newFake(t)
	f.access, f.secret = "ACCESS1", "SECRET1"
	c, err := New(srv.URL, Options{UnauthorizedHint: "set rancher.apiKey"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Errorf("Ping without a key: %v", err)
	}
	_, err = c.HAConfig(context.Background())
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "set rancher.apiKey") {
		t.Errorf("HAConfig without a key = %v, want a 401 with the hint", err)
	}
	c, err = New(srv.URL, Options{AccessKey: "ACCESS1", SecretKey: "SECRET1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.HAConfig(context.Background()); err != nil {
		t.Errorf("HAConfig with the key: %v", err)
	}
	c, _ = New(srv.URL, Options{AccessKey: "ACCESS1", SecretKey: "WRONG"})
	if _, err := c.HAConfig(context.Background()); !errors.Is(err, ErrUnauthorized) || strings.Contains(err.Error(), "WRONG") {
		t.Errorf("HAConfig with a wrong secret = %v", err)
	}
}

func testCertPEM(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{Organization: []string{"cattle"}},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<32, 0), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestCAChain(t *testing.T) {
	ca, other := testCertPEM(t), testCertPEM(t)
	chain := string(ca) + string(other)
	tests := []struct {
		name    string
		body    string
		want    string
		wantErr bool
	}{
		{name: "once", body: string(ca), want: string(ca)},
		{name: "twice (v1.0.1 double write)", body: string(ca) + string(ca), want: string(ca)},
		{name: "second copy cut off", body: string(ca) + string(ca[:40]), want: string(ca)},
		{name: "a chain of two", body: chain, want: chain},
		{name: "a chain of two, twice", body: chain + chain, want: chain},
		{name: "no final line break, twice", body: strings.TrimSuffix(string(ca), "\n") + strings.TrimSuffix(string(ca), "\n"), want: strings.TrimSuffix(string(ca), "\n")},
		{name: "a chain of two, the second copy cut in its second certificate", body: chain + string(ca) + string(other[:60]), want: chain},
		{name: "empty", body: "", wantErr: true},
		{name: "html", body: "<html><title>Oops</title></html>", wantErr: true},
		{name: "private key", body: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", wantErr: true},
		{name: "corrupt certificate", body: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newFake(t)
			f.caPEM = tt.body
			got, err := newClient(t, srv.URL).CAChain(context.Background())
			if tt.wantErr {
				var pe *ProtocolError
				if !errors.As(err, &pe) {
					t.Fatalf("err = %v, want *ProtocolError", err)
				}
				if strings.Contains(err.Error(), "AAAA") && strings.Contains(tt.body, "PRIVATE") {
					t.Errorf("error echoes key material: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("CAChain (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("no certificate yet", func(t *testing.T) {
		f, srv := newFake(t)
		f.noCA = true
		_, err := newClient(t, srv.URL).CAChain(context.Background())
		if !errors.Is(err, ErrNoClusterCA) {
			t.Fatalf("err = %v, want ErrNoClusterCA", err)
		}
	})
}
