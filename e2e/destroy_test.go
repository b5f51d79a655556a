//go:build lab

package e2e

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haplan/haplan/lab"
)

// checkDestroyRestore destroys the cluster with its database kept, then
// restores the backup destroy took first: the same cluster answers again,
// judged without haplan: the same CA on the nodes and through the load
// balancer, and the same Rancher hosts (their ids), active, whose agents
// came back with the identity destroy left on the machines.
func checkDestroyRestore(t *testing.T, ctx context.Context, l *lab.Lab, manifest string, nodes []string) {
	backups := filepath.Join(filepath.Dir(manifest), ".haplan", "backups")
	t.Cleanup(func() { _ = os.RemoveAll(backups) })
	ids := checkHosts(t, ctx, l, nil)
	ca := sh(t, ctx, l, nodes[0], "cat /var/lib/rancher/etc/ssl/ca.crt")
	if r := haplan(t, ctx, "destroy", "-f", manifest, "--auto-approve"); r.code != 0 {
		t.Fatalf("destroy: exit %d", r.code)
	}
	checkNodesDestroyed(t, ctx, l, nodes)
	for _, h := range hostsByRole(l, lab.RoleAgent) {
		if out := strings.TrimSpace(sh(t, ctx, l, h.Name, "docker ps -a --format '{{.Names}}' | grep '^rancher-agent' || true; test -e /var/lib/rancher/etc/ssl/ca.crt && echo ca; test -e /var/lib/rancher/state/.registration_token || echo no-identity; true")); out != "" {
			t.Errorf("%s after destroy with the database kept: %q (want no agent, no CA, the identity kept)", h.Name, out)
		}
	}
	dumps, _ := filepath.Glob(filepath.Join(backups, "lab-pre-destroy-*.sql"))
	if len(dumps) != 1 {
		t.Fatalf("backups before destroy: %v, want one", dumps)
	}
	if r := haplan(t, ctx, "restore", "-f", manifest, "--auto-approve", dumps[0]); r.code != 0 {
		t.Fatalf("restore onto the destroyed cluster: exit %d", r.code)
	}
	checkSameCluster(t, ctx, l, manifest, nodes, ca, ids)
}

// checkNodesDestroyed asserts that no node runs rancher-ha or a bootstrap
// server, or keeps /var/lib/rancher/etc.
func checkNodesDestroyed(t *testing.T, ctx context.Context, l *lab.Lab, nodes []string) {
	t.Helper()
	for _, n := range nodes {
		if out := strings.TrimSpace(sh(t, ctx, l, n, "docker ps -a --format '{{.Names}}' | grep -E '^(rancher-ha|haplan-bootstrap)' || true; test -e /var/lib/rancher/etc && echo files || true")); out != "" {
			t.Errorf("%s after destroy: %q left", n, out)
		}
	}
}

// checkSameCluster judges a restored cluster the one it was, without
// haplan: it serves (the LB's TLS verified against the CA read from a
// node), with the CA it had and the same Rancher hosts (ids), and the plan
// is empty.
func checkSameCluster(t *testing.T, ctx context.Context, l *lab.Lab, manifest string, nodes []string, caBefore string, hostsBefore map[string]string) {
	t.Helper()
	checkCluster(t, ctx, l, nodes, nil)
	if ca := waitFile(t, ctx, l, nodes[0], "/var/lib/rancher/etc/ssl/ca.crt"); ca != caBefore {
		t.Error("the cluster's CA changed across the restore")
	}
	hostsAfter := checkHosts(t, ctx, l, nil)
	for h, id := range hostsBefore {
		if hostsAfter[h] != id {
			t.Errorf("%s is Rancher host %s after the restore, was %s", h, hostsAfter[h], id)
		}
	}
	if got := pending(t, ctx, manifest); len(got) != 0 {
		t.Errorf("plan after the restore: %v, want empty", got)
	}
}

// checkDestroy destroys the cluster (with --drop-database, so that the lab
// can be installed again from nothing) and judges the result on the
// machines and the database server; a second destroy finds nothing to do;
// then one apply brings the cluster back.
func checkDestroy(t *testing.T, ctx context.Context, l *lab.Lab, manifest string, nodes []string) {
	backups := filepath.Join(filepath.Dir(manifest), ".haplan", "backups")
	t.Cleanup(func() { _ = os.RemoveAll(backups) })
	if r := haplan(t, ctx, "destroy", "-f", manifest); r.code != 1 || !strings.Contains(r.stderr, "not a terminal") {
		t.Fatalf("destroy without a terminal or --auto-approve: exit %d, want 1 refusing", r.code)
	}
	if r := haplan(t, ctx, "destroy", "-f", manifest, "--drop-database", "--auto-approve"); r.code != 0 {
		t.Fatalf("destroy: exit %d", r.code)
	}
	checkNodesDestroyed(t, ctx, l, nodes)
	for _, h := range hostsByRole(l, lab.RoleAgent) {
		if out := strings.TrimSpace(sh(t, ctx, l, h.Name, "docker ps -a --format '{{.Names}}' | grep '^rancher-agent' || true; test -e /var/lib/rancher/state && echo state; test -e /var/lib/rancher/etc/ssl/ca.crt && echo ca; true")); out != "" {
			t.Errorf("%s after destroy: %q left", h.Name, out)
		}
	}
	if userExists(t, ctx, l, "cattle", nodeIP(t, l, "rs1")) {
		t.Error("the grant of rs1 survived destroy")
	}
	if tableExists(t, ctx, l, "cluster") {
		t.Error("the database survived destroy --drop-database")
	}
	d := net.Dialer{Timeout: 3 * time.Second}
	if c, err := tls.DialWithDialer(&d, "tcp", net.JoinHostPort(l.IP("lb"), "443"), &tls.Config{InsecureSkipVerify: true}); err == nil {
		c.Close()
		t.Error("the load balancer still serves 443 after destroy")
	}
	dumps, _ := filepath.Glob(filepath.Join(backups, "lab-pre-destroy-*.sql"))
	if len(dumps) != 1 {
		t.Errorf("backups before destroy: %v, want one", dumps)
	}
	if r := haplan(t, ctx, "destroy", "-f", manifest, "--drop-database", "--auto-approve"); r.code != 0 || !strings.Contains(r.stdout, "Nothing to destroy.") {
		t.Errorf("a second destroy: exit %d, want 0 with nothing to destroy:\n%s", r.code, r.stdout)
	}
	converge(t, ctx, l, manifest, nodes)
}
