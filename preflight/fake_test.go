package preflight

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/transport"
)

// fakeEnv answers the checks from canned outputs. It is only for the pure
// logic of Run: which findings come out of which observations.
type fakeEnv struct {
	cluster *manifests.Cluster
	hosts   map[string]*fakeHost
	// connectErr fails Runner for a host.
	connectErr map[string]error
	admin      *fakeDB
	adminErr   error
	app        *fakeDB
	appErr     error
}

func (e *fakeEnv) Cluster() *manifests.Cluster { return e.cluster }

func (e *fakeEnv) Runner(ctx context.Context, host string) (transport.Runner, error) {
	if err := e.connectErr[host]; err != nil {
		return nil, err
	}
	h, ok := e.hosts[host]
	if !ok {
		return nil, fmt.Errorf("fake: no host %q", host)
	}
	return h, nil
}

func (e *fakeEnv) DialLB(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

func (e *fakeEnv) AdminDB(ctx context.Context) (*sql.DB, error) {
	if e.adminErr != nil {
		return nil, e.adminErr
	}
	return sql.OpenDB(e.admin), nil
}

func (e *fakeEnv) AppDB(ctx context.Context, node string) (*sql.DB, error) {
	if e.appErr != nil {
		return nil, e.appErr
	}
	return sql.OpenDB(e.app), nil
}

// fakeHost answers commands by the first canned key the line contains.
// With hang set, every command blocks until release is closed, ignoring
// ctx, like a host whose TCP connection silently died.
type fakeHost struct {
	name    string
	answers map[string]fakeAnswer
	hang    bool
	release chan struct{}

	mu   sync.Mutex
	cmds []transport.Cmd
}

type fakeAnswer struct {
	out string
	err error
}

func (h *fakeHost) Host() string { return h.name }

// commands returns the commands run so far.
func (h *fakeHost) commands() []transport.Cmd {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.cmds)
}

func (h *fakeHost) Run(ctx context.Context, c transport.Cmd) (transport.Result, error) {
	h.mu.Lock()
	h.cmds = append(h.cmds, c)
	h.mu.Unlock()
	if h.hang {
		<-h.release
		return transport.Result{}, errors.New("fake: released")
	}
	for key, a := range h.answers {
		if strings.Contains(c.Line, key) {
			return transport.Result{Stdout: []byte(a.out)}, a.err
		}
	}
	err := &transport.ProcessError{Host: h.name, Command: c.Line, ExitCode: 127, Stderr: "sh: not found"}
	return transport.Result{ExitCode: 127}, err
}

// healthyNode answers like a clean node with Docker 1.10.3, 8 GB and an
// in-sync clock (now is what the fake clock says).
func healthyNode(name, now string) *fakeHost {
	return &fakeHost{name: name, answers: map[string]fakeAnswer{
		"id -u":          {out: "0\n"},
		"docker version": {out: "1.10.3\n"},
		"#ss":            {out: "#ss\n" + ssLab},
		"docker ps":      {out: ""},
		"/proc/meminfo":  {out: "MemTotal:        8000000 kB\n"},
		"date +%s.%N":    {out: now + "\n"},
		"probe()":        {out: ""}, // set per test when reachability matters
		"haproxy -v":     {out: "HAProxy version 2.6.12\n"},
		"'rancher-ha'":   {out: "absent\n"},
	}}
}

// fakeDB is a database/sql connector whose queries return one canned row.
type fakeDB struct {
	pingErr error
	// pingHang makes Ping block until its ctx is done.
	pingHang bool
	rows     map[string][]driver.Value // query -> the single row; absent: no rows
	errs     map[string]error
}

func (d *fakeDB) Connect(context.Context) (driver.Conn, error) { return fakeConn{d}, nil }
func (d *fakeDB) Driver() driver.Driver                        { return fakeDriver{d} }

type fakeDriver struct{ d *fakeDB }

func (f fakeDriver) Open(string) (driver.Conn, error) { return fakeConn(f), nil }

type fakeConn struct{ d *fakeDB }

func (c fakeConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("fake: no prepare") }
func (c fakeConn) Close() error                        { return nil }
func (c fakeConn) Begin() (driver.Tx, error)           { return nil, errors.New("fake: no transactions") }
func (c fakeConn) Ping(ctx context.Context) error {
	if c.d.pingHang {
		<-ctx.Done()
		return ctx.Err()
	}
	return c.d.pingErr
}

func (c fakeConn) QueryContext(_ context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	key := q
	for _, a := range args {
		key += fmt.Sprintf(" [%v]", a.Value)
	}
	if err := c.d.errs[key]; err != nil {
		return nil, err
	}
	row, ok := c.d.rows[key]
	if !ok {
		return &fakeRows{}, nil
	}
	return &fakeRows{row: row, left: 1}, nil
}

type fakeRows struct {
	row  []driver.Value
	left int
}

func (r *fakeRows) Columns() []string {
	cols := make([]string, max(len(r.row), 1))
	for i := range cols {
		cols[i] = fmt.Sprintf("c%d", i)
	}
	return cols
}
func (r *fakeRows) Close() error { return nil }
func (r *fakeRows) Next(dest []driver.Value) error {
	if r.left == 0 {
		return io.EOF
	}
	r.left--
	copy(dest, r.row)
	return nil
}
