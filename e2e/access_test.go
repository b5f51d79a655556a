//go:build lab

package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haplan/haplan/lab"
	"github.com/haplan/haplan/plans"
)

// checkAccessControl switches access control on for the converged cluster
// the way an operator does (an account API key of the admin, then local
// auth enabled), and shows that haplan without a key names the fix, and
// with rancher.apiKey plans and applies exactly as with access control
// off, never printing the key. Access control is off again afterwards,
// as the lab had it.
func checkAccessControl(t *testing.T, ctx context.Context, l *lab.Lab, manifest string, nodes []string) {
	base := "http://" + net.JoinHostPort(nodeIP(t, l, nodes[0]), "18080")
	code, b, err := api(ctx, http.MethodPost, base+"/v1/apikeys", map[string]any{"name": "haplan-e2e"}, nil)
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create an API key: %d %v %s", code, err, b)
	}
	var k struct{ PublicValue, SecretValue string }
	if err := json.Unmarshal(b, &k); err != nil || k.PublicValue == "" || k.SecretValue == "" {
		t.Fatalf("API key answer %s: %v", b, err)
	}
	key := &apiKey{access: k.PublicValue, secret: k.SecretValue}
	code, b, err = api(ctx, http.MethodPost, base+"/v1/localauthconfig", map[string]any{"enabled": true, "username": "admin", "password": "e2e-admin-pw"}, nil)
	if err != nil || code != http.StatusCreated {
		t.Fatalf("enable access control: %d %v %s", code, err, b)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		code, b, err := api(cctx, http.MethodPut, base+"/v1/settings/api.security.enabled", map[string]any{"value": "false"}, key)
		if err != nil || code != 200 {
			t.Errorf("switch access control off: %d %v %s", code, err, b)
			return
		}
		waitAnonymous(t, cctx, l, nodes, http.StatusOK)
	})
	// Other servers reload their settings on a 60 s timer (Archaius).
	waitAnonymous(t, ctx, l, nodes, http.StatusUnauthorized)

	r := haplan(t, ctx, "plan", "-f", manifest)
	if r.code != 0 || !strings.Contains(r.stdout+r.stderr, "set rancher.apiKey") {
		t.Errorf("plan without a key under access control: exit %d, want 0 with a warning naming rancher.apiKey", r.code)
	}

	dir := t.TempDir()
	for name, v := range map[string]string{"access": key.access, "secret": key.secret} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	src, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	withKey := strings.Replace(string(src), "\nrancher:\n", "\nrancher:\n  apiKey:\n    accessKey: {file: "+filepath.Join(dir, "access")+"}\n    secretKey: {file: "+filepath.Join(dir, "secret")+"}\n", 1)
	if withKey == string(src) {
		t.Fatal("no rancher: block in the lab manifest")
	}
	keyed := filepath.Join(filepath.Dir(manifest), "cluster-apikey.yaml")
	if err := os.WriteFile(keyed, []byte(withKey), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(keyed) })

	planFile := filepath.Join(dir, "plan.json")
	r = haplan(t, ctx, "plan", "-f", keyed, "--detailed-exitcode", "--json", "--out", planFile)
	p, err := plans.Decode(strings.NewReader(r.stdout))
	if err != nil {
		t.Fatalf("plan --json: %v", err)
	}
	verified := false
	for _, c := range p.Changes {
		verified = verified || c.Addr == "ha.verify" && c.Reason == "3/3 nodes active; load balancer: ok" && len(c.Warnings) == 0
	}
	if r.code != 0 || !verified {
		t.Errorf("plan with rancher.apiKey: exit %d, want 0 and ha.verify seeing 3/3 nodes active", r.code)
	}
	r2 := haplan(t, ctx, "apply", "-f", keyed, "--auto-approve")
	if r2.code != 0 {
		t.Errorf("apply with rancher.apiKey: exit %d", r2.code)
	}
	saved, _ := os.ReadFile(planFile)
	for _, out := range []string{r.stdout, r.stderr, r2.stdout, r2.stderr, string(saved)} {
		if strings.Contains(out, key.secret) || strings.Contains(out, key.access) {
			t.Fatal("haplan printed the API key")
		}
	}
	checkCluster(t, ctx, l, nodes, key)
}

// waitAnonymous waits until every node answers /v1/haconfigs without a key
// with the status wanted.
func waitAnonymous(t *testing.T, ctx context.Context, l *lab.Lab, nodes []string, want int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for _, n := range nodes {
		url := "http://" + net.JoinHostPort(nodeIP(t, l, n), "18080") + "/v1/haconfigs"
		for {
			code, _, err := api(ctx, http.MethodGet, url, nil, nil)
			if err == nil && code == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: GET /v1/haconfigs without a key = %d (%v), want %d within 90 s", n, code, err, want)
			}
			time.Sleep(time.Second)
		}
	}
}
