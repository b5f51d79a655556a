//go:build lab

package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/haplan/haplan/lab"
	"github.com/haplan/haplan/layout"
)

// rancherHost is a host of an environment as the API shows it.
type rancherHost struct {
	ID          string            `json:"id"`
	State       string            `json:"state"`
	AgentState  *string           `json:"agentState"`
	Labels      map[string]string `json:"labels"`
	IPAddresses []struct {
		Address string `json:"address"`
	} `json:"ipAddresses"`
}

func (h rancherHost) healthy() bool {
	return h.State == "active" && (h.AgentState == nil || *h.AgentState == "active")
}

// envHosts lists the hosts of the environment named env, through a node's
// own API, the way the UI reads them (projects with all=true, hosts with
// their ipAddresses), leaving out removed ones. It does not use haplan.
// envLinks are the links of the environment named env, from rs1's API.
func envLinks(ctx context.Context, l *lab.Lab, env string, key *apiKey) (map[string]string, error) {
	base := "http://" + net.JoinHostPort(l.IP("rs1"), "18080")
	code, b, err := api(ctx, http.MethodGet, base+"/v1/projects?all=true", nil, key)
	if err != nil || code != 200 {
		return nil, fmt.Errorf("projects: %d %v %s", code, err, b)
	}
	var ps struct {
		Data []struct {
			Name  string            `json:"name"`
			UUID  string            `json:"uuid"`
			Links map[string]string `json:"links"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &ps); err != nil {
		return nil, err
	}
	for _, p := range ps.Data {
		if p.Name == env && !strings.HasPrefix(p.UUID, "system-ha-") {
			return p.Links, nil
		}
	}
	return nil, fmt.Errorf("no environment %q", env)
}

// registrationTokens are the token values of an environment's
// registration tokens, as the API holds them.
func registrationTokens(t *testing.T, ctx context.Context, l *lab.Lab, env string) []string {
	t.Helper()
	links, err := envLinks(ctx, l, env, nil)
	if err != nil {
		t.Fatal(err)
	}
	code, b, err := api(ctx, http.MethodGet, links["registrationTokens"], nil, nil)
	if err != nil || code != 200 {
		t.Fatalf("registration tokens: %d %v %s", code, err, b)
	}
	var ts struct {
		Data []struct {
			Token string `json:"token"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &ts); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tk := range ts.Data {
		if tk.Token != "" {
			out = append(out, tk.Token)
		}
	}
	if len(out) == 0 {
		t.Fatalf("environment %s has no registration token", env)
	}
	return out
}

func envHosts(ctx context.Context, l *lab.Lab, env string, key *apiKey) ([]rancherHost, error) {
	links, err := envLinks(ctx, l, env, key)
	if err != nil {
		return nil, err
	}
	code, b, err := api(ctx, http.MethodGet, links["hosts"]+"?include=ipAddresses", nil, key)
	if err != nil || code != 200 {
		return nil, fmt.Errorf("hosts of %s: %d %v %s", env, code, err, b)
	}
	var hs struct {
		Data []rancherHost `json:"data"`
	}
	if err := json.Unmarshal(b, &hs); err != nil {
		return nil, err
	}
	var out []rancherHost
	for _, h := range hs.Data {
		if h.State != "removing" && h.State != "removed" && h.State != "purging" && h.State != "purged" {
			out = append(out, h)
		}
	}
	return out, nil
}

// labelled returns the hosts labelled io.haplan.host=name.
func labelled(hs []rancherHost, name string) []rancherHost {
	var out []rancherHost
	for _, h := range hs {
		if h.Labels["io.haplan.host"] == name {
			out = append(out, h)
		}
	}
	return out
}

// checkHosts judges, without haplan, that every lab agent host joined
// "Default": exactly one Rancher host carries its io.haplan.host label,
// active with its agent connected, at the host's IP; rancher-agent runs
// on the machine. It returns each host's Rancher id.
func checkHosts(t *testing.T, ctx context.Context, l *lab.Lab, key *apiKey) map[string]string {
	t.Helper()
	ids := map[string]string{}
	hs, err := envHosts(ctx, l, "Default", key)
	if err != nil {
		t.Errorf("hosts of Default: %v", err)
		return ids
	}
	for _, h := range hostsByRole(l, lab.RoleAgent) {
		got := labelled(hs, h.Name)
		if len(got) != 1 {
			t.Errorf("%s: %d Rancher hosts labelled io.haplan.host=%s, want 1: %+v", h.Name, len(got), h.Name, got)
			continue
		}
		rh := got[0]
		ids[h.Name] = rh.ID
		if !rh.healthy() {
			t.Errorf("%s: Rancher host %s is %s (agent %v), want active and connected", h.Name, rh.ID, rh.State, rh.AgentState)
		}
		var addrs []string
		for _, a := range rh.IPAddresses {
			addrs = append(addrs, a.Address)
		}
		if !slices.Contains(addrs, h.IP) {
			t.Errorf("%s: Rancher host %s has addresses %v, want the agent IP %s", h.Name, rh.ID, addrs, h.IP)
		}
		if run := strings.TrimSpace(sh(t, ctx, l, h.Name, "docker inspect -f '{{.State.Running}}' rancher-agent 2>/dev/null || echo absent")); run != "true" {
			t.Errorf("%s: rancher-agent running = %s", h.Name, run)
		}
	}
	return ids
}

// waitHostsHealthy waits until every lab agent host is one active,
// connected Rancher host of "Default" with rancher-agent running, judged
// through rs1's API and the machines (not by haplan), for at most limit.
func waitHostsHealthy(t *testing.T, ctx context.Context, l *lab.Lab, limit time.Duration) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(limit)
	for {
		var bad []string
		hs, err := envHosts(ctx, l, "Default", nil)
		if err != nil {
			bad = append(bad, err.Error())
		}
		for _, h := range hostsByRole(l, lab.RoleAgent) {
			if err != nil {
				break
			}
			got := labelled(hs, h.Name)
			if len(got) != 1 || !got[0].healthy() {
				bad = append(bad, fmt.Sprintf("%s: %+v", h.Name, got))
				continue
			}
			if run := strings.TrimSpace(sh(t, ctx, l, h.Name, "docker inspect -f '{{.State.Running}}' rancher-agent 2>/dev/null || echo absent")); run != "true" {
				bad = append(bad, fmt.Sprintf("%s: rancher-agent running = %s", h.Name, run))
			}
		}
		if len(bad) == 0 {
			if waited := time.Since(start); waited > time.Second {
				t.Logf("the hosts were healthy again after %s", waited.Round(time.Second))
			}
			return
		}
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, h := range hostsByRole(l, lab.RoleAgent) {
				fmt.Fprintf(&logs, "--- %s: docker logs rancher-agent\n%s", h.Name, sh(t, ctx, l, h.Name, "docker logs --tail 10 rancher-agent 2>&1 || true"))
			}
			t.Fatalf("the hosts are not healthy %s after the apply:\n%s\n%s", limit, strings.Join(bad, "\n"), logs.String())
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// checkHostsJoin perturbs the registered hosts, one at a time, and checks
// that each is planned as exactly its one change and converged by one
// apply, judged on the API and the machines.
func checkHostsJoin(t *testing.T, ctx context.Context, l *lab.Lab, manifest string) {
	before := checkHosts(t, ctx, l, nil)
	if t.Failed() {
		t.FailNow()
	}

	t.Run("agent removed: the same Rancher host comes back", func(t *testing.T) {
		sh(t, ctx, l, "h2", "docker rm -f rancher-agent >/dev/null")
		if diff := cmp.Diff([]string{"agent.register[h2]"}, waitPending(t, ctx, manifest, "agent.register[h2]")); diff != "" {
			t.Fatalf("plan (-want +got):\n%s", diff)
		}
		// The registration URL holds the token: no process list of the
		// host may show it while haplan registers it.
		// The sampler must be able to see haplan's sessions on h2 at
		// all, or finding no token proves nothing. haplan's own sessions
		// there are short (the registration goes through the Docker
		// Engine API), so its last one, removing the registration
		// container, is held for two seconds: twenty sampling periods.
		removeShim := shim(t, ctx, l, "h2", "docker", pauseShim("docker", "/usr/bin/docker", "rm", 2))
		sm := sampleProcesses(l, []string{"h2"}, 100*time.Millisecond, registrationTokens(t, ctx, l, "Default")...)
		r := haplan(t, ctx, "apply", "-f", manifest, "--auto-approve")
		samples, session, found := sm.finish()
		paused := strings.TrimSpace(sh(t, ctx, l, "h2", "cat /tmp/haplan-shim-docker.entered 2>/dev/null || true"))
		removeShim()
		if r.code != 0 {
			t.Fatalf("apply: exit %d", r.code)
		}
		switch {
		case paused == "":
			t.Errorf("haplan never ran docker rm on h2: the registration container was not removed")
		case !session:
			t.Errorf("%d samples of h2 and none caught haplan's session, held for 2 s in docker rm: the sampling proves nothing", samples)
		}
		for _, f := range found {
			t.Errorf("h2's process list shows the registration token: %s", f)
		}
		after := checkHosts(t, ctx, l, nil)
		if after["h2"] != before["h2"] {
			t.Errorf("h2 is Rancher host %s after the repair, was %s: a duplicate, not the same host", after["h2"], before["h2"])
		}
		if got := pending(t, ctx, manifest); len(got) != 0 {
			t.Errorf("plan after the repair: %v, want empty", got)
		}
	})

	t.Run("a stale CA and no agent: the CA first, then the same host", func(t *testing.T) {
		// Another cluster's CA on h2, its agent gone: registered against
		// it, the agent would refuse the cluster.
		foreign := foreignCA(t)
		if out, err := l.Exec(ctx, "h2", foreign, "sh", "-c", "cat > "+layout.CA+" && chmod 400 "+layout.CA+" && docker rm -f rancher-agent >/dev/null"); err != nil {
			t.Fatalf("h2: stale CA: %v\n%s", err, out)
		}
		got := waitPending(t, ctx, manifest, "agent.register[h2]")
		slices.Sort(got)
		if diff := cmp.Diff([]string{"agent.register[h2]", "cert.distribute[h2]"}, got); diff != "" {
			t.Fatalf("plan (-want +got):\n%s", diff)
		}
		// Both named by SHA-1 fingerprint, as CA_FINGERPRINT and the UI
		// show them.
		stale, cluster := fingerprint(t, foreign), servedCA(t, ctx, l)
		if r := haplan(t, ctx, "plan", "-f", manifest); !strings.Contains(r.stdout, layout.CA+" is not the cluster CA") || !strings.Contains(r.stdout, stale) || !strings.Contains(r.stdout, cluster) {
			t.Errorf("the plan does not say h2's CA (%s) is not the cluster's (%s):\n%s", stale, cluster, r.stdout)
		}
		if r := haplan(t, ctx, "apply", "-f", manifest, "--auto-approve"); r.code != 0 {
			t.Fatalf("apply: exit %d", r.code)
		}
		want := sh(t, ctx, l, "rs1", "sha256sum < "+layout.CA)
		if got := sh(t, ctx, l, "h2", "sha256sum < "+layout.CA+"; stat -c %a "+layout.CA); got != want+"400\n" {
			t.Errorf("h2's CA after the apply: %q, want the cluster's (%q) with mode 400", got, want)
		}
		if after := checkHosts(t, ctx, l, nil); after["h2"] != before["h2"] {
			t.Errorf("h2 is Rancher host %s after the repair, was %s: a duplicate, not the same host", after["h2"], before["h2"])
		}
		if got := pending(t, ctx, manifest); len(got) != 0 {
			t.Errorf("plan after the repair: %v, want empty", got)
		}
	})

	t.Run("a stale ca.crt on the first node: hosts keep the server's CA", func(t *testing.T) {
		// rs1's file holds another CA (copied over it, or left from an
		// earlier cluster); the server still serves and pins its own.
		// haplan used to spread the first node's file to every host.
		saved := sh(t, ctx, l, "rs1", "cat "+layout.CA)
		cluster := servedCA(t, ctx, l)
		sums := map[string]string{}
		for _, h := range hostsByRole(l, lab.RoleAgent) {
			sums[h.Name] = sh(t, ctx, l, h.Name, "sha256sum < "+layout.CA+"; stat -c %a "+layout.CA)
		}
		foreign := foreignCA(t)
		put := func(b []byte) error {
			out, err := l.Exec(ctx, "rs1", b, "sh", "-c", "cat > "+layout.CA+" && chmod 644 "+layout.CA)
			if err != nil {
				return fmt.Errorf("rs1: write %s: %v\n%s", layout.CA, err, out)
			}
			return nil
		}
		if err := put(foreign); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := put([]byte(saved)); err != nil {
				t.Error(err)
			}
		})
		if got := pending(t, ctx, manifest); len(got) != 0 {
			t.Errorf("plan with a stale ca.crt on rs1: %v, want empty (the hosts have the server's CA)", got)
		}
		r := haplan(t, ctx, "plan", "-f", manifest)
		if !strings.Contains(r.stdout, "HA node rs1: "+layout.CA+" does not start with the cluster CA (SHA-1 "+cluster) || !strings.Contains(r.stdout, "it holds SHA-1 "+fingerprint(t, foreign)) {
			t.Errorf("the plan does not warn that rs1's file (%s) is not the cluster CA (%s):\n%s", fingerprint(t, foreign), cluster, r.stdout)
		}
		if r := haplan(t, ctx, "apply", "-f", manifest, "--auto-approve"); r.code != 0 {
			t.Fatalf("apply: exit %d", r.code)
		}
		for _, h := range hostsByRole(l, lab.RoleAgent) {
			if got := sh(t, ctx, l, h.Name, "sha256sum < "+layout.CA+"; stat -c %a "+layout.CA); got != sums[h.Name] {
				t.Errorf("%s's CA after the apply: %q, was %q: rs1's stale file was spread", h.Name, got, sums[h.Name])
			}
		}
		if after := checkHosts(t, ctx, l, nil); !maps.Equal(after, before) {
			t.Errorf("Rancher hosts after the apply: %v, were %v", after, before)
		}
	})

	t.Run("a host moved to an environment that does not exist", func(t *testing.T) {
		src, err := os.ReadFile(manifest)
		if err != nil {
			t.Fatal(err)
		}
		entry := "  - name: h3\n    address: " + nodeIP(t, l, "h3") + "\n"
		text := strings.Replace(string(src), entry, entry+"    environment: Staging\n", 1)
		if text == string(src) {
			t.Fatalf("no h3 entry in:\n%s", src)
		}
		moved := filepath.Join(filepath.Dir(manifest), "cluster-h3-staging.yaml")
		if err := os.WriteFile(moved, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(moved) })
		for _, cmd := range [][]string{{"plan", "-f", moved}, {"apply", "-f", moved, "--auto-approve"}} {
			r := haplan(t, ctx, cmd...)
			if out := r.stdout + r.stderr; r.code != 1 || !strings.Contains(out, `"Staging"`) || !strings.Contains(out, "no such environment") || !strings.Contains(out, "registers h3 in it: no host was registered there") {
				t.Errorf("%s with h3 in an environment that does not exist: exit %d, want 1 naming \"Staging\", that there is no such environment, and h3", cmd[0], r.code)
			}
		}
		// Nothing half-done: h3 is still the same healthy host of Default,
		// its agent running, and the manifest as it was plans nothing.
		if after := checkHosts(t, ctx, l, nil); after["h3"] != before["h3"] {
			t.Errorf("h3 is Rancher host %q after the refused move, was %s", after["h3"], before["h3"])
		}
		if got := pending(t, ctx, manifest); len(got) != 0 {
			t.Errorf("plan after the refused move: %v, want empty", got)
		}
	})

	t.Run("the token call answers an error: named with its hosts, nothing changed", func(t *testing.T) {
		// The server fails every registration-token request: its table is
		// away (the stand-in keeps tokens in standin_credential, cattle in
		// credential), as in a database restored without it. Every node
		// answers HTTP 500.
		agents := func() map[string]string {
			out := map[string]string{}
			for _, h := range hostsByRole(l, lab.RoleAgent) {
				out[h.Name] = sh(t, ctx, l, h.Name, "docker inspect -f '{{.Id}} {{.State.StartedAt}}' rancher-agent")
			}
			return out
		}
		was, hostsWas := agents(), checkHosts(t, ctx, l, nil)
		sql(t, ctx, l, "RENAME TABLE cattle.standin_credential TO cattle.standin_credential_haplan_test")
		renamed := true
		back := func() {
			if renamed {
				renamed = false
				sql(t, context.WithoutCancel(ctx), l, "RENAME TABLE cattle.standin_credential_haplan_test TO cattle.standin_credential")
			}
		}
		t.Cleanup(back)
		for _, cmd := range [][]string{{"plan", "-f", manifest}, {"apply", "-f", manifest, "--auto-approve"}} {
			r := haplan(t, ctx, cmd...)
			out := r.stdout + r.stderr
			for _, want := range []string{`registration tokens of environment "Default"`, "HTTP 500", `the manifest registers h1, h2, h3 in environment "Default": no host was registered there`} {
				if !strings.Contains(out, want) {
					t.Errorf("%s while the token call fails: the output does not say %q", cmd[0], want)
				}
			}
			if r.code != 1 {
				t.Errorf("%s while the token call fails: exit %d, want 1", cmd[0], r.code)
			}
		}
		back()
		if now := agents(); !maps.Equal(now, was) {
			t.Errorf("rancher-agent containers after the refused apply: %v, were %v", now, was)
		}
		if now := checkHosts(t, ctx, l, nil); !maps.Equal(now, hostsWas) {
			t.Errorf("Rancher hosts after the refused apply: %v, were %v", now, hostsWas)
		}
		if got := pending(t, ctx, manifest); len(got) != 0 {
			t.Errorf("plan once the server answers again: %v, want empty", got)
		}
	})

	t.Run("labels changed in the manifest", func(t *testing.T) {
		src, err := os.ReadFile(manifest)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Replace(string(src), "  - name: h1\n    address: "+nodeIP(t, l, "h1")+"\n", "  - name: h1\n    address: "+nodeIP(t, l, "h1")+"\n    labels: {zone: a}\n", 1)
		if text == string(src) {
			t.Fatalf("no h1 entry to label in:\n%s", src)
		}
		labelsManifest := filepath.Join(filepath.Dir(manifest), "cluster-labels.yaml")
		if err := os.WriteFile(labelsManifest, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(labelsManifest) })
		h1Labels := func() map[string]string {
			hs, err := envHosts(ctx, l, "Default", nil)
			if err != nil {
				t.Fatal(err)
			}
			got := labelled(hs, "h1")
			if len(got) != 1 {
				t.Fatalf("h1 in Rancher: %+v", got)
			}
			return got[0].Labels
		}
		for _, tc := range []struct {
			manifest string
			want     map[string]string
		}{{labelsManifest, map[string]string{"io.haplan.host": "h1", "zone": "a"}}, {manifest, map[string]string{"io.haplan.host": "h1"}}} {
			if diff := cmp.Diff([]string{"agent.register[h1]"}, pending(t, ctx, tc.manifest)); diff != "" {
				t.Fatalf("plan of %s (-want +got):\n%s", filepath.Base(tc.manifest), diff)
			}
			id := checkHosts(t, ctx, l, nil)["h1"]
			if r := haplan(t, ctx, "apply", "-f", tc.manifest, "--auto-approve"); r.code != 0 {
				t.Fatalf("apply %s: exit %d", filepath.Base(tc.manifest), r.code)
			}
			if got := h1Labels(); !cmp.Equal(got, tc.want) {
				t.Errorf("h1's labels in Rancher after %s: %v, want %v", filepath.Base(tc.manifest), got, tc.want)
			}
			if after := checkHosts(t, ctx, l, nil)["h1"]; after != id {
				t.Errorf("h1 is Rancher host %s after its labels were set, was %s", after, id)
			}
			if got := pending(t, ctx, tc.manifest); len(got) != 0 {
				t.Errorf("plan after setting the labels: %v, want empty", got)
			}
		}
	})

	t.Run("a host leaves the manifest", func(t *testing.T) {
		src, err := os.ReadFile(manifest)
		if err != nil {
			t.Fatal(err)
		}
		without := filepath.Join(filepath.Dir(manifest), "cluster-without-h3.yaml")
		if err := os.WriteFile(without, []byte(dropHost(t, string(src), "h3")), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(without) })
		if diff := cmp.Diff([]string{"agent.prune"}, pending(t, ctx, without)); diff != "" {
			t.Fatalf("plan without h3 (-want +got):\n%s", diff)
		}
		if r := haplan(t, ctx, "apply", "-f", without, "--auto-approve"); r.code != 0 {
			t.Fatalf("apply without h3: exit %d", r.code)
		}
		hs, err := envHosts(ctx, l, "Default", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := labelled(hs, "h3"); len(got) != 0 {
			t.Errorf("h3 is still in Rancher: %+v", got)
		}
		if got := labelled(hs, "h1"); len(got) != 1 {
			t.Errorf("h1 was touched: %+v", got)
		}
		left := strings.TrimSpace(sh(t, ctx, l, "h3", "docker ps -a --format '{{.Names}}' | grep -c '^rancher-agent' || true; test -e /var/lib/rancher/state && echo state || echo clean; test -e /var/lib/rancher/etc/ssl/ca.crt && echo ca"))
		if left != "0\nclean\nca" {
			t.Errorf("h3 after it left: %q, want no agent container, no /var/lib/rancher/state, the CA kept", left)
		}
		if got := pending(t, ctx, without); len(got) != 0 {
			t.Errorf("plan without h3 after the apply: %v, want empty", got)
		}
		// Back in the manifest, first without Docker (neither the client
		// nor the daemon's socket, as on a machine where it was never
		// installed): refused before anything changes, naming h3.
		checkNoDockerRefused(t, ctx, l, manifest, "h3")
		// Back in the manifest, it registers again.
		if r := haplan(t, ctx, "apply", "-f", manifest, "--auto-approve"); r.code != 0 {
			t.Fatalf("apply with h3 back: exit %d", r.code)
		}
		checkHosts(t, ctx, l, nil)
	})
}

// checkNoDockerRefused hides Docker on host (an unregistered host of the
// manifest) and checks that plan and apply refuse, naming the host and the
// cause, and that nothing was registered or started on any host. Docker is
// back when it returns.
func checkNoDockerRefused(t *testing.T, ctx context.Context, l *lab.Lab, manifest, host string) {
	t.Helper()
	const off = ".haplan-test-off"
	hide := "mv /var/run/docker.sock /var/run/docker.sock" + off + " && mv /usr/bin/docker /usr/bin/docker" + off
	show := "for f in /var/run/docker.sock /usr/bin/docker; do if [ -e $f" + off + " ]; then mv $f" + off + " $f; fi; done"
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if out, err := l.Exec(context.WithoutCancel(ctx), host, nil, "sh", "-c", show); err != nil {
				t.Errorf("%s: put Docker back: %v\n%s", host, err, out)
			}
		}
	}
	t.Cleanup(restore) // before hiding it: a hide that fails half-way is undone too
	sh(t, ctx, l, host, hide)
	before, err := envHosts(ctx, l, "Default", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"plan", "-f", manifest}, {"apply", "-f", manifest, "--auto-approve"}} {
		r := haplan(t, ctx, cmd...)
		out := r.stdout + r.stderr
		if r.code != 1 || !strings.Contains(out, host) || !strings.Contains(out, "dockerd is not answering") {
			t.Errorf("%s with Docker missing on %s: exit %d, want 1 naming %s and that dockerd is not answering", cmd[0], host, r.code, host)
		}
	}
	after, err := envHosts(ctx, l, "Default", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := labelled(after, host); len(got) != 0 {
		t.Errorf("%s is a Rancher host after the refused apply: %+v", host, got)
	}
	ids := func(hs []rancherHost) []string {
		var out []string
		for _, h := range hs {
			out = append(out, h.ID+" "+h.State)
		}
		slices.Sort(out)
		return out
	}
	if diff := cmp.Diff(ids(before), ids(after)); diff != "" {
		t.Errorf("the hosts of Default changed in the refused apply (-before +after):\n%s", diff)
	}
	if left := strings.TrimSpace(sh(t, ctx, l, host, "test -e "+agentStateDir+" && echo state || echo clean")); left != "clean" {
		t.Errorf("%s after the refused apply: %s, want no agent identity", host, left)
	}
	restore()
}

// agentStateDir is where the agent keeps a host's identity.
const agentStateDir = "/var/lib/rancher/state"

// servedCA is the fingerprint of the CA the cluster serves (rs1's API,
// /v1/scripts/ca.crt, what registration commands pin), asked without
// haplan.
func servedCA(t *testing.T, ctx context.Context, l *lab.Lab) string {
	t.Helper()
	code, b, err := api(ctx, http.MethodGet, "http://"+net.JoinHostPort(l.IP("rs1"), "18080")+"/v1/scripts/ca.crt", nil, nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /v1/scripts/ca.crt: %d %v %s", code, err, b)
	}
	return fingerprint(t, b)
}

// fingerprint is the SHA-1 fingerprint of a PEM file's first certificate,
// upper-case hex with colons, as openssl x509 -fingerprint prints it and
// cattle's CA_FINGERPRINT holds it.
func fingerprint(t *testing.T, b []byte) string {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("no PEM certificate in %q", b)
	}
	sum := sha1.Sum(blk.Bytes)
	var parts []string
	for _, c := range sum {
		parts = append(parts, fmt.Sprintf("%02X", c))
	}
	return strings.Join(parts, ":")
}

// foreignCA is a self-signed CA certificate of no cluster, PEM.
func foreignCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "another cluster's CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// waitPending is pending, once the plan lists want (a removed container
// is seen at once; an agent's disconnection takes the server a moment).
func waitPending(t *testing.T, ctx context.Context, manifest, want string) []string {
	t.Helper()
	var got []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		if got = pending(t, ctx, manifest); slices.Contains(got, want) {
			return got
		}
	}
	return got
}

// dropHost removes the hosts entry named name from a lab manifest.
func dropHost(t *testing.T, src, name string) string {
	t.Helper()
	lines := strings.Split(src, "\n")
	var out []string
	skip := false
	for _, line := range lines {
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "- ") {
			skip = strings.Contains(trim, "name: "+name+"}") || strings.Contains(trim, "name: "+name+",") || trim == "- name: "+name
		} else if !strings.HasPrefix(line, "    ") {
			skip = false
		}
		if !skip {
			out = append(out, line)
		}
	}
	res := strings.Join(out, "\n")
	if res == src {
		t.Fatalf("no host %s in the manifest", name)
	}
	return res
}
