//go:build lab

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHungRemoteCalls: three things that never answer, each failing within
// its limit with a message naming the host and what hung, and a re-run
// that converges once the fault is gone:
//   - a remote command that never returns (docker pull on rs2, with
//     rancher.timeouts.pull 5s): killed on the node;
//   - a bastion that accepts TCP and never speaks SSH (in front of h1,
//     with rancher.timeouts.ssh 2s);
//   - a Docker socket on rs2 that accepts and never answers.
func TestHungRemoteCalls(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	l := loadLab(t)
	nodes := []string{"rs1", "rs2", "rs3"}
	converge(t, ctx, l, l.Manifest, nodes)
	src, err := os.ReadFile(l.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	variant := func(name string, edit func(string) string) string {
		s := edit(string(src))
		if s == string(src) {
			t.Fatalf("%s: the lab manifest did not change", name)
		}
		p := filepath.Join(l.Dir, "cluster-"+name+".yaml")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(p) })
		return p
	}

	t.Run("command that never returns", func(t *testing.T) {
		manifest := variant("pull-5s", func(s string) string {
			return strings.Replace(s, "  timeouts:\n", "  timeouts:\n    pull: 5s\n", 1)
		})
		sh(t, ctx, l, "rs2", "docker rmi -f rancher/server:v1.0.1 >/dev/null")
		armShim(t, ctx, l, "rs2", "docker", "/usr/bin/docker", "pull")
		start := time.Now()
		r := haplan(t, ctx, "apply", "-f", manifest, "--auto-approve")
		if r.code != 1 || !strings.Contains(r.stdout, `rs2: "docker pull 'rancher/server:v1.0.1'" did not finish within 5s (killed)`) {
			t.Errorf("apply with a hung pull: exit %d, want 1 and the pull named as killed after 5s", r.code)
		}
		if d := time.Since(start); d > 2*time.Minute {
			t.Errorf("apply took %s", d)
		}
		// The hung process is gone from the node.
		pids := strings.Fields(sh(t, ctx, l, "rs2", "cat /tmp/haplan-shim-docker.pids"))
		if len(pids) == 0 {
			t.Fatal("the shim did not record its pid")
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			if _, err := l.Exec(ctx, "rs2", nil, "kill", "-0", pids[0]); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the hung docker pull (pid %s) still runs on rs2", pids[0])
			}
		}
		// The shim blocks once: the next apply pulls for real.
		converge(t, ctx, l, manifest, nodes)
		if id := strings.TrimSpace(sh(t, ctx, l, "rs2", "docker inspect --type image -f '{{.Id}}' rancher/server:v1.0.1")); id == "" {
			t.Error("rs2 has no server image after the re-run")
		}
	})

	t.Run("bastion that never speaks SSH", func(t *testing.T) {
		silent := nodeIP(t, l, "h3")
		sh(t, ctx, l, "h3", `nohup python3 -c '
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 2222)); s.listen(16)
held = []
while True:
    c, _ = s.accept(); held.append(c)
' >/dev/null 2>&1 & echo $! > /tmp/haplan-silent.pid`)
		t.Cleanup(func() {
			_, _ = l.Exec(context.WithoutCancel(ctx), "h3", nil, "sh", "-c", "kill $(cat /tmp/haplan-silent.pid); rm -f /tmp/haplan-silent.pid")
		})
		entry := "  - name: h1\n    address: " + nodeIP(t, l, "h1") + "\n"
		manifest := variant("silent-bastion", func(s string) string {
			s = strings.Replace(s, entry, entry+"    ssh:\n      bastion: root@"+silent+":2222\n", 1)
			return strings.Replace(s, "  timeouts:\n", "  timeouts:\n    ssh: 2s\n", 1)
		})
		start := time.Now()
		r := haplan(t, ctx, "plan", "-f", manifest, "--json")
		if d := time.Since(start); d > 90*time.Second {
			t.Errorf("plan with a silent bastion took %s", d)
		}
		if r.code != 1 || !strings.Contains(r.stdout, "cert.distribute[h1]") || !strings.Contains(r.stdout+r.stderr, "no answer within 2s") {
			t.Errorf("plan with a silent bastion: exit %d, want 1 with cert.distribute[h1] not probed and the handshake limit named", r.code)
		}
		if got := pending(t, ctx, l.Manifest); len(got) != 0 {
			t.Errorf("plan without the bastion: %v, want converged", got)
		}
	})

	t.Run("docker socket that never answers", func(t *testing.T) {
		sh(t, ctx, l, "rs2", `mv /var/run/docker.sock /var/run/docker.sock.haplan-real && nohup python3 -c '
import socket
s = socket.socket(socket.AF_UNIX); s.bind("/var/run/docker.sock"); s.listen(16)
held = []
while True:
    c, _ = s.accept(); held.append(c)
' >/dev/null 2>&1 & echo $! > /tmp/haplan-silent-docker.pid`)
		restore := func() {
			_, _ = l.Exec(context.WithoutCancel(ctx), "rs2", nil, "sh", "-c",
				"kill $(cat /tmp/haplan-silent-docker.pid) 2>/dev/null; rm -f /tmp/haplan-silent-docker.pid; [ -e /var/run/docker.sock.haplan-real ] && rm -f /var/run/docker.sock && mv /var/run/docker.sock.haplan-real /var/run/docker.sock; true")
		}
		t.Cleanup(restore)
		start := time.Now()
		r := haplan(t, ctx, "plan", "-f", l.Manifest)
		if d := time.Since(start); d > 2*time.Minute {
			t.Errorf("plan with a silent Docker socket took %s", d)
		}
		// Preflight's docker check (10 s) or a probe's Engine API GET (30 s)
		// says it first; either names rs2, what hung and the limit.
		out := r.stdout + r.stderr
		named := strings.Contains(out, "rs2: docker API GET") && strings.Contains(out, "no answer within 30s") ||
			strings.Contains(out, "rs2") && strings.Contains(out, "docker version: timed out, no answer within")
		if r.code != 1 || !named {
			t.Errorf("plan with a silent Docker socket on rs2: exit %d, want 1 naming rs2, the request and the limit", r.code)
		}
		if strings.Contains(r.stdout, "image rancher/server:v1.0.1 is not on rs2") || strings.Contains(r.stdout, "images rancher/server:v1.0.1") {
			t.Error("a Docker that does not answer passed for a missing image")
		}
		restore()
		if got := pending(t, ctx, l.Manifest); len(got) != 0 {
			t.Errorf("plan once Docker answers again: %v, want converged", got)
		}
	})
}
