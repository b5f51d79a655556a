package resources

import (
	"context"
	"database/sql"
	"fmt"
	"net"

	"github.com/go-sql-driver/mysql"

	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/preflight"
	"github.com/haplan/haplan/transport"
)

// Env serves the preflight checks with the same connections the steps use.
var _ preflight.Env = (*Env)(nil)

// Cluster is the manifest this Env was made for.
func (e *Env) Cluster() *manifests.Cluster { return e.c }

// Runner returns a read-only runner for a node, "lb", or an agent host.
func (e *Env) Runner(ctx context.Context, host string) (transport.Runner, error) {
	t, err := e.targetByName(host)
	if err != nil {
		return nil, err
	}
	return e.runner(ctx, t)
}

func (e *Env) targetByName(name string) (target, error) {
	if n, ok := e.c.Node(name); ok {
		return nodeTarget(n), nil
	}
	if name == layout.LBHost && e.c.LoadBalancer.HAProxy != nil {
		return e.lbTarget(), nil
	}
	for _, h := range e.c.Hosts {
		if h.Name == name {
			return hostTarget(h), nil
		}
	}
	return target{}, fmt.Errorf("no host %q in cluster %q", name, e.c.Name)
}

// DialLB connects to the load balancer as ha.verify does (tunnel.go).
func (e *Env) DialLB(ctx context.Context, addr string) (net.Conn, error) { return e.dialLB(ctx, addr) }

// AdminDB is the admin connection from this machine.
func (e *Env) AdminDB(ctx context.Context) (*sql.DB, error) { return e.adminDB(ctx) }

// AppDB connects with the application credentials from a node, through the
// node's SSH connection, so MySQL sees the node's address exactly as the
// Rancher server there will. The DB belongs to the Env: Close closes it.
func (e *Env) AppDB(ctx context.Context, node string) (*sql.DB, error) {
	n, ok := e.c.Node(node)
	if !ok {
		return nil, fmt.Errorf("no node %q in cluster %q", node, e.c.Name)
	}
	cfg, err := e.sshConfig(nodeTarget(n))
	if err != nil {
		return nil, err
	}
	client, err := e.pool.Client(ctx, cfg)
	if err != nil {
		return nil, err
	}
	mc := e.adminConfig()
	mc.User = e.c.Database.User
	mc.Passwd = e.dbPW.Reveal()
	mc.DBName = e.c.Database.Name
	// An SSH channel has no deadlines; the driver would fail every read
	// that set one. The callers' contexts bound the time instead.
	mc.ReadTimeout, mc.WriteTimeout = 0, 0
	mc.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return client.DialContext(ctx, network, addr)
	}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	e.mu.Lock()
	e.extraDBs = append(e.extraDBs, db)
	e.mu.Unlock()
	return db, nil
}
