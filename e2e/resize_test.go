//go:build lab

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haplan/haplan/lab"
)

// TestResize grows a one-node cluster to three nodes, then to five (the
// lab's spares rs4 and rs5), and shrinks it back to three and one, as an
// operator would: by editing the node list. Each is one outage with a new
// rancher-ha.sh from the running cluster, judged on the machines and the
// database: every node's server.conf and the ha.cluster.size setting name
// the new size, System HA holds exactly the manifest's nodes, the backup
// taken first is there; after a shrink the departed nodes run no
// rancher-ha and have no grant. Growing to five is blocked first by the
// lab database's max_connections (MariaDB's default 151, five nodes need
// 250), with nothing changed, until it is raised.
func TestResize(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	l := loadLab(t)
	resetCluster(t, ctx, l, "cattle")
	src, err := os.ReadFile(l.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	one := filepath.Join(l.Dir, "cluster-resize-1.yaml")
	if err := os.WriteFile(one, []byte(withoutNodes(t, string(src), "rs2", "rs3")), 0o600); err != nil {
		t.Fatal(err)
	}
	spares := hostsByRole(l, lab.RoleSpare)
	if len(spares) < 2 {
		t.Fatalf("the lab has %d spare machines, the resize to five needs 2 (haplab up --spares 2)", len(spares))
	}
	four, five := spares[0].Name, spares[1].Name
	fiveNodes := filepath.Join(l.Dir, "cluster-resize-5.yaml")
	if err := os.WriteFile(fiveNodes, []byte(withNodes(t, string(src), spares[:2]...)), 0o600); err != nil {
		t.Fatal(err)
	}
	maxConns := count(t, ctx, l, "SELECT @@GLOBAL.max_connections")
	backups := filepath.Join(l.Dir, ".haplan", "backups")
	t.Cleanup(func() {
		os.Remove(one)
		os.Remove(fiveNodes)
		sql(t, context.Background(), l, "SET GLOBAL max_connections = "+strconv.Itoa(maxConns))
		os.RemoveAll(backups)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		resetCluster(t, ctx, l, "cattle")
	})
	converge(t, ctx, l, one, []string{"rs1"})
	checkSize(t, ctx, l, []string{"rs1"}, 1)

	t.Run("grow 1 to 3", func(t *testing.T) {
		r := haplan(t, ctx, "plan", "-f", l.Manifest)
		for _, want := range []string{
			"resize from 1 to 3 nodes", "the Rancher server is down",
			"- ha.stop[rs1]", "± ha.start[rs1]", "+ ha.start[rs2]", "+ ha.start[rs3]", "+ db.backup",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("plan lacks %q:\n%s", want, r.stdout)
			}
		}
		converge(t, ctx, l, l.Manifest, []string{"rs1", "rs2", "rs3"})
		checkSize(t, ctx, l, []string{"rs1", "rs2", "rs3"}, 3)
		if got := pending(t, ctx, l.Manifest); len(got) != 0 {
			t.Errorf("plan after the resize: %v, want empty", got)
		}
		if dumps, _ := filepath.Glob(filepath.Join(backups, "lab-pre-resize-*.sql")); len(dumps) != 1 {
			t.Errorf("backups before the resize: %v, want one", dumps)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	all := []string{"rs1", "rs2", "rs3", four, five}
	t.Run("grow 3 to 5, max_connections first", func(t *testing.T) {
		if maxConns >= 250 {
			t.Fatalf("the lab database allows %d connections: the block this test expects needs fewer than 250 (MariaDB's default is 151)", maxConns)
		}
		for _, cmd := range []string{"plan", "apply"} {
			args := []string{cmd, "-f", fiveNodes}
			if cmd == "apply" {
				args = append(args, "--auto-approve")
			}
			r := haplan(t, ctx, args...)
			want := "max_connections is " + strconv.Itoa(maxConns) + "; 5 nodes need at least 250"
			if r.code != 1 || !strings.Contains(r.stdout+r.stderr, want) {
				t.Errorf("%s with max_connections %d: exit %d, want 1 and %q", cmd, maxConns, r.code, want)
			}
		}
		// Nothing was touched: the three nodes serve as before, the spares
		// run nothing and have no grant.
		checkSize(t, ctx, l, []string{"rs1", "rs2", "rs3"}, 3)
		checkCluster(t, ctx, l, []string{"rs1", "rs2", "rs3"}, nil)
		for _, n := range []string{four, five} {
			if ps := strings.TrimSpace(sh(t, ctx, l, n, "docker ps -a --format '{{.Names}}'")); ps != "" {
				t.Errorf("%s after the refused resize: containers %q", n, ps)
			}
			if userExists(t, ctx, l, "cattle", nodeIP(t, l, n)) {
				t.Errorf("cattle@%s (%s) exists after the refused resize", nodeIP(t, l, n), n)
			}
		}
		if t.Failed() {
			t.FailNow()
		}

		sql(t, ctx, l, "SET GLOBAL max_connections = 250")
		r := haplan(t, ctx, "plan", "-f", fiveNodes)
		for _, want := range []string{"resize from 3 to 5 nodes", "the Rancher server is down", "+ ha.start[" + four + "]", "+ ha.start[" + five + "]", "+ db.grant[" + four + "]"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("plan lacks %q:\n%s", want, r.stdout)
			}
		}
		converge(t, ctx, l, fiveNodes, all)
		checkSize(t, ctx, l, all, 5)
		if got := pending(t, ctx, fiveNodes); len(got) != 0 {
			t.Errorf("plan after the resize: %v, want empty", got)
		}
		if dumps, _ := filepath.Glob(filepath.Join(backups, "lab-pre-resize-*.sql")); len(dumps) != 2 {
			t.Errorf("backups after two resizes: %v, want two", dumps)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("shrink 5 to 3", func(t *testing.T) {
		converge(t, ctx, l, l.Manifest, []string{"rs1", "rs2", "rs3"})
		checkSize(t, ctx, l, []string{"rs1", "rs2", "rs3"}, 3)
		checkDeparted(t, ctx, l, four, five)
		if got := pending(t, ctx, l.Manifest); len(got) != 0 {
			t.Errorf("plan after the shrink: %v, want empty", got)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("shrink 3 to 1", func(t *testing.T) {
		got := pending(t, ctx, one)
		for _, want := range []string{"script.generate", "ha.retire", "ha.stop[rs1]", "ha.start[rs1]", "ha.prune", "db.prune"} {
			if !slices.Contains(got, want) {
				t.Errorf("shrink plan %v lacks %s", got, want)
			}
		}
		converge(t, ctx, l, one, []string{"rs1"})
		checkSize(t, ctx, l, []string{"rs1"}, 1)
		checkDeparted(t, ctx, l, "rs2", "rs3")
		if got := pending(t, ctx, one); len(got) != 0 {
			t.Errorf("plan after the shrink: %v, want empty", got)
		}
	})
}

// checkDeparted asserts that machines which left the manifest run no
// rancher-ha container and have no grant.
func checkDeparted(t *testing.T, ctx context.Context, l *lab.Lab, machines ...string) {
	t.Helper()
	for _, n := range machines {
		if ps := strings.TrimSpace(sh(t, ctx, l, n, "docker ps -a --filter name=^/rancher-ha --format '{{.Names}}'")); ps != "" {
			t.Errorf("%s left the manifest and still has %q", n, ps)
		}
		if userExists(t, ctx, l, "cattle", nodeIP(t, l, n)) {
			t.Errorf("cattle@%s (%s) still exists after it left the manifest", nodeIP(t, l, n), n)
		}
	}
}

// withNodes adds machines to the node list of a lab manifest.
func withNodes(t *testing.T, src string, add ...lab.Host) string {
	t.Helper()
	out, err := lab.WithNodes(src, add...)
	if err != nil {
		t.Fatalf("%v:\n%s", err, src)
	}
	return out
}

// checkSize asserts every node's server.conf, as the script wrote it, and
// the database's ha.cluster.size setting name size.
func checkSize(t *testing.T, ctx context.Context, l *lab.Lab, nodes []string, size int) {
	t.Helper()
	want := "export CATTLE_HA_CLUSTER_SIZE=" + strconv.Itoa(size)
	for _, n := range nodes {
		if got := strings.TrimSpace(sh(t, ctx, l, n, "grep '^export CATTLE_HA_CLUSTER_SIZE=' /var/lib/rancher/etc/server.conf")); got != want {
			t.Errorf("%s: server.conf says %q, want %q", n, got, want)
		}
	}
	if got := count(t, ctx, l, "SELECT COUNT(*) FROM cattle.setting WHERE name='ha.cluster.size' AND value=?", strconv.Itoa(size)); got != 1 {
		t.Errorf("ha.cluster.size is not %d in the database", size)
	}
}
