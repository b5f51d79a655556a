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

// TestResize grows a one-node cluster to three nodes and shrinks it back,
// as an operator would: by editing the node list. Each is one outage with
// a new rancher-ha.sh from the running cluster, judged on the machines and
// the database: every node's server.conf and the ha.cluster.size setting
// name the new size, System HA holds exactly the manifest's nodes, the
// backup taken first is there; after the shrink the departed nodes run no
// rancher-ha and have no grant.
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
	backups := filepath.Join(l.Dir, ".haplan", "backups")
	t.Cleanup(func() {
		os.Remove(one)
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

	t.Run("shrink 3 to 1", func(t *testing.T) {
		got := pending(t, ctx, one)
		for _, want := range []string{"script.generate", "ha.retire", "ha.stop[rs1]", "ha.start[rs1]", "ha.prune", "db.prune"} {
			if !slices.Contains(got, want) {
				t.Errorf("shrink plan %v lacks %s", got, want)
			}
		}
		converge(t, ctx, l, one, []string{"rs1"})
		checkSize(t, ctx, l, []string{"rs1"}, 1)
		for _, n := range []string{"rs2", "rs3"} {
			if ps := strings.TrimSpace(sh(t, ctx, l, n, "docker ps -a --filter name=^/rancher-ha --format '{{.Names}}'")); ps != "" {
				t.Errorf("%s left the manifest and still has %q", n, ps)
			}
			if userExists(t, ctx, l, "cattle", nodeIP(t, l, n)) {
				t.Errorf("cattle@%s (%s) still exists after the shrink", nodeIP(t, l, n), n)
			}
		}
		if got := pending(t, ctx, one); len(got) != 0 {
			t.Errorf("plan after the shrink: %v, want empty", got)
		}
	})
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
