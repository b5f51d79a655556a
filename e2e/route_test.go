//go:build lab

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
