//go:build lab

package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/haplan/haplan/lab"
)

// serverImageSetting is what a node's own API reports as its release.
func serverImageSetting(t *testing.T, ctx context.Context, l *lab.Lab, node string) string {
	t.Helper()
	code, b, err := api(ctx, http.MethodGet, "http://"+net.JoinHostPort(l.IP(node), "18080")+"/v1/settings/rancher.server.image", nil, nil)
	if err != nil || code != 200 {
		t.Errorf("%s: rancher.server.image: %d %v %s", node, code, err, b)
		return ""
	}
	var s struct {
		Value string `json:"value"`
	}
	_ = json.Unmarshal(b, &s)
	return s.Value
}

// checkUpgrade upgrades the cluster from v1.0.1 to v1.0.2 and back through
// the backup haplan took before the upgrade: the plan shows the outage in
// order, every node runs the new release afterwards (its container and
// its own API say so), the backup is there, and restoring it with the old
// image brings back the old release.
func checkUpgrade(t *testing.T, ctx context.Context, l *lab.Lab, manifest string, nodes []string) {
	src, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	up := filepath.Join(filepath.Dir(manifest), "cluster-upgrade.yaml")
	text := strings.Replace(string(src), "  image: "+lab.RancherImage+"\n", "  image: "+lab.NextRancherImage+"\n", 1)
	if text == string(src) {
		t.Fatal("no rancher.image in the lab's manifest")
	}
	if err := os.WriteFile(up, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	backups := filepath.Join(filepath.Dir(manifest), ".haplan", "backups")
	t.Cleanup(func() {
		os.Remove(up)
		os.RemoveAll(backups)
	})

	got := pending(t, ctx, up)
	for _, want := range []string{"db.backup", "ha.stop[rs1]", "ha.start[rs1]", "image.pull[rs1]"} {
		if !slices.Contains(got, want) {
			t.Errorf("upgrade plan %v lacks %s", got, want)
		}
	}
	if r := haplan(t, ctx, "apply", "-f", up, "--auto-approve"); r.code != 0 {
		t.Fatalf("upgrade apply: exit %d", r.code)
	}
	for _, n := range nodes {
		img := strings.TrimSpace(sh(t, ctx, l, n, "docker inspect -f '{{.State.Running}} {{.Config.Image}}' rancher-ha"))
		if img != "true "+lab.NextRancherImage {
			t.Errorf("%s after the upgrade: rancher-ha %q, want running %s", n, img, lab.NextRancherImage)
		}
		if v := serverImageSetting(t, ctx, l, n); v != "v1.0.2" {
			t.Errorf("%s after the upgrade reports rancher.server.image %q, want v1.0.2", n, v)
		}
	}
	if got := pending(t, ctx, up); len(got) != 0 {
		t.Errorf("plan after the upgrade: %v, want empty", got)
	}
	dumps, _ := filepath.Glob(filepath.Join(backups, "lab-pre-upgrade-*.sql"))
	if len(dumps) != 1 {
		t.Fatalf("backups before the upgrade: %v, want one", dumps)
	}
	var rec struct {
		ServerImage string `json:"server_image"`
	}
	if b, err := os.ReadFile(dumps[0] + ".json"); err != nil || json.Unmarshal(b, &rec) != nil || rec.ServerImage != lab.RancherImage {
		t.Errorf("the pre-upgrade backup's record %s (%v) does not name the release it is of, %s", b, err, lab.RancherImage)
	}

	// Back to v1.0.1: a plan refuses the downgrade; the backup is the way.
	if r := haplan(t, ctx, "plan", "-f", manifest); r.code != 1 || !strings.Contains(r.stderr, "a downgrade") {
		t.Errorf("plan of v1.0.1 over v1.0.2: exit %d, want 1 with the downgrade refused:\n%s", r.code, r.stderr)
	}
	if r := haplan(t, ctx, "restore", "-f", manifest, "--auto-approve", dumps[0]); r.code != 0 {
		t.Fatalf("restore of the pre-upgrade backup: exit %d", r.code)
	}
	checkCluster(t, ctx, l, nodes, nil)
	for _, n := range nodes {
		if v := serverImageSetting(t, ctx, l, n); v != "v1.0.1" {
			t.Errorf("%s after the restore reports rancher.server.image %q, want v1.0.1", n, v)
		}
	}
	if got := pending(t, ctx, manifest); len(got) != 0 {
		t.Errorf("plan after the restore: %v, want empty", got)
	}
}
