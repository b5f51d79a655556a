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
