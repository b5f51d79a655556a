//go:build lab

package transport

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestLabHost runs against h1, a real OpenSSH sshd in the lab
// (go test -tags lab ./transport/ after `haplab up`).
func TestLabHost(t *testing.T) {
	out, err := filepath.Abs("../lab/out")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Host:           "h1",
		Address:        "10.213.2.1",
		User:           "root",
		IdentityFile:   filepath.Join(out, "ssh", "id_ed25519"),
		KnownHostsFile: filepath.Join(out, "ssh", "known_hosts"),
		ConnectTimeout: 10 * time.Second,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := NewPool(PoolOptions{})
	t.Cleanup(func() { p.Close() })
	c, err := p.Client(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(ctx, Cmd{Line: "id -u"})
	if err != nil || string(res.Stdout) != "0\n" {
		t.Fatalf("id -u = %q, %v", res.Stdout, err)
	}
	_, err = c.Run(ctx, Cmd{Line: "echo oops >&2; exit 7"})
	var pe *ProcessError
	if !errors.As(err, &pe) || pe.ExitCode != 7 || pe.Stderr != "oops\n" {
		t.Fatalf("exit 7: %v", err)
	}
	dir, err := c.Run(ctx, Cmd{Line: "mktemp -d", Mutates: true})
	if err != nil {
		t.Fatal(err)
	}
	tmp := string(bytes.TrimSpace(dir.Stdout))
	t.Cleanup(func() { _, _ = c.Run(context.Background(), Cmd{Line: "rm -rf -- " + Quote(tmp), Mutates: true}) })
	path := tmp + "/sub/conf"
	data := []byte("secret=1\n")
	if err := WriteFile(ctx, c, path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	got, ok, err := ReadFile(ctx, ReadOnly(c), path)
	if err != nil || !ok || !bytes.Equal(got, data) {
		t.Fatalf("ReadFile = %q, %v, %v", got, ok, err)
	}
	fi, err := StatFile(ctx, ReadOnly(c), path)
	if err != nil || fi.Mode != 0o600 || fi.Size != int64(len(data)) || len(fi.SHA256) != 64 {
		t.Fatalf("StatFile = %+v, %v", fi, err)
	}
	cctx, ccancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer ccancel()
	if _, err := c.Run(cctx, Cmd{Line: "sleep 61"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled sleep: %v", err)
	}
	// OpenSSH refuses "signal" for root; the pid-based kill must work.
	for {
		ps, err := c.Run(ctx, Cmd{Line: "ps -eo stat,args | grep '^[^Z].*[s]leep 61' || true"})
		if err != nil {
			t.Fatal(err)
		}
		if len(ps.Stdout) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}
