//go:build lab

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/haplan/haplan/lab"
)

// checkCluster judges a converged cluster on its own, without haplan:
// every node runs rancher-ha on the manifest's image; System HA (listed
// with all=true, as the UI does) holds every node's cluster IP as an active
// host with its agent connected; the load balancer answers /ping over TLS
// verified against the CA a node holds, for the registration URL's name;
// every agent host holds that CA, mode 0400, and has joined "Default"
// (checkHosts). key, when set, is the API key pair access control asks
// for.
func checkCluster(t *testing.T, ctx context.Context, l *lab.Lab, nodes []string, key *apiKey) {
	t.Helper()
	for _, n := range nodes {
		img := strings.TrimSpace(sh(t, ctx, l, n, "docker inspect -f '{{.State.Running}} {{.Config.Image}}' rancher-ha"))
		if img != "true "+lab.RancherImage {
			t.Errorf("%s: rancher-ha is %q, want running %s", n, img, lab.RancherImage)
		}
		for _, want := range []string{lab.RancherImage, lab.AgentImage, lab.AgentInstanceImage} {
			if id := strings.TrimSpace(sh(t, ctx, l, n, "docker inspect --type image -f '{{.Id}}' "+want+" 2>/dev/null || true")); id == "" {
				t.Errorf("%s: image %s is not on the node", n, want)
			}
		}
	}
	var want []string
	for _, n := range nodes {
		want = append(want, nodeIP(t, l, n))
	}
	slices.Sort(want)
	// A node that just came back rejoins within a few heartbeats.
	var got []string
	var err error
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(time.Second) {
		got, err = systemHAHosts(ctx, "http://"+net.JoinHostPort(want[0], "18080"), key)
		slices.Sort(got)
		if err == nil && slices.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("System HA active hosts %v (%v), want every node %v within 90 s", got, err, want)
			break
		}
	}
	// Every node writes the cluster's CA once it sees the management
	// stack launched (the stand-in looks every 2 s, as cluster-manager's
	// loop does): a node may write it a moment after the cluster answers.
	ca := waitFile(t, ctx, l, nodes[0], "/var/lib/rancher/etc/ssl/ca.crt")
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(ca)) {
		t.Fatalf("%s: ca.crt holds no certificate", nodes[0])
	}
	lb := l.IP("lb")
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil,
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: lb, MinVersion: tls.VersionTLS12}}}
	resp, err := c.Get("https://" + lb + "/ping")
	if err != nil {
		t.Errorf("https://%s/ping verified against the cluster CA: %v", lb, err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != "pong" {
			t.Errorf("https://%s/ping = %d %q", lb, resp.StatusCode, b)
		}
	}
	checkCA(t, ctx, l)
	checkHosts(t, ctx, l, key)
}

// converge applies the manifest and waits until the cluster is whole, so
// a subtest starts from a converged cluster whatever the one before left.
func converge(t *testing.T, ctx context.Context, l *lab.Lab, manifest string, nodes []string) {
	t.Helper()
	if r := haplan(t, ctx, "apply", "-f", manifest, "--auto-approve"); r.code != 0 {
		t.Fatalf("converge first: apply exit %d", r.code)
	}
	checkCluster(t, ctx, l, nodes, nil)
	if t.Failed() {
		t.FailNow()
	}
}

// waitFile returns a file on a lab host once it exists and is not empty,
// waiting up to 30 s.
func waitFile(t *testing.T, ctx context.Context, l *lab.Lab, host, path string) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		out, err := l.Exec(ctx, host, nil, "cat", path)
		if err == nil && len(out) > 0 {
			return string(out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s did not appear within 30 s: %v", host, path, err)
		}
	}
}

type apiKey struct{ access, secret string }

// api sends one request to a Rancher server, with the key when set.
func api(ctx context.Context, method, url string, body any, key *apiKey) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != nil {
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(key.access+":"+key.secret)))
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// systemHAHosts lists the agent IPs of System HA's active hosts whose
// agent is connected (agentState null or active).
func systemHAHosts(ctx context.Context, base string, key *apiKey) ([]string, error) {
	hs, err := systemHARecords(ctx, base, key)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, h := range hs {
		if h.State == "active" && (h.AgentState == nil || *h.AgentState == "active") && len(h.IPAddresses) > 0 {
			out = append(out, h.IPAddresses[0].Address)
		}
	}
	return out, nil
}

// haHost is a host of System HA as the API lists it.
type haHost struct {
	State       string  `json:"state"`
	AgentState  *string `json:"agentState"`
	IPAddresses []struct {
		Address string `json:"address"`
	} `json:"ipAddresses"`
}

// systemHARecords are the hosts of the System HA environment, whatever
// their state, through the API at base.
func systemHARecords(ctx context.Context, base string, key *apiKey) ([]haHost, error) {
	code, b, err := api(ctx, http.MethodGet, base+"/v1/projects?all=true", nil, key)
	if err != nil || code != 200 {
		return nil, fmt.Errorf("projects: %d %v %s", code, err, b)
	}
	var ps struct {
		Data []struct {
			UUID  string            `json:"uuid"`
			Links map[string]string `json:"links"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &ps); err != nil {
		return nil, err
	}
	for _, p := range ps.Data {
		if !strings.HasPrefix(p.UUID, "system-ha-") {
			continue
		}
		code, b, err := api(ctx, http.MethodGet, p.Links["hosts"]+"?include=ipAddresses", nil, key)
		if err != nil || code != 200 {
			return nil, fmt.Errorf("hosts: %d %v %s", code, err, b)
		}
		var hs struct {
			Data []haHost `json:"data"`
		}
		if err := json.Unmarshal(b, &hs); err != nil {
			return nil, err
		}
		return hs.Data, nil
	}
	return nil, fmt.Errorf("no System HA project in %s", b)
}
