//go:build lab

package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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

// backupMarked makes a table e2e_before, backs the database up with
// haplan backup and returns the dump's path; the test's tables are dropped
// when it ends.
func backupMarked(t *testing.T, ctx context.Context, l *lab.Lab, manifest string) string {
	t.Helper()
	sql(t, ctx, l, "CREATE TABLE cattle.e2e_before (v varchar(8)); INSERT INTO cattle.e2e_before VALUES ('kept');")
	t.Cleanup(func() {
		sql(t, context.WithoutCancel(ctx), l, "DROP TABLE IF EXISTS cattle.e2e_before; DROP TABLE IF EXISTS cattle.e2e_after;")
	})
	dump := filepath.Join(t.TempDir(), "lab.sql")
	if r := haplan(t, ctx, "backup", "-f", manifest, "-o", dump); r.code != 0 {
		t.Fatalf("backup: exit %d", r.code)
	}
	return dump
}

// checkBackupRestore backs the database up, changes it, restores the dump
// and checks, on the database server and the cluster, that it is the
// database of the backup again: a table made after the backup is gone, one
// made before is back, and the cluster answers with the same CA and the
// same registered hosts.
func checkBackupRestore(t *testing.T, ctx context.Context, l *lab.Lab, manifest string, nodes []string) {
	caBefore := waitFile(t, ctx, l, nodes[0], "/var/lib/rancher/etc/ssl/ca.crt")
	hostsBefore := checkHosts(t, ctx, l, nil)
	dump := backupMarked(t, ctx, l, manifest)
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
	r := haplan(t, ctx, "restore", "-f", manifest, "--auto-approve", dump)
	if r.code != 0 {
		t.Fatalf("restore: exit %d", r.code)
	}
	if !tableExists(t, ctx, l, "e2e_before") || tableExists(t, ctx, l, "e2e_after") {
		t.Errorf("after the restore: e2e_before %v, e2e_after %v; want the database of the backup", tableExists(t, ctx, l, "e2e_before"), tableExists(t, ctx, l, "e2e_after"))
	}
	checkSameCluster(t, ctx, l, manifest, nodes, caBefore, hostsBefore)
}

// checkRestoreInterrupted interrupts a restore while its dump loads (the
// load is held by a table lock the test takes, which the dump's DROP
// DATABASE waits for) and judges what the operator is left with: every
// node stopped and kept stopped, haplan saying the dump may be partly
// loaded and which command to run, status naming every node down; then,
// the lock released, the restore run again as the warning says gives the
// database of the backup and the same cluster.
func checkRestoreInterrupted(t *testing.T, ctx context.Context, l *lab.Lab, manifest string, nodes []string) {
	caBefore := waitFile(t, ctx, l, nodes[0], "/var/lib/rancher/etc/ssl/ca.crt")
	hostsBefore := checkHosts(t, ctx, l, nil)
	dump := backupMarked(t, ctx, l, manifest)
	sql(t, ctx, l, "DROP TABLE cattle.e2e_before; CREATE TABLE cattle.e2e_after (v int);")

	// Three nodes hold 150 connections (50 each) of MariaDB's default 151
	// (+1 for an admin): the test's two sessions, held while the restore
	// runs, need room of their own, given back afterwards.
	maxConns := count(t, ctx, l, "SELECT @@GLOBAL.max_connections")
	sql(t, ctx, l, "SET GLOBAL max_connections = "+strconv.Itoa(maxConns+5))
	t.Cleanup(func() { sql(t, context.WithoutCancel(ctx), l, "SET GLOBAL max_connections = "+strconv.Itoa(maxConns)) })
	lock, watch := adminConn(t, ctx, l), adminConn(t, ctx, l)
	if _, err := lock.ExecContext(ctx, "LOCK TABLES cattle.e2e_after READ"); err != nil {
		t.Fatal(err)
	}
	unlocked := false
	unlock := func() {
		if !unlocked {
			unlocked = true
			if _, err := lock.ExecContext(context.WithoutCancel(ctx), "UNLOCK TABLES"); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(unlock)
	waiting := func() int {
		var n int
		if err := watch.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%DROP DATABASE IF EXISTS%' AND ID <> CONNECTION_ID()").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	run := startBG(t, ctx, "restore", "-f", manifest, "--auto-approve", dump)
	run.waitFor(t, "restore.load started", 3*time.Minute)
	for deadline := time.Now().Add(time.Minute); waiting() == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the restore's DROP DATABASE never waited for the test's lock")
		}
	}
	for _, want := range []string{"Interrupted: starting no new steps", "Interrupted: cancelling running steps"} {
		if err := run.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		run.waitFor(t, want, 10*time.Second)
	}
	// Whatever fails from here on, the lab gets the backup's database and
	// its nodes back.
	restored := false
	t.Cleanup(func() {
		if !restored {
			unlock()
			haplan(t, context.WithoutCancel(ctx), "restore", "-f", manifest, "--auto-approve", dump)
		}
	})
	select {
	case <-run.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("haplan restore did not exit within 2 minutes of the second interrupt\n--- stdout\n%s--- stderr\n%s", run.out.String(), run.errb.String())
	}
	var ee *exec.ExitError
	if !errors.As(run.err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("interrupted restore: %v, want exit 1", run.err)
	}
	errOut := run.errb.String()
	t.Logf("interrupted restore:\n--- stdout\n%s--- stderr\n%s", run.out.String(), errOut)
	for _, want := range []string{
		"this run stopped rancher-ha on " + strings.Join(nodes, ", ") + " and did not start it again: the Rancher server is down",
		"The dump may be partly loaded: do not start the cluster on it",
		"haplan restore -f " + manifest + " " + dump + " again",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the interrupted restore does not say %q", want)
		}
	}
	for _, n := range nodes {
		if got := strings.TrimSpace(sh(t, ctx, l, n, "docker ps -q --filter name=^/rancher-ha")); got != "" {
			t.Errorf("%s runs rancher-ha containers after the interrupted restore (%s): nothing may start on a database that may be partly loaded", n, got)
		}
	}
	r := haplan(t, ctx, "status", "-f", manifest)
	if r.code != 5 {
		t.Errorf("status after the interrupted restore: exit %d, want 5 (down)", r.code)
	}
	for _, n := range nodes {
		if !strings.Contains(r.stdout, n) {
			t.Errorf("status does not name %s:\n%s", n, r.stdout)
		}
	}

	// The lock released, the cut client's statement ends on the server;
	// then the restore again, as the warning says.
	unlock()
	for deadline := time.Now().Add(time.Minute); waiting() != 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the interrupted restore's DROP DATABASE still runs a minute after the lock was released")
		}
	}
	if r := haplan(t, ctx, "restore", "-f", manifest, "--auto-approve", dump); r.code != 0 {
		t.Fatalf("restore again after the interrupt: exit %d", r.code)
	}
	restored = true
	if !tableExists(t, ctx, l, "e2e_before") || tableExists(t, ctx, l, "e2e_after") {
		t.Errorf("after the second restore: e2e_before %v, e2e_after %v; want the database of the backup", tableExists(t, ctx, l, "e2e_before"), tableExists(t, ctx, l, "e2e_after"))
	}
	checkSameCluster(t, ctx, l, manifest, nodes, caBefore, hostsBefore)
}
