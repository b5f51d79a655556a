//go:build lab

package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haplan/haplan/lab"
)

// checkAdminViaSSH gives the database an admin account that may log in
// from the nodes' subnet only, so MySQL itself tells where haplan's admin
// connection comes from: with database.admin.via ssh, plan and apply work
// (through a node's SSH connection); with direct, from this machine, the
// same account is refused and the plan names the database and the account.
func checkAdminViaSSH(t *testing.T, ctx context.Context, l *lab.Lab, manifest string) {
	const user = "haplan_e2e_admin"
	pw := "e2e-" + strings.ReplaceAll(t.Name(), "/", "-")
	sql(t, ctx, l, "CREATE USER '"+user+"'@'10.213.1.%' IDENTIFIED BY '"+pw+"'; GRANT ALL PRIVILEGES ON *.* TO '"+user+"'@'10.213.1.%' WITH GRANT OPTION;")
	t.Cleanup(func() { sql(t, context.WithoutCancel(ctx), l, "DROP USER IF EXISTS '"+user+"'@'10.213.1.%';") })

	dir := t.TempDir()
	pwFile := filepath.Join(dir, "admin-pw")
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	variant := func(via string) string {
		s := strings.Replace(string(src), "  admin:\n    user: root\n    password: {file: secrets/db-admin-password}\n",
			"  admin:\n    user: "+user+"\n    password: {file: "+pwFile+"}\n    via: "+via+"\n", 1)
		if s == string(src) {
			t.Fatal("no database.admin block in the lab manifest")
		}
		p := filepath.Join(filepath.Dir(manifest), "cluster-admin-"+via+".yaml")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(p) })
		return p
	}
	viaSSH, direct := variant("ssh"), variant("direct")

	if r := haplan(t, ctx, "plan", "-f", viaSSH, "--detailed-exitcode"); r.code != 0 {
		t.Errorf("plan with the admin through ssh: exit %d, want 0", r.code)
	}
	if r := haplan(t, ctx, "apply", "-f", viaSSH, "--auto-approve"); r.code != 0 {
		t.Errorf("apply (takes the lock) with the admin through ssh: exit %d, want 0", r.code)
	}
	r := haplan(t, ctx, "plan", "-f", direct)
	if r.code != 1 || !strings.Contains(r.stdout+r.stderr, user) || !strings.Contains(r.stdout+r.stderr, "Access denied") {
		t.Errorf("plan with the same admin from this machine: exit %d, want 1 naming %s and the refusal", r.code, user)
	}
	if strings.Contains(r.stdout+r.stderr, pw) {
		t.Error("haplan printed the admin password")
	}
}

// cutOffGID is the group haplan runs as in TestSiteOverSSHOnly; an
// iptables rule refuses that group every lab address but SSH.
const cutOffGID = 4242

// TestSiteOverSSHOnly installs the cluster from a workstation that may
// reach nothing of the lab but SSH to one bastion (the LB host; every other
// lab address and port refused, TCP and UDP, for haplan's process alone):
// check, a full install and a re-plan work, since every machine is reached
// through the bastion, and the bootstrap and node APIs, the load balancer
// and the database (database.admin.via defaults to ssh behind a bastion)
// through those SSH connections. The outcome is judged from outside,
// without the rule.
func TestSiteOverSSHOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	l := loadLab(t)
	resetCluster(t, ctx, l, "cattle")
	src, err := os.ReadFile(l.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	bastion := l.IP("lb")
	viaBastion := strings.Replace(string(src), "\nssh:\n  user: root\n", "\nssh:\n  user: root\n  bastion: root@"+bastion+"\n", 1)
	viaBastion = strings.Replace(viaBastion, "    reloadCommand: service haproxy reload || service haproxy start\n",
		"    reloadCommand: service haproxy reload || service haproxy start\n    ssh: {bastion: \"\"}\n", 1)
	if strings.Count(viaBastion, bastion) < 2 || !strings.Contains(viaBastion, `bastion: ""`) {
		t.Fatalf("could not put the lab's machines behind the bastion:\n%s", viaBastion)
	}
	manifest := filepath.Join(l.Dir, "cluster-ssh-only.yaml")
	if err := os.WriteFile(manifest, []byte(viaBastion), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(manifest) })

	gid := strconv.Itoa(cutOffGID)
	// Inserted in turn at the top: the last, SSH to the bastion, is first.
	rules := [][]string{
		{"OUTPUT", "-d", lab.Subnet, "-m", "owner", "--gid-owner", gid, "-j", "REJECT"},
		{"OUTPUT", "-d", lab.Subnet, "-m", "owner", "--gid-owner", gid, "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"},
		{"OUTPUT", "-d", bastion, "-m", "owner", "--gid-owner", gid, "-p", "tcp", "--dport", "22", "-j", "ACCEPT"},
	}
	for _, r := range rules {
		if out, err := exec.Command("iptables", append([]string{"-I"}, r...)...).CombinedOutput(); err != nil {
			t.Fatalf("iptables -I %v: %v\n%s", r, err, out)
		}
		t.Cleanup(func() { exec.Command("iptables", append([]string{"-D"}, r...)...).Run() })
	}
	// The rules hold: the group reaches the bastion's SSH and nothing else.
	for addr, wantOpen := range map[string]bool{
		net.JoinHostPort(bastion, "22"): true, net.JoinHostPort(nodeIP(t, l, "rs1"), "22"): false,
		net.JoinHostPort(l.DB.Host, strconv.Itoa(l.DB.Port)): false, net.JoinHostPort(bastion, "443"): false,
	} {
		out, err := asGroup(ctx, "bash", "-c", "exec 3<>/dev/tcp/"+strings.Replace(addr, ":", "/", 1)+" && echo open").CombinedOutput()
		if open := err == nil && strings.Contains(string(out), "open"); open != wantOpen {
			t.Fatalf("as group %s, %s open = %t, want %t (%s)", gid, addr, open, wantOpen, out)
		}
	}

	if r := haplanAs(t, ctx, "check", "-f", manifest); r.code != 0 {
		t.Errorf("check over SSH only: exit %d", r.code)
	}
	if r := haplanAs(t, ctx, "apply", "-f", manifest, "--auto-approve"); r.code != 0 {
		t.Fatalf("full install over SSH only: exit %d", r.code)
	}
	if r := haplanAs(t, ctx, "plan", "-f", manifest, "--detailed-exitcode"); r.code != 0 {
		t.Errorf("re-plan over SSH only: exit %d, want 0", r.code)
	}
	if out := sh(t, ctx, l, "rs1", "docker port haplan-bootstrap 2>/dev/null || true"); strings.TrimSpace(out) != "" {
		t.Errorf("the bootstrap server is still there: %s", out)
	}
	checkCluster(t, ctx, l, []string{"rs1", "rs2", "rs3"}, nil)
}

// asGroup runs a command with this process's user and the cut-off group.
func asGroup(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(os.Getuid()), Gid: cutOffGID}}
	return cmd
}

// haplanAs runs haplan as the cut-off group.
func haplanAs(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	return runHaplan(t, asGroup(ctx, haplanBin, args...), args)
}
