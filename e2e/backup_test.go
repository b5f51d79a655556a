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

// count asks the database server itself, as its admin, how many rows a
// COUNT(*) query finds.
func count(t *testing.T, ctx context.Context, l *lab.Lab, query string, args ...any) int {
	t.Helper()
	var n int
	if err := adminConn(t, ctx, l).QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// tableExists reports whether the cattle database has table.
func tableExists(t *testing.T, ctx context.Context, l *lab.Lab, table string) bool {
	t.Helper()
	return count(t, ctx, l, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='cattle' AND TABLE_NAME=?", table) == 1
}

// userExists reports whether user@host exists.
func userExists(t *testing.T, ctx context.Context, l *lab.Lab, user, host string) bool {
	t.Helper()
	return count(t, ctx, l, "SELECT COUNT(*) FROM mysql.user WHERE User=? AND Host=?", user, host) == 1
}

// checkBackupRestore backs the database up, changes it, restores the dump
// and checks, on the database server and the cluster, that it is the
// database of the backup again: a table made after the backup is gone, one
// made before is back, and the cluster answers with the same CA and the
// same registered hosts.
func checkBackupRestore(t *testing.T, ctx context.Context, l *lab.Lab, manifest string, nodes []string) {
	caBefore := waitFile(t, ctx, l, nodes[0], "/var/lib/rancher/etc/ssl/ca.crt")
	hostsBefore := checkHosts(t, ctx, l, nil)
	sql(t, ctx, l, "CREATE TABLE cattle.e2e_before (v varchar(8)); INSERT INTO cattle.e2e_before VALUES ('kept');")
	t.Cleanup(func() {
		sql(t, context.WithoutCancel(ctx), l, "DROP TABLE IF EXISTS cattle.e2e_before; DROP TABLE IF EXISTS cattle.e2e_after;")
	})

	dump := filepath.Join(t.TempDir(), "lab.sql")
	r := haplan(t, ctx, "backup", "-f", manifest, "-o", dump)
	if r.code != 0 {
		t.Fatalf("backup: exit %d", r.code)
	}
	b, err := os.ReadFile(dump)
	if err != nil || !strings.Contains(string(b), "CREATE TABLE `e2e_before`") || !strings.Contains(string(b), "DROP DATABASE IF EXISTS `cattle`") {
		t.Fatalf("the dump does not hold the database (with --add-drop-database): %v", err)
	}
	for _, p := range []string{dump, dump + ".json"} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v %v, want 0600", p, fi, err)
		}
	}

	sql(t, ctx, l, "DROP TABLE cattle.e2e_before; CREATE TABLE cattle.e2e_after (v int);")
	r = haplan(t, ctx, "restore", "-f", manifest, "--auto-approve", dump)
	if r.code != 0 {
		t.Fatalf("restore: exit %d", r.code)
	}
	if !tableExists(t, ctx, l, "e2e_before") || tableExists(t, ctx, l, "e2e_after") {
		t.Errorf("after the restore: e2e_before %v, e2e_after %v; want the database of the backup", tableExists(t, ctx, l, "e2e_before"), tableExists(t, ctx, l, "e2e_after"))
	}
	checkSameCluster(t, ctx, l, manifest, nodes, caBefore, hostsBefore)
}
