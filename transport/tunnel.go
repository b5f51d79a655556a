package transport

import (
	"context"
	"fmt"
	"net"
)

// DialContext opens a TCP connection from the remote host over this SSH
// connection (a direct-tcpip channel, like ssh -W). The far end sees the
// remote host as the client, which is how haplan checks credentials that
// are only granted to a node's address.
func (c *Client) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := c.ssh.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("%s: dial %s through ssh: %w", c.cfg.Host, addr, err)
	}
	return conn, nil
}

// ContextDialer opens connections from a remote host over its SSH
// connection. *Client implements it.
type ContextDialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// DialerOf returns the SSH connection behind r, for opening channels
// (direct-tcpip, direct-streamlocal) over it, when r is a *Client or
// ReadOnly of one. ReadOnly refuses mutating commands; what is sent over a
// channel is up to the caller.
func DialerOf(r Runner) (ContextDialer, bool) {
	if ro, ok := r.(readOnly); ok {
		r = ro.r
	}
	d, ok := r.(ContextDialer)
	return d, ok
}
