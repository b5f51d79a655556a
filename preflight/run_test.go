package preflight

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"

	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/transport"
)

// fakeNow is the fake local clock; fakeNowEpoch is the same instant as
// `date +%s.%N` prints it.
func fakeNow() time.Time { return time.Unix(1_700_000_000, 0) }

const fakeNowEpoch = "1700000000.000000000"

const (
	qVersion  = "SELECT VERSION()"
	qMaxConns = "SELECT @@GLOBAL.max_connections"
	qUser     = "SELECT 1 FROM mysql.user WHERE User = ? AND Host = ? [cattle] [10.0.0.11]"
)

func testCluster(nodes int) *manifests.Cluster {
	c := &manifests.Cluster{
		Name:         "test",
		Rancher:      manifests.Rancher{BootstrapNode: "rs1"},
		Database:     manifests.Database{Host: "10.0.0.20", Port: 3306, Name: "cattle", User: "cattle", Admin: manifests.DBAdmin{User: "root"}},
		LoadBalancer: manifests.LoadBalancer{Address: "10.0.0.10", HAProxy: &manifests.HAProxy{}},
	}
	for i := 1; i <= nodes; i++ {
		addr := fmt.Sprintf("10.0.0.%d", 10+i)
		c.Nodes = append(c.Nodes, manifests.Node{Name: fmt.Sprintf("rs%d", i), Address: addr, ClusterIP: addr})
	}
	return c
}

// newFakeEnv is a cluster of n nodes where every check passes.
func newFakeEnv(n int) *fakeEnv {
	e := &fakeEnv{
		cluster:    testCluster(n),
		hosts:      map[string]*fakeHost{},
		connectErr: map[string]error{},
		admin: &fakeDB{rows: map[string][]driver.Value{
			qVersion:  {"10.11.6-MariaDB"},
			qMaxConns: {int64(50 * n)},
		}},
		app: &fakeDB{},
	}
	for _, node := range e.cluster.Nodes {
		h := healthyNode(node.Name, fakeNowEpoch)
		var reach strings.Builder
		for _, other := range e.cluster.Nodes {
			if other.Name != node.Name {
				fmt.Fprintf(&reach, "%s 22 0\n", other.Address)
			}
		}
		h.answers["probe()"] = fakeAnswer{out: reach.String()}
		e.hosts[node.Name] = h
	}
	e.hosts[layout.LBHost] = healthyNode(layout.LBHost, fakeNowEpoch)
	return e
}

func run1(t *testing.T, e *fakeEnv, opts Options) *Report {
	t.Helper()
	if opts.Now == nil {
		opts.Now = fakeNow
	}
	r := Run(context.Background(), e, opts)
	for name, h := range e.hosts {
		for _, c := range h.commands() {
			if c.Mutates {
				t.Errorf("%s: a preflight command is marked Mutates: %q", name, c.Line)
			}
		}
	}
	return r
}

// key is the part of a finding the classification tests compare.
type key struct {
	Host, Check string
	Severity    Severity
}

func keys(fs []Finding) []key {
	var out []key
	for _, f := range fs {
		out = append(out, key{f.Host, f.Check, f.Severity})
	}
	slices.SortFunc(out, func(a, b key) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	return out
}

func TestRunHealthy(t *testing.T) {
	r := run1(t, newFakeEnv(3), Options{})
	if !r.OK() || len(r.Warnings()) != 0 {
		t.Fatalf("healthy cluster: errors %v, warnings %v", r.Errors(), r.Warnings())
	}
	var want []key
	want = append(want, key{"", "size", OK}, key{"", "udp", Info},
		key{"db", "max_connections", OK}, key{"db", "mysql.admin", OK}, key{"db", "mysql.version", Info},
		key{"lb", "lb", Info}, key{"lb", "lb", OK}, key{"rs1", "bootstrap.port", OK}, key{"rs1", "mysql.app", OK})
	for _, n := range []string{"rs1", "rs2", "rs3"} {
		want = append(want, key{n, "clock", OK}, key{n, "docker", Info}, key{n, "memory", OK},
			key{n, "ports", OK}, key{n, "reach", OK}, key{n, "ssh", OK})
	}
	slices.SortFunc(want, func(a, b key) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	if diff := cmp.Diff(want, keys(r.Findings)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

func TestRunClassification(t *testing.T) {
	denied := &mysql.MySQLError{Number: 1045, Message: "Access denied for user 'cattle'@'10.0.0.11' (using password: YES)"}
	tests := []struct {
		name   string
		nodes  int
		mutate func(e *fakeEnv)
		// want must appear among the findings, with the message containing
		// the given text.
		want   map[key]string
		blocks bool
	}{
		{
			name:   "cluster of 2",
			nodes:  2,
			want:   map[key]string{{"", "size", Error}: "2 nodes"},
			blocks: true,
		},
		{
			name:  "max_connections too low for 5 nodes",
			nodes: 5,
			mutate: func(e *fakeEnv) {
				e.admin.rows[qMaxConns] = []driver.Value{int64(151)}
			},
			want:   map[key]string{{"db", "max_connections", Error}: "max_connections is 151; 5 nodes need at least 250 (50 per node)"},
			blocks: true,
		},
		{
			name: "old docker, small memory and a skewed clock only warn",
			mutate: func(e *fakeEnv) {
				e.hosts["rs2"].answers["docker version"] = fakeAnswer{out: "1.9.1\n"}
				e.hosts["rs2"].answers["/proc/meminfo"] = fakeAnswer{out: "MemTotal: 2000000 kB\n"}
				e.hosts["rs3"].answers["date +%s.%N"] = fakeAnswer{out: "1700000003.000000000\n"}
			},
			want: map[key]string{
				{"rs2", "docker", Warning}: "older than 1.10.3",
				{"rs2", "memory", Warning}: "below 4 GB",
				{"rs3", "clock", Warning}:  "clock 3s ahead of this machine's",
				{"", "clock", Warning}:     "differ by 3s (rs3 ahead of rs1)",
			},
		},
		{
			name: "dockerd not answering blocks",
			mutate: func(e *fakeEnv) {
				e.hosts["rs1"].answers["docker version"] = fakeAnswer{err: &transport.ProcessError{Host: "rs1", ExitCode: 1,
					Stderr: "Cannot connect to the Docker daemon at unix:///var/run/docker.sock"}}
			},
			want:   map[key]string{{"rs1", "docker", Error}: "dockerd is not answering: rs1: command"},
			blocks: true,
		},
		{
			name: "port 80 held by nginx blocks",
			mutate: func(e *fakeEnv) {
				e.hosts["rs3"].answers["#ss"] = fakeAnswer{out: "#ss\n" + ssBusy}
			},
			want:   map[key]string{{"rs3", "ports", Error}: "port 80/tcp is held by nginx (pid 1234)"},
			blocks: true,
		},
		{
			// One machine down does not stop the plan of the others: a
			// warning, its checks skipped, and no reach errors from the
			// nodes that cannot reach it either.
			name: "unreachable node names host and address, warns, and its checks are skipped",
			mutate: func(e *fakeEnv) {
				e.connectErr["rs2"] = &transport.ConnectError{Host: "rs2", Address: "10.0.0.12:22", Attempts: 4, Err: errors.New("connection refused")}
				e.hosts["rs1"].answers["probe()"] = fakeAnswer{out: "10.0.0.13 22 0\n"}
			},
			want: map[key]string{{"rs2", "ssh", Warning}: "cannot connect over SSH to 10.0.0.12: rs2: connect to 10.0.0.12:22 failed after 4 attempt(s): connection refused; its steps are not probed, and apply skips them",
				{"rs1", "reach", OK}: "reaches rs3:22"},
			blocks: false,
		},
		{
			name: "non-root without sudo blocks",
			mutate: func(e *fakeEnv) {
				e.hosts["rs1"].answers["id -u"] = fakeAnswer{out: "1000\n"}
			},
			want:   map[key]string{{"rs1", "ssh", Error}: "uid 1000, which is not root, and `sudo -n true` fails"},
			blocks: true,
		},
		{
			name: "node-to-node SSH port closed blocks",
			mutate: func(e *fakeEnv) {
				e.hosts["rs1"].answers["probe()"] = fakeAnswer{out: "10.0.0.12 22 1\n10.0.0.13 22 0\n"}
			},
			want:   map[key]string{{"rs1", "reach", Error}: "cannot reach rs2 at 10.0.0.12:22/tcp"},
			blocks: true,
		},
		{
			name: "an HA port rs2 listens on is firewalled from rs1",
			mutate: func(e *fakeEnv) {
				e.hosts["rs2"].answers["#ss"] = fakeAnswer{out: "#ss\n" + ssLab +
					"LISTEN 0 50 *:2181 *:* users:((\"java\",pid=70,fd=9))\n" +
					"LISTEN 0 50 127.0.0.1:2888 0.0.0.0:* users:((\"java\",pid=70,fd=10))\n"}
				e.hosts["rs2"].answers["docker ps"] = fakeAnswer{out: "rancher-ha\t\n"}
				e.hosts["rs1"].answers["probe()"] = fakeAnswer{out: "10.0.0.12 22 0\n10.0.0.13 22 0\n10.0.0.12 2181 1\n"}
				e.hosts["rs3"].answers["probe()"] = fakeAnswer{out: "10.0.0.11 22 0\n10.0.0.12 22 0\n10.0.0.12 2181 0\n"}
			},
			want: map[key]string{
				{"rs1", "reach", Error}: "cannot reach rs2 at 10.0.0.12:2181/tcp",
				{"rs3", "reach", OK}:    "reaches rs1:22, rs2:22, rs2:2181",
				{"rs2", "ports", OK}:    "held by this cluster's rancher-ha",
			},
			blocks: true,
		},
		{
			name: "haproxy missing on a managed LB blocks",
			mutate: func(e *fakeEnv) {
				delete(e.hosts[layout.LBHost].answers, "haproxy -v")
			},
			want:   map[key]string{{"lb", "lb", Error}: "HAProxy is not installed"},
			blocks: true,
		},
		{
			name: "app user not created yet is Info",
			mutate: func(e *fakeEnv) {
				e.app.pingErr = denied
			},
			want: map[key]string{{"rs1", "mysql.app", Info}: `database user "cattle" does not exist yet for [10.0.0.11]; it will be created`},
		},
		{
			// haplan owns the account: a new password is db.grant's change.
			name: "app user exists with another password warns that db.grant will set it",
			mutate: func(e *fakeEnv) {
				e.app.pingErr = denied
				e.admin.rows[qUser] = []driver.Value{int64(1)}
			},
			want: map[key]string{{"rs1", "mysql.app", Warning}: `application credentials (database.user "cattle", database.password) from rs1 to 10.0.0.20:3306 rejected, and the user exists: db.grant will set the manifest's password`},
		},
		{
			name: "database not created yet is Info",
			mutate: func(e *fakeEnv) {
				e.app.pingErr = &mysql.MySQLError{Number: 1049, Message: "Unknown database 'cattle'"}
			},
			want: map[key]string{{"rs1", "mysql.app", Info}: `database "cattle" does not exist yet and will be created`},
		},
		{
			name: "database behind a node that does not answer is not blamed",
			mutate: func(e *fakeEnv) {
				e.adminErr = fmt.Errorf("database 10.0.0.20:3306: %w", &transport.ConnectError{Host: "rs1", Address: "10.0.0.11:22", Attempts: 3, Err: errors.New("connection refused")})
			},
			want: map[key]string{{"db", "mysql.admin", Warning}: "not checked: the database is reached through rs1 over SSH (database.admin.via ssh), which did not answer"},
		},
		{
			name: "wrong admin password blocks, naming the admin credentials",
			mutate: func(e *fakeEnv) {
				e.adminErr = &mysql.MySQLError{Number: 1045, Message: "Access denied for user 'root'@'10.0.0.1' (using password: YES)"}
				e.app.pingErr = denied
			},
			want: map[key]string{
				{"db", "mysql.admin", Error}: `admin credentials (database.admin, user "root") on 10.0.0.20:3306 failed: Error 1045`,
				{"rs1", "mysql.app", Error}:  "could not ask the admin account",
			},
			blocks: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFakeEnv(orDefault(tt.nodes, 3))
			if tt.mutate != nil {
				tt.mutate(e)
			}
			r := run1(t, e, Options{})
			got := map[key][]string{}
			for _, f := range r.Findings {
				k := key{f.Host, f.Check, f.Severity}
				got[k] = append(got[k], f.Message)
			}
			for k, text := range tt.want {
				if !slices.ContainsFunc(got[k], func(m string) bool { return strings.Contains(m, text) }) {
					t.Errorf("no finding %+v containing %q; have %q", k, text, got[k])
				}
			}
			if r.OK() == tt.blocks {
				t.Errorf("OK() = %v, want %v; errors: %v", r.OK(), !tt.blocks, r.Errors())
			}
			if tt.blocks != (r.Err() != nil) {
				t.Errorf("Err() = %v", r.Err())
			}
		})
	}
}

func TestRunUnreachableNodeSkipsItsChecks(t *testing.T) {
	e := newFakeEnv(3)
	e.connectErr["rs2"] = &transport.AuthError{Host: "rs2", User: "root", Err: errors.New("no supported methods remain")}
	r := run1(t, e, Options{})
	var rs2 []key
	for _, f := range r.Findings {
		if f.Host == "rs2" {
			rs2 = append(rs2, key{f.Host, f.Check, f.Severity})
		}
	}
	if diff := cmp.Diff([]key{{"rs2", "ssh", Error}}, rs2); diff != "" {
		t.Errorf("rs2 findings (-want +got):\n%s", diff)
	}
}

// TestRunHungHost proves that a host that never answers (its Runner blocks
// and ignores ctx) and a database that never answers are reported as timed
// out instead of hanging Run.
func TestRunHungHost(t *testing.T) {
	e := newFakeEnv(3)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	e.hosts["rs2"].hang, e.hosts["rs2"].release = true, release
	e.admin.pingHang = true

	r := run1(t, e, Options{Timeout: 200 * time.Millisecond})

	find := func(host, check string) (Finding, bool) {
		for _, f := range r.Findings {
			if f.Host == host && f.Check == check {
				return f, true
			}
		}
		return Finding{}, false
	}
	f, ok := find("rs2", "ssh")
	// A machine that does not answer is a warning (the plan goes on
	// without it); a database that does not answer blocks.
	if !ok || f.Severity != Warning || f.Message != "SSH to 10.0.0.12: timed out, no answer within 200ms; its steps are not probed, and apply skips them" {
		t.Errorf("rs2 ssh finding = %+v, %v; want a timeout warning", f, ok)
	}
	f, ok = find("db", "mysql.admin")
	if !ok || f.Severity != Error || !strings.Contains(f.Message, "timed out") {
		t.Errorf("db mysql.admin finding = %+v, %v; want a timeout error", f, ok)
	}
	if f, _ := find("rs1", "ssh"); f.Severity != OK {
		t.Errorf("rs1 ssh = %+v; a hung neighbour must not affect it", f)
	}
	if r.OK() {
		t.Error("a hung database did not block")
	}
}

func TestRunCancelled(t *testing.T) {
	e := newFakeEnv(3)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	for _, h := range e.hosts {
		h.hang, h.release = true, release
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := Run(ctx, e, Options{Timeout: time.Hour, Now: fakeNow})
	if r.OK() {
		t.Fatal("cancelled run reported OK")
	}
	cancelled := 0
	for _, f := range r.Errors() {
		if f.Check == "ssh" && strings.HasSuffix(f.Message, ": not finished, preflight was cancelled") {
			cancelled++
		}
	}
	if cancelled != 3 {
		t.Errorf("%d ssh findings say cancelled, want 3; errors: %v", cancelled, r.Errors())
	}
}

func TestRunRedacts(t *testing.T) {
	const secret = "hunter2-distinctive"
	e := newFakeEnv(3)
	e.adminErr = fmt.Errorf("dial: bad DSN root:%s@tcp(10.0.0.20)", secret)
	e.hosts["rs1"].answers["docker version"] = fakeAnswer{err: &transport.ProcessError{Host: "rs1", ExitCode: 1, Stderr: "leaked " + secret}}
	r := run1(t, e, Options{Redact: func(s string) string { return strings.ReplaceAll(s, secret, "***") }})
	var b strings.Builder
	if err := Render(&b, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), secret) || strings.Contains(fmt.Sprint(r.Err()), secret) {
		t.Errorf("secret in output:\n%s", b.String())
	}
	if !strings.Contains(b.String(), "***") {
		t.Errorf("the failing checks' errors are missing from the output:\n%s", b.String())
	}
}

func orDefault(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}
