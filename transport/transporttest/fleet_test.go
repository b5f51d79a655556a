package transporttest

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/transport"
)

func TestFleetConnect(t *testing.T) {
	ctx := context.Background()
	f := NewFleet("rs1", "rs2")
	f.SetRedact(func(s string) string { return strings.ReplaceAll(s, "pw", "***") })
	f.Host("rs1").On(Line("hostname")).Stdout("rs1\n")

	r, err := f.Connect(ctx, transport.Config{Host: "rs1", Address: "10.0.0.11"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Host() != "rs1" || r != transport.Runner(f.Host("rs1")) {
		t.Errorf("Connect gave %v, want rs1's runner", r.Host())
	}
	if res, err := r.Run(ctx, transport.Cmd{Line: "hostname"}); err != nil || string(res.Stdout) != "rs1\n" {
		t.Errorf("Run = %q, %v", res.Stdout, err)
	}
	// Redaction set on the fleet reaches hosts added later.
	late := f.Host("h1")
	if got := late.Redact("pw"); got != "***" {
		t.Errorf("a host added after SetRedact redacts %q", got)
	}

	f.Unreachable("rs2")
	_, err = f.Connect(ctx, transport.Config{Host: "rs2", Address: "10.0.0.12", Port: 2222})
	var ce *transport.ConnectError
	if !errors.As(err, &ce) || ce.Host != "rs2" || ce.Address != "10.0.0.12:2222" || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("unreachable host: err = %v, want a *transport.ConnectError (refused) for rs2 at 10.0.0.12:2222", err)
	}
	if h, ok := engine.IsUnreachable(err); !ok || h != "rs2" {
		t.Errorf("engine.IsUnreachable = %q, %v; a plan would fail instead of marking rs2's steps unknown", h, ok)
	}
	f.Reachable("rs2")
	if _, err := f.Connect(ctx, transport.Config{Host: "rs2", Address: "10.0.0.12"}); err != nil {
		t.Errorf("after Reachable: %v", err)
	}

	_, err = f.Connect(ctx, transport.Config{Host: "nobody"})
	if err == nil || errors.As(err, &ce) {
		t.Errorf("a host not in the fleet: err = %v, want a plain error (not unreachable)", err)
	}
	var hosts []string
	for _, c := range f.Configs() {
		hosts = append(hosts, c.Host)
	}
	if got := strings.Join(hosts, ","); got != "rs1,rs2,rs2,nobody" {
		t.Errorf("Configs = %s", got)
	}
	f.AssertExpectationsMet(t)
}
