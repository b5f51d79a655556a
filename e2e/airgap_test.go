//go:build lab

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haplan/haplan/lab"
)

// TestAirGapped installs the cluster on nodes that cannot pull the usual
// image names at all (every request for /v2/rancher/... to the lab registry,
// which stands in for Docker Hub through the nodes' mirror, is refused on
// the nodes), only copies under a private path of another registry name:
// with rancher.imageRegistry the nodes pull from there, tag the images
// with their usual names, and the cluster forms; no node pulled anything at
// run time.
func TestAirGapped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	l := loadLab(t)
	resetCluster(t, ctx, l, "cattle")

	// The "private registry": the lab registry under airgap/, addressed
	// by the nodes directly (it is an insecure registry to them).
	private := strings.TrimPrefix(l.RegistryMirror, "http://") + "/airgap"
	for _, img := range []string{lab.RancherImage, lab.AgentImage, lab.AgentInstanceImage} {
		local := lab.RegistryAddr + "/airgap/" + img
		for _, args := range [][]string{{"tag", img, local}, {"push", local}, {"rmi", local}} {
			if out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput(); err != nil {
				t.Fatalf("docker %v: %v\n%s", args, err, out)
			}
		}
	}
	// Docker Hub is out of reach: the usual names cannot be pulled.
	rule := "OUTPUT -d " + strings.Split(private, ":")[0] + " -p tcp --dport 5000 -m string --string /v2/rancher/ --algo bm -j REJECT --reject-with tcp-reset"
	nodes := []string{"rs1", "rs2", "rs3"}
	for _, n := range nodes {
		sh(t, ctx, l, n, "iptables -I "+rule)
		t.Cleanup(func() { _, _ = l.Exec(context.WithoutCancel(ctx), n, nil, "sh", "-c", "iptables -D "+rule) })
	}
	if out, err := l.Exec(ctx, "rs1", nil, "sh", "-c", "docker pull "+lab.AgentImage); err == nil {
		t.Fatalf("rs1 could still pull %s: the cut does not hold\n%s", lab.AgentImage, out)
	}

	src, err := os.ReadFile(l.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	withReg := strings.Replace(string(src), "\nrancher:\n", "\nrancher:\n  imageRegistry: "+private+"\n", 1)
	manifest := filepath.Join(l.Dir, "cluster-airgap.yaml")
	if err := os.WriteFile(manifest, []byte(withReg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(manifest) })

	if r := haplan(t, ctx, "apply", "-f", manifest, "--auto-approve"); r.code != 0 {
		t.Fatalf("air-gapped install: exit %d", r.code)
	}
	if r := haplan(t, ctx, "plan", "-f", manifest, "--detailed-exitcode"); r.code != 0 {
		t.Errorf("plan after the air-gapped install: exit %d, want 0", r.code)
	}
	checkCluster(t, ctx, l, nodes, nil)
	for _, n := range nodes {
		if logs := sh(t, ctx, l, n, "docker logs rancher-ha 2>&1"); strings.Contains(logs, "Can not launch agent right now") {
			t.Errorf("%s tried to pull its agent at run time:\n%s", n, logs)
		}
	}
}
