//go:build lab

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/haplan/haplan/lab"
)

// TestConvergeThreeNodes is the product's promise, end to end on the lab:
// a fresh lab converges with one apply, the plan is then empty, and when
// things break behind haplan's back the plan names exactly those things and
// one more apply converges again.
func TestConvergeThreeNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	l := loadLab(t)
	manifest := l.Manifest
	resetCluster(t, ctx, l, "cattle")

	if r := haplan(t, ctx, "plan", "-f", manifest, "--detailed-exitcode"); r.code != 2 {
		t.Fatalf("plan on a fresh lab: exit %d, want 2 (changes)", r.code)
	}
	if r := haplan(t, ctx, "apply", "-f", manifest, "--auto-approve"); r.code != 0 {
		t.Fatalf("apply on a fresh lab: exit %d", r.code)
	}
	if r := haplan(t, ctx, "plan", "-f", manifest, "--detailed-exitcode"); r.code != 0 {
		t.Fatalf("plan after apply: exit %d, want 0 (no changes)", r.code)
	}
	nodes := []string{"rs1", "rs2", "rs3"}
	checkCluster(t, ctx, l, nodes, nil)

	// Break two things: the HA container on rs2 and the CA on h1.
	sh(t, ctx, l, "rs2", "docker rm -f rancher-ha")
	sh(t, ctx, l, "h1", "rm -f /var/lib/rancher/etc/ssl/ca.crt")
	want := []string{"cert.distribute[h1]", "ha.start[rs2]"}
	if diff := cmp.Diff(want, pending(t, ctx, manifest)); diff != "" {
		t.Fatalf("plan after breaking rs2 and h1 (-want +got):\n%s", diff)
	}
	if r := haplan(t, ctx, "apply", "-f", manifest, "--auto-approve"); r.code != 0 {
		t.Fatalf("repair apply: exit %d", r.code)
	}
	if got := pending(t, ctx, manifest); len(got) != 0 {
		t.Fatalf("plan after repair is not empty: %v", got)
	}
	checkCluster(t, ctx, l, nodes, nil)

	// Every other step kind: break it, see exactly it planned, apply, empty.
	for _, tc := range []struct {
		name   string
		break_ func(t *testing.T)
		want   []string
	}{
		{"ca mode", func(t *testing.T) { sh(t, ctx, l, "h2", "chmod 0644 /var/lib/rancher/etc/ssl/ca.crt") }, []string{"cert.distribute[h2]"}},
		{"lb config edited", func(t *testing.T) { sh(t, ctx, l, "lb", "echo '# hand edit' >> /etc/haproxy/haproxy.cfg") }, []string{"lb.config"}},
		{"grant dropped", func(t *testing.T) { sql(t, ctx, l, "DROP USER 'cattle'@'"+nodeIP(t, l, "rs3")+"';") }, []string{"db.grant[rs3]"}},
		{"script lost on a node", func(t *testing.T) { sh(t, ctx, l, "rs3", "rm -f /var/lib/rancher/etc/haplan/rancher-ha.sh") }, []string{"script.generate"}},
		{"stray bootstrap server", func(t *testing.T) {
			sh(t, ctx, l, "rs1", "docker run -d --name haplan-bootstrap rancher/server:v1.0.1 >/dev/null")
		}, []string{"bootstrap.stop"}},
		{"image untagged", func(t *testing.T) { sh(t, ctx, l, "rs1", "docker rmi -f rancher/server:v1.0.1 >/dev/null") }, []string{"image.pull[rs1]"}},
		{"a grant no node owns", func(t *testing.T) {
			sql(t, ctx, l, "CREATE USER 'cattle'@'10.213.1.99' IDENTIFIED BY 'x'; GRANT ALL ON cattle.* TO 'cattle'@'10.213.1.99';")
		}, []string{"db.prune"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.break_(t)
			if diff := cmp.Diff(tc.want, pending(t, ctx, manifest)); diff != "" {
				t.Fatalf("plan (-want +got):\n%s", diff)
			}
			if r := haplan(t, ctx, "apply", "-f", manifest, "--auto-approve"); r.code != 0 {
				t.Fatalf("apply: exit %d", r.code)
			}
			if got := pending(t, ctx, manifest); len(got) != 0 {
				t.Fatalf("plan after apply is not empty: %v", got)
			}
		})
	}
	// The stray grant is gone, judged by the server itself.
	if userExists(t, ctx, l, "cattle", "10.213.1.99") {
		t.Error("cattle@10.213.1.99 still exists after db.prune")
	}
	t.Run("hosts join", func(t *testing.T) {
		converge(t, ctx, l, manifest, nodes)
		checkHostsJoin(t, ctx, l, manifest)
	})
	t.Run("upgrade, and back through the backup", func(t *testing.T) {
		converge(t, ctx, l, manifest, nodes)
		checkUpgrade(t, ctx, l, manifest, nodes)
	})
	t.Run("an upgrade interrupted after a stop", func(t *testing.T) {
		converge(t, ctx, l, manifest, nodes)
		checkUpgradeInterrupted(t, ctx, l, manifest, nodes)
	})
	t.Run("backup and restore", func(t *testing.T) {
		converge(t, ctx, l, manifest, nodes)
		checkBackupRestore(t, ctx, l, manifest, nodes)
	})
	t.Run("a restore interrupted while it loads", func(t *testing.T) {
		converge(t, ctx, l, manifest, nodes)
		checkRestoreInterrupted(t, ctx, l, manifest, nodes)
	})
	t.Run("status", func(t *testing.T) {
		converge(t, ctx, l, manifest, nodes)
		checkStatus(t, ctx, l, manifest, nodes)
	})
	t.Run("destroyed, then restored from its backup", func(t *testing.T) {
		converge(t, ctx, l, manifest, nodes)
		checkDestroyRestore(t, ctx, l, manifest, nodes)
	})
	t.Run("destroy", func(t *testing.T) {
		converge(t, ctx, l, manifest, nodes)
		checkDestroy(t, ctx, l, manifest, nodes)
	})
	t.Run("a node and a host down", func(t *testing.T) { checkMachinesDown(t, ctx, l, manifest, nodes) })
	t.Run("database admin through ssh", func(t *testing.T) {
		converge(t, ctx, l, manifest, nodes)
		checkAdminViaSSH(t, ctx, l, manifest)
	})
	t.Run("access control on", func(t *testing.T) {
		converge(t, ctx, l, manifest, nodes)
		checkAccessControl(t, ctx, l, manifest, nodes)
	})
}

// TestConvergeSingleNode: a cluster of size 1 on rs1 alone, in its own
// database, also converges.
func TestConvergeSingleNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	l := loadLab(t)
	resetCluster(t, ctx, l, "cattle")
	resetCluster(t, ctx, l, "cattle_single")
	src, err := os.ReadFile(l.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	single := singleNodeManifest(t, string(src))
	path := filepath.Join(l.Dir, "cluster-single.yaml")
	if err := os.WriteFile(path, []byte(single), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
	if r := haplan(t, ctx, "apply", "-f", path, "--auto-approve"); r.code != 0 {
		t.Fatalf("apply single node: exit %d", r.code)
	}
	if r := haplan(t, ctx, "plan", "-f", path, "--detailed-exitcode"); r.code != 0 {
		t.Fatalf("plan after apply: exit %d, want 0", r.code)
	}
	checkCluster(t, ctx, l, []string{"rs1"}, nil)
	resetCluster(t, ctx, l, "cattle_single")
}

// singleNodeManifest keeps rs1 only and moves the cluster to its own
// database, by editing the lab's manifest as a user would.
func singleNodeManifest(t *testing.T, src string) string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(withoutNodes(t, src, "rs2", "rs3", "rs4", "rs5"), "\n") {
		switch trim := strings.TrimSpace(line); {
		case strings.HasPrefix(line, "name:"):
			line = "name: lab-single"
		case strings.HasPrefix(trim, "name: cattle"):
			line = strings.Replace(line, "cattle", "cattle_single", 1)
		}
		out = append(out, line)
	}
	s := strings.Join(out, "\n")
	if !strings.Contains(s, "cattle_single") {
		t.Fatalf("could not derive a single-node manifest from:\n%s\ngot:\n%s", src, s)
	}
	return s
}

// withoutNodes drops the named nodes' entries from a manifest's node list,
// as a user editing it would.
func withoutNodes(t *testing.T, src string, drop ...string) string {
	t.Helper()
	var out []string
	skip := false
	for _, line := range strings.Split(src, "\n") {
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "- name: ") {
			skip = slices.Contains(drop, strings.TrimPrefix(trim, "- name: "))
		} else if skip && !strings.HasPrefix(line, "    ") {
			skip = false
		}
		if !skip {
			out = append(out, line)
		}
	}
	s := strings.Join(out, "\n")
	for _, n := range drop {
		if strings.Contains(s, "- name: "+n+"\n") {
			t.Fatalf("%s is still in the manifest:\n%s", n, s)
		}
	}
	return s
}

func nodeIP(t *testing.T, l *lab.Lab, name string) string {
	t.Helper()
	for _, h := range l.Hosts {
		if h.Name == name {
			return h.IP
		}
	}
	t.Fatalf("no lab host %s", name)
	return ""
}

// checkCA asserts every agent host holds the CA that the nodes hold, 0400.
func checkCA(t *testing.T, ctx context.Context, l *lab.Lab) {
	t.Helper()
	waitFile(t, ctx, l, "rs1", "/var/lib/rancher/etc/ssl/ca.crt")
	want := sh(t, ctx, l, "rs1", "sha256sum /var/lib/rancher/etc/ssl/ca.crt | cut -d' ' -f1")
	for _, h := range hostsByRole(l, lab.RoleAgent) {
		got := sh(t, ctx, l, h.Name, "stat -c %a /var/lib/rancher/etc/ssl/ca.crt; sha256sum /var/lib/rancher/etc/ssl/ca.crt | cut -d' ' -f1")
		if got != "400\n"+want {
			t.Errorf("%s: ca.crt mode and digest %q, want 400 and %q", h.Name, got, want)
		}
	}
}
