//go:build lab

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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

// upgradeManifest writes the lab manifest with rancher.image at the next
// release as name, next to it; the test's end removes it and the backups.
func upgradeManifest(t *testing.T, manifest, name string) (up, backups string) {
	t.Helper()
	src, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), "  image: "+lab.RancherImage+"\n", "  image: "+lab.NextRancherImage+"\n", 1)
	if text == string(src) {
		t.Fatal("no rancher.image in the lab's manifest")
	}
	up = filepath.Join(filepath.Dir(manifest), name)
	if err := os.WriteFile(up, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	backups = filepath.Join(filepath.Dir(manifest), ".haplan", "backups")
	t.Cleanup(func() {
		os.Remove(up)
		os.RemoveAll(backups)
	})
	return up, backups
}

// checkUpgraded judges an upgrade done: every node runs the next release
// (its container and its own API say so) and the plan is empty.
func checkUpgraded(t *testing.T, ctx context.Context, l *lab.Lab, up string, nodes []string) {
	t.Helper()
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
}

// checkUpgradeInterrupted interrupts an upgrade twice (Ctrl-C, Ctrl-C)
// while the nodes start with the new release: the first lets the started
// group finish (nodes stopped for an upgrade are started, or the server
// would stay down), the second cancels rs1's start, held by a shim.
// The run exits 1 and says which node it stopped and did not start, how to
// go on and how to go back (the backup); `haplan status` names rs1; the
// next apply finishes the upgrade; the backup taken before it brings
// v1.0.1 back.
func checkUpgradeInterrupted(t *testing.T, ctx context.Context, l *lab.Lab, manifest string, nodes []string) {
	up, backups := upgradeManifest(t, manifest, "cluster-upgrade-interrupted.yaml")
	// rs1's start (rancher-ha.sh's docker run) is held until the test is
	// done with it, so that both interrupts come while it runs.
	removeShim := shim(t, ctx, l, "rs1", "docker", holdShim("docker", "/usr/bin/docker", "run"))
	run := startBG(t, ctx, "apply", "-f", up, "--auto-approve")
	run.waitFor(t, "ha.start[rs1] started", 5*time.Minute)
	waitShim(t, ctx, l, "rs1", "docker", run)
	run.waitFor(t, "ha.start[rs2] done", time.Minute)
	run.waitFor(t, "ha.start[rs3] done", time.Minute)
	for _, want := range []string{"Interrupted: starting no new steps", "Interrupted: cancelling running steps"} {
		if err := run.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		run.waitFor(t, want, 10*time.Second)
	}
	<-run.done
	removeShim()
	var ee *exec.ExitError
	if !errors.As(run.err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("interrupted upgrade: %v, want exit 1", run.err)
	}
	out, errOut := run.out.String(), run.errb.String()
	t.Logf("interrupted upgrade:\n--- stdout\n%s--- stderr\n%s", out, errOut)
	if strings.Contains(out, "ha.start[rs1] done") {
		t.Error("rs1's start finished though it was cancelled")
	}
	for _, want := range []string{"this run stopped rancher-ha on rs1 and did not start it again", "run haplan apply -f " + up + " again", "haplan restore -f " + up + " "} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the interrupted upgrade does not say %q", want)
		}
	}
	var down []string
	for _, n := range nodes {
		if strings.TrimSpace(sh(t, ctx, l, n, "docker inspect -f '{{.State.Running}}' rancher-ha 2>/dev/null || echo absent")) != "true" {
			down = append(down, n)
		}
	}
	if !slices.Equal(down, []string{"rs1"}) {
		t.Fatalf("nodes without a running rancher-ha after the cancelled start: %v, want [rs1]", down)
	}
	r := haplan(t, ctx, "status", "-f", up)
	if r.code != 4 && r.code != 5 {
		t.Errorf("status after the interrupted upgrade: exit %d, want 4 (degraded) or 5 (down)", r.code)
	}
	for _, n := range down {
		if !strings.Contains(r.stdout, n) {
			t.Errorf("status does not name the stopped node %s:\n%s", n, r.stdout)
		}
	}

	// Going on finishes the upgrade.
	if r := haplan(t, ctx, "apply", "-f", up, "--auto-approve"); r.code != 0 {
		t.Fatalf("apply after the interrupt: exit %d", r.code)
	}
	checkUpgraded(t, ctx, l, up, nodes)
	// Back to v1.0.1 for the tests after this one.
	dumps, _ := filepath.Glob(filepath.Join(backups, "lab-pre-upgrade-*.sql"))
	if len(dumps) != 1 {
		t.Fatalf("backups of the interrupted upgrade: %v, want one", dumps)
	}
	if r := haplan(t, ctx, "restore", "-f", manifest, "--auto-approve", dumps[0]); r.code != 0 {
		t.Fatalf("restore of the pre-upgrade backup: exit %d", r.code)
	}
	checkCluster(t, ctx, l, nodes, nil)
}

// checkUpgrade upgrades the cluster from v1.0.1 to v1.0.2 and back through
// the backup haplan took before the upgrade: the plan shows the outage in
// order, every node runs the new release afterwards (its container and
// its own API say so), the backup is there, and restoring it with the old
// image brings back the old release.
func checkUpgrade(t *testing.T, ctx context.Context, l *lab.Lab, manifest string, nodes []string) {
	up, backups := upgradeManifest(t, manifest, "cluster-upgrade.yaml")

	got := pending(t, ctx, up)
	for _, want := range []string{"db.backup", "ha.stop[rs1]", "ha.start[rs1]", "image.pull[rs1]"} {
		if !slices.Contains(got, want) {
			t.Errorf("upgrade plan %v lacks %s", got, want)
		}
	}
	if r := haplan(t, ctx, "apply", "-f", up, "--auto-approve"); r.code != 0 {
		t.Fatalf("upgrade apply: exit %d", r.code)
	}
	checkUpgraded(t, ctx, l, up, nodes)
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
