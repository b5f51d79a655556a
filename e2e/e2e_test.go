//go:build lab

// Package e2e drives the built haplan binary against the real lab, the way
// a user runs it: plan, apply, break something behind its back, plan again.
package e2e

import (
	"bytes"
	"context"
	dbsql "database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/haplan/haplan/lab"
	"github.com/haplan/haplan/plans"
)

// haplan is the binary under test, built once by TestMain.
var haplanBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "haplan-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	haplanBin = filepath.Join(dir, "haplan")
	out, err := exec.Command("go", "build", "-o", haplanBin, "../cmd/haplan").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build haplan: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// loadLab returns the running lab; the Makefile brings it up before the
// lab-tagged tests run.
func loadLab(t *testing.T) *lab.Lab {
	t.Helper()
	dir, err := lab.DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	l, err := lab.Load(dir)
	if err != nil {
		t.Fatalf("the lab is not up (run make lab): %v", err)
	}
	return l
}

type result struct {
	code           int
	stdout, stderr string
}

// haplan runs the binary and returns its exit code and output.
func haplan(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	return runHaplan(t, exec.CommandContext(ctx, haplanBin, args...), args)
}

// runHaplan runs a prepared haplan command and logs what it did.
func runHaplan(t *testing.T, cmd *exec.Cmd, args []string) result {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("run haplan %v: %v", args, err)
	}
	t.Logf("haplan %s -> exit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

// pending runs plan --json and returns the sorted addresses of pending changes.
func pending(t *testing.T, ctx context.Context, manifest string) []string {
	t.Helper()
	r := haplan(t, ctx, "plan", "-f", manifest, "--json")
	if r.code != 0 {
		t.Fatalf("plan --json exited %d", r.code)
	}
	p, err := plans.Decode(strings.NewReader(r.stdout))
	if err != nil {
		t.Fatalf("decode plan: %v", err)
	}
	var out []string
	for _, c := range p.Pending() {
		out = append(out, c.Addr)
	}
	sort.Strings(out)
	return out
}

// sh runs a shell command on a lab host behind haplan's back.
func sh(t *testing.T, ctx context.Context, l *lab.Lab, host, script string) string {
	t.Helper()
	out, err := l.Exec(ctx, host, nil, "sh", "-c", script)
	if err != nil {
		t.Fatalf("%s: %s: %v\n%s", host, script, err, out)
	}
	return string(out)
}

// sql runs statements as the DB server's admin, from this machine, the way
// an operator's own client would.
func sql(t *testing.T, ctx context.Context, l *lab.Lab, stmts string) {
	t.Helper()
	cfg, err := l.AdminConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.MultiStatements = true
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := dbsql.OpenDB(conn)
	defer db.Close()
	if _, err := db.ExecContext(ctx, stmts); err != nil {
		t.Fatalf("db: %v", err)
	}
}

func hostsByRole(l *lab.Lab, role lab.Role) []lab.Host {
	var out []lab.Host
	for _, h := range l.Hosts {
		if h.Role == role {
			out = append(out, h)
		}
	}
	return out
}

// resetCluster removes everything haplan creates, so a test starts from a
// lab as fresh as `make lab` leaves it.
func resetCluster(t *testing.T, ctx context.Context, l *lab.Lab, dbName string) {
	t.Helper()
	if err := l.ResetCluster(ctx, dbName); err != nil {
		t.Fatal(err)
	}
}
