//go:build lab

package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/haplan/haplan/lab"
)

// TestReplaceDeadNode loses rs3's machine for good and replaces it, as an
// operator would, by a new machine at another address (the lab's first
// spare) in the node list. The cluster keeps its size, so there is no new
// script and no outage: the new node starts with the same rancher-ha.sh,
// the dead one is removed from Rancher, the database and the load
// balancer, and the plan says that its machine could not be checked.
// Judged on the machines, the API, the database and HAProxy's
// configuration: the new node took the freed membership index.
func TestReplaceDeadNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	l := loadLab(t)
	spares := hostsByRole(l, lab.RoleSpare)
	if len(spares) < 1 {
		t.Fatal("the lab has no spare machine (haplab up --spares 2)")
	}
	spare := spares[0]
	dead := "rs3"
	deadIP := nodeIP(t, l, dead)
	resetCluster(t, ctx, l, "cattle")
	src, err := os.ReadFile(l.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	replaced := filepath.Join(l.Dir, "cluster-replace.yaml")
	if err := os.WriteFile(replaced, []byte(withNodes(t, withoutNodes(t, string(src), dead), spare)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Remove(replaced)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := l.Start(ctx, dead); err != nil {
			t.Errorf("start %s again: %v", dead, err)
		}
		resetCluster(t, ctx, l, "cattle")
	})
	converge(t, ctx, l, l.Manifest, []string{"rs1", "rs2", dead})
	freed := memberIndex(t, ctx, l, deadIP)
	if freed == 0 {
		t.Fatalf("%s has no membership index in the cluster table", dead)
	}
	if err := l.Kill(ctx, dead); err != nil {
		t.Fatal(err)
	}

	r := haplan(t, ctx, "plan", "-f", replaced)
	for _, want := range []string{
		"+ ha.start[" + spare.Name + "]", "+ db.grant[" + spare.Name + "]", "+ image.pull[" + spare.Name + "]", "~ lb.config", "- ha.prune", "- db.prune",
		deadIP + " left the manifest and cannot be checked",
		// The new node gets the cluster's script, as it is.
		"~ script.generate  copy the cluster's rancher-ha.sh from",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "resize") {
		t.Errorf("a same-size replacement is planned as a resize:\n%s", r.stdout)
	}
	got := pending(t, ctx, replaced)
	for _, never := range []string{"db.backup", "ha.stop[rs1]", "ha.stop[rs2]", "ha.start[rs1]", "ha.start[rs2]"} {
		if slices.Contains(got, never) {
			t.Errorf("the replacement plans %s (%v): a same-size replacement is no resize, and nothing stops", never, got)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if r := haplan(t, ctx, "apply", "-f", replaced, "--auto-approve"); r.code != 0 {
		t.Fatalf("apply: exit %d", r.code)
	}

	nodes := []string{"rs1", "rs2", spare.Name}
	checkCluster(t, ctx, l, nodes, nil)
	checkSize(t, ctx, l, nodes, 3)
	if got := memberIndex(t, ctx, l, spare.IP); got != freed {
		t.Errorf("%s holds membership index %d, want %d, the one %s freed", spare.Name, got, freed, dead)
	}
	// System HA lists exactly the three nodes, in any state: the dead
	// node's host was deactivated and removed, not left "reconnecting".
	hs, err := systemHARecords(ctx, "http://"+net.JoinHostPort(l.IP("rs1"), "18080"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, h := range hs {
		if len(h.IPAddresses) > 0 && !slices.Contains([]string{"removed", "removing", "purged", "purging"}, h.State) {
			listed = append(listed, h.IPAddresses[0].Address)
		}
	}
	slices.Sort(listed)
	want := []string{nodeIP(t, l, "rs1"), nodeIP(t, l, "rs2"), spare.IP}
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Errorf("System HA hosts %v, want %v", listed, want)
	}
	if userExists(t, ctx, l, "cattle", deadIP) {
		t.Errorf("cattle@%s (the dead %s) still exists", deadIP, dead)
	}
	if !userExists(t, ctx, l, "cattle", spare.IP) {
		t.Errorf("cattle@%s (%s) does not exist", spare.IP, spare.Name)
	}
	cfg := sh(t, ctx, l, "lb", "cat /etc/haproxy/haproxy.cfg")
	if strings.Contains(cfg, deadIP+":") || !strings.Contains(cfg, spare.IP+":443") {
		t.Errorf("the load balancer's pool does not follow the replacement:\n%s", cfg)
	}
	if got := pending(t, ctx, replaced); len(got) != 0 {
		t.Errorf("plan after the replacement: %v, want empty", got)
	}
	if t.Failed() {
		t.FailNow()
	}

	// The dead machine is switched on again, its old rancher-ha with it
	// (the script's restart policy). Its grant was dropped, so it cannot
	// rejoin; here it still can log in to the database (its grant put
	// back behind haplan's back, as a grantHosts pattern or an old dump
	// would leave it), so it is a member of the cluster again, without a
	// System HA host (its host was removed, its agent deactivated with
	// it). The next plan finds it in the cluster table, stops it and
	// cleans the machine, and drops the grant again; the cluster keeps its
	// three nodes.
	pw, err := os.ReadFile(filepath.Join(l.Dir, "secrets", "db-password"))
	if err != nil {
		t.Fatal(err)
	}
	sql(t, ctx, l, fmt.Sprintf("CREATE USER 'cattle'@'%s' IDENTIFIED BY '%s'; GRANT ALL ON cattle.* TO 'cattle'@'%s';", deadIP, strings.TrimSpace(string(pw)), deadIP))
	if err := l.Start(ctx, dead); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, ctx, l, dead, "rancher-ha")
	for deadline := time.Now().Add(60 * time.Second); count(t, ctx, l, "SELECT COUNT(*) FROM cattle.cluster WHERE ip_address=?", deadIP) == 0; time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not rejoin the cluster table within 60 s", dead)
		}
	}
	r = haplan(t, ctx, "plan", "-f", replaced)
	if !strings.Contains(r.stdout, "- ha.retire") || !strings.Contains(r.stdout, "stop rancher-ha on "+deadIP) || !strings.Contains(r.stdout, "- db.prune") {
		t.Errorf("the plan after %s came back does not stop its rancher-ha and drop its grant:\n%s", dead, r.stdout)
	}
	if r := haplan(t, ctx, "apply", "-f", replaced, "--auto-approve"); r.code != 0 {
		t.Fatalf("apply after %s came back: exit %d", dead, r.code)
	}
	checkDeparted(t, ctx, l, dead) // no rancher-ha, no grant
	if files := strings.TrimSpace(sh(t, ctx, l, dead, "ls /var/lib/rancher/etc 2>/dev/null || true")); files != "" {
		t.Errorf("%s still has /var/lib/rancher/etc: %s", dead, files)
	}
	checkCluster(t, ctx, l, nodes, nil)
	if got := pending(t, ctx, replaced); len(got) != 0 {
		t.Errorf("plan after %s was cleaned: %v, want empty", dead, got)
	}
}

// waitRunning waits until a container runs on a lab machine.
func waitRunning(t *testing.T, ctx context.Context, l *lab.Lab, host, container string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(time.Second) {
		if strings.TrimSpace(sh(t, ctx, l, host, "docker inspect -f '{{.State.Running}}' "+container+" 2>/dev/null || true")) == "true" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s is not running within 60 s", host, container)
		}
	}
}

// memberIndex is the membership index of the live cluster-table row at
// ip (the newest, as a restarted node registers again), 0 when none.
func memberIndex(t *testing.T, ctx context.Context, l *lab.Lab, ip string) int {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
		n := count(t, ctx, l, "SELECT COALESCE((SELECT assigned_index FROM cattle.cluster WHERE ip_address=? ORDER BY id DESC LIMIT 1), 0)", ip)
		if n != 0 || time.Now().After(deadline) {
			return n
		}
	}
}
