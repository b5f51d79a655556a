package resources

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/haplan/haplan/rancherapi"
	"github.com/haplan/haplan/transport"
)

// Every connection haplan makes to a site, other than SSH itself, goes
// through an SSH connection it already has (a direct-tcpip channel), so
// nothing but SSH crosses the network between this machine and the site
// and the site needs no other port open towards it:
//
//   - a Rancher server's API (the bootstrap server's 8080, published on its
//     node's loopback only, and each node's 18080) through that node's own
//     connection, to 127.0.0.1 there: createscript carries the TLS key up,
//     and rancher-ha.sh, with the cluster's encryption key, comes down;
//   - the load balancer's 443 through the load balancer's connection when
//     haplan manages HAProxy, else through a node's;
//   - with database.admin.via ssh, the admin connection to MySQL through a
//     node's.
//
// A machine behind a bastion is reached through the bastion, so all of it
// is then too.

// dialOn opens a TCP connection to addr from machine t.
func (e *Env) dialOn(ctx context.Context, t target, addr string) (net.Conn, error) {
	r, err := e.runner(ctx, t)
	if err != nil {
		return nil, err
	}
	d, ok := transport.DialerOf(r)
	if !ok {
		return nil, fmt.Errorf("%s: no SSH connection to open %s through", t.name, addr)
	}
	return d.DialContext(ctx, "tcp", addr)
}

// dialFromNodes opens a TCP connection to addr from the first node that
// answers over SSH: the one that answered last time first, then the
// others in manifest order. When a node answered but addr did not, that
// is the error (the nodes that did not answer before it are not); only
// when no node answered is it every node's connect error.
func (e *Env) dialFromNodes(ctx context.Context, addr string) (net.Conn, error) {
	e.cmu.Lock()
	first := e.lastDial
	e.cmu.Unlock()
	var errs []error
	for k := range e.c.Nodes {
		i := (first + k) % len(e.c.Nodes)
		// A node that does not connect within one SSH connect timeout is
		// passed over: the next one may, within the caller's limit.
		nctx, cancel := context.WithTimeout(ctx, e.c.Rancher.Timeouts.SSH)
		c, err := e.dialOn(nctx, nodeTarget(e.c.Nodes[i]), addr)
		cancel()
		if err == nil {
			e.cmu.Lock()
			e.lastDial = i
			e.cmu.Unlock()
			return c, nil
		}
		var ce *transport.ConnectError
		if !errors.As(err, &ce) {
			return nil, err // the node answered: addr is what failed
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// viaHTTP is the HTTP client for a server listening on port of machine t,
// reached at 127.0.0.1 there through t's SSH connection. One per machine
// and port, kept for the run so that connections are reused.
func (e *Env) viaHTTP(t target, port int) *http.Client {
	key := t.name + ":" + strconv.Itoa(port)
	e.cmu.Lock()
	defer e.cmu.Unlock()
	if c := e.tunnels[key]; c != nil {
		return c
	}
	local := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	c := e.siteHTTP(func(ctx context.Context) (net.Conn, error) { return e.dialOn(ctx, t, local) }, nil)
	if e.tunnels == nil {
		e.tunnels = map[string]*http.Client{}
	}
	e.tunnels[key] = c
	return c
}

// closeTunnels drops the idle HTTP connections of every tunnel.
func (e *Env) closeTunnels() {
	e.cmu.Lock()
	defer e.cmu.Unlock()
	for _, c := range e.tunnels {
		c.CloseIdleConnections()
	}
}

// apiOn is a client for the Rancher server on port of node n. Its URLs
// name the node's address, as an operator knows it; the connection goes
// to 127.0.0.1:port on the node through its SSH connection.
func (e *Env) apiOn(n target, port int) (*rancherapi.Client, error) {
	hint := "access control is on: set rancher.apiKey to an account API key of an admin"
	if e.apiAccess != "" {
		hint = "access control is on and the server refused rancher.apiKey: is it an account API key of an admin, and still active?"
	}
	return rancherapi.New("http://"+net.JoinHostPort(n.address, strconv.Itoa(port)), rancherapi.Options{
		HTTP: e.viaHTTP(n, port), Timeout: e.opts.HTTPTimeout,
		AccessKey: e.apiAccess.Reveal(), SecretKey: e.apiSecret.Reveal(), UnauthorizedHint: hint})
}

// dialLB connects to the load balancer's addr: through the load
// balancer's own SSH connection when haplan manages it, else from a node.
func (e *Env) dialLB(ctx context.Context, addr string) (net.Conn, error) {
	if e.c.LoadBalancer.HAProxy != nil {
		return e.dialOn(ctx, e.lbTarget(), addr)
	}
	return e.dialFromNodes(ctx, addr)
}

// siteHTTP is the one way haplan configures an HTTP client for the site:
// every connection dialled by dial (through SSH), never a proxy from the
// environment, each request bounded by Options.HTTPTimeout; TLS with tlsCfg
// when the server speaks it.
func (e *Env) siteHTTP(dial func(context.Context) (net.Conn, error), tlsCfg *tls.Config) *http.Client {
	tr := &http.Transport{
		Proxy: nil, // only ever the site, through SSH
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dial(ctx)
		},
		TLSClientConfig:     tlsCfg,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: e.opts.HTTPTimeout}
}
