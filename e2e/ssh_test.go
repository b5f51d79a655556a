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

	"github.com/google/go-cmp/cmp"
)

// TestBastionAndSudo: a host reached only through a bastion (the LB host),
// as a non-root user with passwordless sudo, gets the CA like any other.
// Direct SSH from this machine to that host is blocked for the test, so the
// apply can only have gone through the bastion.
func TestBastionAndSudo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l := loadLab(t)
	if r := haplan(t, ctx, "apply", "-f", l.Manifest, "--auto-approve"); r.code != 0 {
		t.Fatalf("converge the lab cluster first: exit %d", r.code)
	}
	target := nodeIP(t, l, "h3")
	sh(t, ctx, l, "h3", `id deploy >/dev/null 2>&1 || useradd -m -s /bin/sh deploy
mkdir -p /home/deploy/.ssh && cp /root/.ssh/authorized_keys /home/deploy/.ssh/authorized_keys
chown -R deploy:deploy /home/deploy/.ssh && chmod 700 /home/deploy/.ssh && chmod 600 /home/deploy/.ssh/authorized_keys
echo 'deploy ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/deploy && chmod 440 /etc/sudoers.d/deploy
rm -f /var/lib/rancher/etc/ssl/ca.crt`)
	t.Cleanup(func() {
		sh(t, context.Background(), l, "h3", "rm -f /etc/sudoers.d/deploy; userdel -r deploy >/dev/null 2>&1; true")
	})

	src, err := os.ReadFile(l.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	entry := "  - name: h3\n    address: " + target + "\n"
	if !strings.Contains(string(src), entry) {
		t.Fatalf("lab manifest has no %q", entry)
	}
	bastion := strings.Replace(string(src), entry, entry+"    ssh:\n      user: deploy\n      bastion: root@"+nodeIP(t, l, "lb")+"\n", 1)
	path := filepath.Join(l.Dir, "cluster-bastion.yaml")
	if err := os.WriteFile(path, []byte(bastion), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })

	// This machine may no longer open SSH connections to h3 itself.
	rule := []string{"OUTPUT", "-d", target, "-p", "tcp", "--dport", "22", "-j", "REJECT"}
	if out, err := exec.Command("iptables", append([]string{"-I"}, rule...)...).CombinedOutput(); err != nil {
		t.Fatalf("block direct ssh to h3: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("iptables", append([]string{"-D"}, rule...)...).Run() })
	if r := haplan(t, ctx, "plan", "-f", l.Manifest, "--target", "cert.distribute[h3]"); r.code == 0 {
		t.Fatalf("plan reached h3 directly although direct SSH is blocked")
	}

	if diff := cmp.Diff([]string{"cert.distribute[h3]"}, pending(t, ctx, path)); diff != "" {
		t.Fatalf("plan through the bastion (-want +got):\n%s", diff)
	}
	if r := haplan(t, ctx, "apply", "-f", path, "--auto-approve"); r.code != 0 {
		t.Fatalf("apply through the bastion as deploy: exit %d", r.code)
	}
	if got := pending(t, ctx, path); len(got) != 0 {
		t.Fatalf("plan after apply is not empty: %v", got)
	}
	want := sh(t, ctx, l, "rs1", "sha256sum /var/lib/rancher/etc/ssl/ca.crt | cut -d' ' -f1")
	got := sh(t, ctx, l, "h3", "stat -c '%U %a' /var/lib/rancher/etc/ssl/ca.crt; sha256sum /var/lib/rancher/etc/ssl/ca.crt | cut -d' ' -f1")
	if got != "root 400\n"+want {
		t.Errorf("h3 ca.crt owner, mode, digest = %q, want root 400 %q", got, want)
	}
}
