package dockerapi

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/haplan/haplan/transport"
)

type hostOnly string

func (h hostOnly) Host() string { return string(h) }
func (h hostOnly) Run(context.Context, transport.Cmd) (transport.Result, error) {
	return transport.Result{}, errors.New("no CLI in this test")
}

// A Docker socket that accepts and never answers (a hung dockerd) fails
// the read within the timeout, naming the node and the request; it never
// reads as an absent image.
func TestHungSocketTimesOut(t *testing.T) {
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	d := &Reader{r: hostOnly("rs2"), timeout: 200 * time.Millisecond,
		dial: func(context.Context, string, string) (net.Conn, error) {
			client, server := net.Pipe()
			held = append(held, server) // accepted, never read or answered
			return client, nil
		}}
	start := time.Now()
	id, err := d.ImageID(context.Background(), "rancher/server:v1.0.1")
	if err == nil || id != "" {
		t.Fatalf("ImageID on a hung socket = %q, %v; want an error", id, err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "rs2: docker API GET /images/rancher/server:v1.0.1/json: no answer within 200ms") {
		t.Errorf("error %q does not name the node, the request and the limit", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("took %s", time.Since(start))
	}
}
