//go:build lab

package preflight

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/haplan/haplan/lab"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/transport"
)

// labEnv is a minimal Env over the real lab, built in the test because
// resources.Env did not implement Env yet when this was written: a
// transport.Pool for the hosts, go-sql-driver for the database, and the
// application account dialled through an SSH connection to the node.
type labEnv struct {
	t       *testing.T
	c       *manifests.Cluster
	pool    *transport.Pool
	adminPW string
	appPW   string

	mu  sync.Mutex
	dbs []*sql.DB
	scs []*ssh.Client
}

func newLabEnv(t *testing.T) *labEnv {
	t.Helper()
	dir, err := lab.DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	l, err := lab.Load(dir)
	if err != nil {
		t.Fatalf("the lab is not up (run `haplab up`): %v", err)
	}
	c, diags := manifests.Load(l.Manifest)
	if diags.HasErrors() {
		t.Fatalf("load %s: %v", l.Manifest, diags.Err())
	}
	adm, err := c.Database.Admin.Password.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	app, err := c.Database.Password.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	e := &labEnv{t: t, c: c, adminPW: adm.Reveal(), appPW: app.Reveal(),
		pool: transport.NewPool(transport.PoolOptions{Retries: -1})}
	t.Cleanup(func() {
		_ = e.pool.Close()
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, db := range e.dbs {
			_ = db.Close()
		}
		for _, sc := range e.scs {
			_ = sc.Close()
		}
	})
	return e
}

func (e *labEnv) Cluster() *manifests.Cluster { return e.c }

func (e *labEnv) target(host string) (addr string, s manifests.SSH, err error) {
	if host == layout.LBHost && e.c.LoadBalancer.HAProxy != nil {
		return e.c.LoadBalancer.Address, e.c.LoadBalancer.HAProxy.SSH, nil
	}
	if n, ok := e.c.Node(host); ok {
		return n.Address, n.SSH, nil
	}
	for _, h := range e.c.Hosts {
		if h.Name == host {
			return h.Address, h.SSH, nil
		}
	}
	return "", s, fmt.Errorf("no host %q", host)
}

func (e *labEnv) Runner(ctx context.Context, host string) (transport.Runner, error) {
	addr, s, err := e.target(host)
	if err != nil {
		return nil, err
	}
	cl, err := e.pool.Client(ctx, transport.Config{Host: host, Address: addr, Port: s.Port, User: s.User,
		IdentityFile: s.IdentityFile, KnownHostsFile: s.KnownHostsFile, HostKeyPolicy: s.HostKeyPolicy,
		ConnectTimeout: 3 * time.Second})
	if err != nil {
		return nil, err
	}
	return transport.ReadOnly(cl), nil
}

// DialLB connects through the first node's SSH connection, as haplan does
// for an external load balancer.
func (e *labEnv) DialLB(ctx context.Context, addr string) (net.Conn, error) {
	r, err := e.Runner(ctx, e.c.Nodes[0].Name)
	if err != nil {
		return nil, err
	}
	d, ok := transport.DialerOf(r)
	if !ok {
		return nil, errors.New("no SSH dialer")
	}
	return d.DialContext(ctx, "tcp", addr)
}

func (e *labEnv) open(cfg *mysql.Config) (*sql.DB, error) {
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	e.mu.Lock()
	e.dbs = append(e.dbs, db)
	e.mu.Unlock()
	return db, nil
}

func (e *labEnv) dbConfig(user, pw string) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net = user, pw, "tcp"
	cfg.Addr = net.JoinHostPort(e.c.Database.Host, strconv.Itoa(e.c.Database.Port))
	cfg.Timeout = 5 * time.Second
	return cfg
}

func (e *labEnv) AdminDB(ctx context.Context) (*sql.DB, error) {
	return e.open(e.dbConfig(e.c.Database.Admin.User, e.adminPW))
}

// AppDB dials MySQL through an SSH connection to node, so the server sees
// the node's address.
func (e *labEnv) AppDB(ctx context.Context, node string) (*sql.DB, error) {
	addr, s, err := e.target(node)
	if err != nil {
		return nil, err
	}
	key, err := os.ReadFile(s.IdentityFile)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return nil, err
	}
	hk, err := knownhosts.New(s.KnownHostsFile)
	if err != nil {
		return nil, err
	}
	sc, err := ssh.Dial("tcp", net.JoinHostPort(addr, strconv.Itoa(s.Port)), &ssh.ClientConfig{
		User: s.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hk, Timeout: 3 * time.Second,
		// knownhosts does not steer the negotiation: ask for the lab's key type.
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519}})
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.scs = append(e.scs, sc)
	e.mu.Unlock()
	cfg := e.dbConfig(e.c.Database.User, e.appPW)
	cfg.DBName = e.c.Database.Name
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return sc.DialContext(ctx, network, addr)
	}
	return e.open(cfg)
}

func labFind(r *Report, host, check string) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Host == host && f.Check == check {
			out = append(out, f)
		}
	}
	return out
}

func TestLabHealthy(t *testing.T) {
	e := newLabEnv(t)
	r := Run(t.Context(), e, Options{Timeout: 10 * time.Second})
	var b strings.Builder
	_ = Render(&b, r)
	t.Logf("report:\n%s", b.String())

	for _, n := range e.c.Nodes {
		if fs := labFind(r, n.Name, "ssh"); len(fs) != 1 || fs[0].Severity != OK {
			t.Errorf("%s ssh = %+v", n.Name, fs)
		}
		docker := labFind(r, n.Name, "docker")
		if len(docker) == 0 || docker[0].Severity != Info || !strings.HasPrefix(docker[0].Message, "Docker ") {
			t.Errorf("%s docker = %+v", n.Name, docker)
		}
		for _, c := range []string{"ports", "memory", "clock", "reach"} {
			for _, f := range labFind(r, n.Name, c) {
				if f.Severity == Error {
					t.Errorf("%s %s: %+v", n.Name, c, f)
				}
			}
		}
	}
	if fs := labFind(r, "db", "mysql.admin"); len(fs) != 1 || fs[0].Severity != OK {
		t.Errorf("mysql.admin = %+v", fs)
	}
	if fs := labFind(r, "db", "max_connections"); len(fs) != 1 {
		t.Errorf("max_connections = %+v", fs)
	}
	app := labFind(r, e.c.Rancher.BootstrapNode, "mysql.app")
	if len(app) != 1 || app[0].Severity == Error || app[0].Severity == Warning {
		t.Errorf("mysql.app = %+v", app)
	}
	if fs := labFind(r, layout.LBHost, "lb"); len(fs) < 2 || fs[0].Severity == Error {
		t.Errorf("lb = %+v", fs)
	}
}

func TestLabWrongAdminPassword(t *testing.T) {
	e := newLabEnv(t)
	e.adminPW = "wrong-admin-password-zq81"
	r := Run(t.Context(), e, Options{Timeout: 5 * time.Second})
	fs := labFind(r, "db", "mysql.admin")
	if len(fs) != 1 || fs[0].Severity != Error || !strings.Contains(fs[0].Message, "admin credentials (database.admin") ||
		!strings.Contains(fs[0].Message, "Access denied") {
		t.Errorf("mysql.admin = %+v", fs)
	}
	if strings.Contains(fmt.Sprint(r), e.adminPW) {
		t.Error("the password appears in the report")
	}
}

func TestLabWrongAppPassword(t *testing.T) {
	e := newLabEnv(t)
	e.appPW = "wrong-app-password-zq82"
	node, _ := e.c.Node(e.c.Rancher.BootstrapNode)

	// Whether the user exists decides between "will be created" and an
	// error; ask the database.
	admin, err := e.AdminDB(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var one int
	err = admin.QueryRowContext(t.Context(), "SELECT 1 FROM mysql.user WHERE User = ? AND Host = ?", e.c.Database.User, node.Address).Scan(&one)
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}

	r := Run(t.Context(), e, Options{Timeout: 5 * time.Second})
	fs := labFind(r, node.Name, "mysql.app")
	if len(fs) != 1 {
		t.Fatalf("mysql.app = %+v", fs)
	}
	if exists && (fs[0].Severity != Warning || !strings.Contains(fs[0].Message, "application credentials")) {
		t.Errorf("user exists, mysql.app = %+v; want a warning naming the application credentials", fs[0])
	}
	if !exists && (fs[0].Severity != Info || !strings.Contains(fs[0].Message, "will be created")) {
		t.Errorf("user missing, mysql.app = %+v; want Info \"will be created\"", fs[0])
	}
	if strings.Contains(fmt.Sprint(r), e.appPW) {
		t.Error("the password appears in the report")
	}
}

// TestLabUnreachableNode points a node at an address in the lab's subnet
// where nothing answers: the check reports the host and address within the
// timeout rather than hanging, as a warning: one machine down does not stop
// the plan of the others (its steps are not probed, apply skips them).
func TestLabUnreachableNode(t *testing.T) {
	e := newLabEnv(t)
	c := *e.c
	c.Nodes = append([]manifests.Node(nil), c.Nodes...)
	c.Nodes[1].Address, c.Nodes[1].ClusterIP = "10.213.9.9", "10.213.9.9"
	e.c = &c
	r := Run(t.Context(), e, Options{Timeout: 5 * time.Second})
	fs := labFind(r, c.Nodes[1].Name, "ssh")
	if len(fs) != 1 || fs[0].Severity != Warning || !strings.Contains(fs[0].Message, "10.213.9.9") || !strings.Contains(fs[0].Message, "apply skips them") {
		t.Errorf("%s ssh = %+v", c.Nodes[1].Name, fs)
	}
	if !r.OK() {
		t.Errorf("an unreachable node blocked the others: %v", r.Err())
	}
}
